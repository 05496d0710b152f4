"""The kiosk API under 50 clients: answer times against a bare aiohttp server, and loop lateness.

Runs ``lockerd`` (serving, as ``lockerd run`` does) in its own process on a
CU48 twin in another (16 doors), with a probe on its event loop that sleeps 10 ms again
and again and records how late it wakes. The clients (``--clients``
coroutines in this process) each ask ``GET /api/status`` and post a wrong
pickup code in turn for ``--seconds``; then the same load on a bare aiohttp
server answering the same paths with a fixed JSON body. Prints p50 and p99
of each, their ratio to the bare server's, and the daemon loop's lateness
p99 idle and under the load (budget: under load <= 2 x idle, PERFORMANCE.md),
beside the bare server's lateness under the same load (what aiohttp alone costs
a loop kept busy by 50 clients).

    python benchmarks/kiosk_load.py [--clients 50] [--seconds 10] [--root CHECKOUT]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from scale import bank_text, percentile, twins  # this folder's; imports no lockerd

ROOT = Path(__file__).resolve().parent.parent

DAEMON = """
import asyncio, json, sys, time
from pathlib import Path
from lockerd.config import load
from lockerd.daemon import serve

late = []

async def probe():
    while True:
        started = time.monotonic()
        await asyncio.sleep(0.01)
        late.append((started, time.monotonic() - started - 0.01))

async def main():
    task = asyncio.ensure_future(probe())
    try:
        await serve(load(Path(sys.argv[1])))
    finally:
        task.cancel()
        Path(sys.argv[2]).write_text(json.dumps(late))

asyncio.run(main())
"""

BARE = """
import asyncio, json, signal, sys, time
from pathlib import Path
from aiohttp import web

late = []

async def probe():
    while True:
        started = time.monotonic()
        await asyncio.sleep(0.01)
        late.append((started, time.monotonic() - started - 0.01))

async def status(request):
    return web.json_response({"locker": {"id": "bare"}, "compartments": []})

async def pickup(request):
    await request.read()
    return web.json_response({"error": {"code": "wrong_code"}}, status=422)

async def main():
    app = web.Application()
    app.add_routes([web.get("/api/status", status), web.post("/api/pickups", pickup)])
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    print(f"ready: kiosk at http://127.0.0.1:{port}", flush=True)
    task = asyncio.ensure_future(probe())
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    task.cancel()
    Path(sys.argv[1]).write_text(json.dumps(late))

asyncio.run(main())
"""


async def start(args: list[str], root: Path) -> tuple[asyncio.subprocess.Process, str]:
    env = dict(os.environ, PYTHONPATH=str(root), PYTHONUNBUFFERED="1")
    proc = await asyncio.create_subprocess_exec(
        *args, cwd=root, env=env, stdout=asyncio.subprocess.PIPE, stderr=subprocess.STDOUT
    )
    assert proc.stdout is not None
    while line := (await proc.stdout.readline()).decode():
        if "ready: kiosk at " in line:
            return proc, line.split("ready: kiosk at ", 1)[1].strip()
    raise RuntimeError("the server exited before it was ready")


async def load(url: str, clients: int, seconds: float) -> dict[str, list[float]]:
    import aiohttp

    times: dict[str, list[float]] = {"status": [], "wrong PIN": []}
    until = time.monotonic() + seconds

    async def client(http: aiohttp.ClientSession) -> None:
        while time.monotonic() < until:
            started = time.perf_counter()
            async with http.get("/api/status") as response:
                await response.read()
            times["status"].append(time.perf_counter() - started)
            started = time.perf_counter()
            async with http.post("/api/pickups", json={"code": "00000000"}) as response:
                await response.read()
            times["wrong PIN"].append(time.perf_counter() - started)

    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(base_url=url, connector=connector) as http:
        await asyncio.gather(*(client(http) for _ in range(clients)))
    return times


async def measure(root: Path, clients: int, seconds: float) -> None:
    with tempfile.TemporaryDirectory() as tmp, twins(root, 16) as ports:
        config = Path(tmp) / "load.toml"
        text = bank_text(Path(tmp) / "state", ports, 16)  # one CU48 board, 16 doors
        config.write_text(text.replace("[state]", "[kiosk]\nport = 0\n[state]", 1))
        late_file = Path(tmp) / "late.json"
        proc, url = await start([sys.executable, "-c", DAEMON, str(config), str(late_file)], root)
        await asyncio.sleep(1)
        idle_from = time.monotonic()
        await asyncio.sleep(seconds / 2)
        busy_from = time.monotonic()
        daemon = await load(url, clients, seconds)
        busy_to = time.monotonic()
        proc.terminate()
        await proc.wait()
        late = json.loads(late_file.read_text())
        bare_proc, bare_url = await start([sys.executable, "-c", BARE, str(late_file)], root)
        bare_from = time.monotonic()
        bare = await load(bare_url, clients, seconds)
        bare_proc.terminate()
        await bare_proc.wait()
        bare_late = [lag for at, lag in json.loads(late_file.read_text()) if at >= bare_from]
    report(root, clients, daemon, bare, late, (idle_from, busy_from, busy_to))
    b99 = percentile(bare_late, 0.99)
    print(f"  the bare server's loop lateness p99 under the same load: {b99 * 1000:6.2f} ms")


def report(
    root: Path,
    clients: int,
    daemon: dict[str, list[float]],
    bare: dict[str, list[float]],
    late: list[Any],
    marks: tuple[float, float, float],
) -> None:
    print(f"lockerd at {root}, {clients} clients; load average {os.getloadavg()[0]:.1f}")
    for kind, times in daemon.items():
        p50, p99 = statistics.median(times), percentile(times, 0.99)
        b50, b99 = statistics.median(bare[kind]), percentile(bare[kind], 0.99)
        print(
            f"  {kind:9}  p50 {p50 * 1000:7.2f} ms ({p50 / b50:4.1f}x bare)"
            f"  p99 {p99 * 1000:7.2f} ms ({p99 / b99:4.1f}x bare)  {len(times)} answers"
        )
    idle_from, busy_from, busy_to = marks
    idle = [lag for at, lag in late if idle_from <= at < busy_from]
    busy = [lag for at, lag in late if busy_from <= at < busy_to]
    i99, b99 = percentile(idle, 0.99), percentile(busy, 0.99)
    print(
        f"  loop lateness p99: idle {i99 * 1000:6.2f} ms, under load {b99 * 1000:6.2f} ms"
        f" ({b99 / i99:4.1f}x idle; budget <= 2x)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--root", type=Path, default=ROOT, help="the lockerd checkout to measure")
    args = parser.parse_args()
    asyncio.run(measure(args.root.resolve(), args.clients, args.seconds))


if __name__ == "__main__":
    main()
