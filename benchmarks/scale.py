"""How the daemon's costs grow with the bank: 16, 96, 384 and 768 doors.

For each size, CU48 boards (at most 8 a bus, as PERFORMANCE.md's 384-door
topology) at 19200 baud, each bus's twins in a process of their own (a board
is another machine), and ``lockerd run`` as a real process. Prints, per size:

- start-up: process start to the READY line;
- RSS once ready and settled, and idle CPU (a share of one core over
  ``--idle`` seconds, polling as configured, nobody at the kiosk);
- a full poll of every bus (run in parallel, one thread a bus, as the daemon
  does; measured in this process against the same twins) and its ratio to the
  physical limit, wire time plus 3.5-character silences of the busiest bus;
- ``GET /api/status`` latency from one client, median and p99;

each with its ratio to the smallest bank. Costs linear in the bank grow at
most as the door count does (48x from 16 to 768); start-up and RSS much less.

    python benchmarks/scale.py [--sizes 16,96,384,768] [--idle 10] [--root CHECKOUT]

``--root`` measures another checkout of lockerd (a baseline) with the same
method, so that both can be run back to back on one machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

BAUD = 19200
PER_BUS = 8
REQUEST, REPLY = 6, 18  # CU48 status exchange, bytes
ROOT = Path(__file__).resolve().parent.parent


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def boards_for(doors: int) -> list[int]:
    """Doors on each CU48 board of a ``doors``-door bank."""
    full, rest = divmod(doors, 48)
    return [48] * full + ([rest] if rest else [])


def bank_text(state: Path, ports: list[str], doors: int) -> str:
    buses = "".join(
        f'[[bus]]\nname = "rs485-{n}"\nprotocol = "kerong-cu48"\nport = "{port}"\nbaud = {BAUD}\n'
        for n, port in enumerate(ports)
    )
    boards, comps = [], []
    for b, count in enumerate(boards_for(doors)):
        bus, address = divmod(b, PER_BUS)
        boards.append(
            f'[[board]]\nname = "b{b}"\nbus = "rs485-{bus}"\npower_group = "psu"\n'
            f"address = {address}\n"
        )
        comps += [
            f'[[compartment]]\nid = "C{b}-{n}"\nsize = "{"SML"[n % 3]}"\n'
            f'column = {b * 4 + n % 4 + 1}\nrow = {n // 4 + 1}\nboard = "b{b}"\nlock = {n + 1}\n'
            for n in range(count)
        ]
    return (
        f'[locker]\nid = "scale"\n[state]\ndirectory = "{state}"\n'
        '[[size]]\nname = "S"\n[[size]]\nname = "M"\n[[size]]\nname = "L"\n'
        '[[power_group]]\nname = "psu"\n' + buses + "".join(boards) + "".join(comps)
    )


@contextmanager
def twins(root: Path, doors: int) -> Iterator[list[str]]:
    """One twin process a bus; yields their pty paths."""
    boards = len(boards_for(doors))
    buses = [range(start, min(start + PER_BUS, boards)) for start in range(0, boards, PER_BUS)]
    twin = [sys.executable, str(root / "benchmarks" / "twin.py"), "kerong-cu48", str(BAUD)]
    procs = [
        subprocess.Popen(
            [*twin, ",".join(str(a - bus.start) for a in bus)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env(root),
        )
        for bus in buses
    ]
    try:
        yield [p.stdout.readline().strip() for p in procs if p.stdout is not None]
    finally:
        for p in procs:
            assert p.stdin is not None
            p.stdin.close()
            p.wait(timeout=10)


def env(root: Path) -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(root), PYTHONUNBUFFERED="1")


@dataclass
class Row:
    doors: int
    startup_s: float
    rss_mb: float
    idle_cpu: float
    poll_s: float
    limit_s: float
    status_p50_s: float
    status_p99_s: float


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def daemon_figures(root: Path, config: Path, idle: float, requests: int) -> list[float]:
    """Start-up, RSS, idle CPU and status latencies of ``lockerd run`` on ``config``."""
    import aiohttp

    started = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "lockerd", "run", str(config), "--port", "0",
        "--log-level", "warning", cwd=root, env=env(root),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    assert proc.stdout is not None
    url = await asyncio.wait_for(ready(proc.stdout), 120)
    startup = time.perf_counter() - started
    try:
        await asyncio.sleep(2)  # first polls, the board health settles
        cpu0, wall0 = cpu_s(proc.pid), time.perf_counter()
        await asyncio.sleep(idle)
        idle_cpu = (cpu_s(proc.pid) - cpu0) / (time.perf_counter() - wall0)
        rss = rss_mb(proc.pid)
        times = []
        async with aiohttp.ClientSession(base_url=url) as http:
            for _ in range(requests):
                t0 = time.perf_counter()
                async with http.get("/api/status") as response:
                    await response.read()
                times.append(time.perf_counter() - t0)
    finally:
        proc.terminate()
        await proc.wait()
    return [startup, rss, idle_cpu, statistics.median(times), percentile(times, 0.99)]


async def ready(stdout: asyncio.StreamReader) -> str:
    while line := (await stdout.readline()).decode():
        if "ready: kiosk at " in line:
            return line.split("ready: kiosk at ", 1)[1].strip()
    raise RuntimeError("lockerd exited before it was ready")


def poll_figure(root: Path, config: Path, polls: int) -> float:
    """Median time of one full poll of every bus at once, in a child on ``root``'s code."""
    code = f"""
import asyncio, statistics, sys, time
from pathlib import Path
from lockerd import hardware
from lockerd.bank import Bank
from lockerd.clock import SystemClock
from lockerd.config import load

async def main():
    config = load(Path({str(config)!r}))
    opened = hardware.build(config)
    async def never(comp, intent):
        return False
    bank = Bank(config, opened.drivers, opened.workers, SystemClock(), never)
    await bank.read_all()
    times = []
    for _ in range({polls}):
        t0 = time.perf_counter()
        await asyncio.gather(*(bank.poll_bus(b.name, bank.clock.monotonic()) for b in config.bus))
        times.append(time.perf_counter() - t0)
    await bank.close()
    opened.close()
    print(statistics.median(times))

asyncio.run(main())
"""
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=root, env=env(root), capture_output=True, text=True,
    )  # fmt: skip
    if out.returncode:
        raise RuntimeError(f"the poll measurement failed:\n{out.stderr}")
    return float(out.stdout.split()[-1])


def measure(root: Path, doors: int, idle: float, polls: int, requests: int) -> Row:
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        ports = stack.enter_context(twins(root, doors))
        config = Path(tmp) / "scale.toml"
        config.write_text(bank_text(Path(tmp) / "state", ports, doors))
        poll = poll_figure(root, config, polls)
        startup, rss, cpu, p50, p99 = asyncio.run(daemon_figures(root, config, idle, requests))
    busiest = min(PER_BUS, len(boards_for(doors)))
    limit = busiest * (REQUEST + REPLY + 2 * 3.5) * 10 / BAUD
    return Row(doors, startup, rss, cpu, poll, limit, p50, p99)


def table(rows: list[Row]) -> None:
    base = rows[0]
    print(
        f"{'doors':>5} | {'start s':>11} | {'RSS MB':>11} | {'idle CPU':>13} |"
        f" {'poll ms (x limit)':>24} | {'status p50 ms':>15} | {'status p99 ms':>13}"
    )
    for r in rows:
        print(
            f"{r.doors:5} | {r.startup_s:5.2f} {r.startup_s / base.startup_s:4.1f}x |"
            f" {r.rss_mb:5.1f} {r.rss_mb / base.rss_mb:4.2f}x |"
            f" {r.idle_cpu:6.2%} {r.idle_cpu / max(base.idle_cpu, 1e-6):5.1f}x |"
            f" {r.poll_s * 1000:6.1f} ({r.poll_s / r.limit_s:4.2f}x)"
            f" {r.poll_s / base.poll_s:5.1f}x |"
            f" {r.status_p50_s * 1000:7.2f} {r.status_p50_s / base.status_p50_s:5.1f}x |"
            f" {r.status_p99_s * 1000:7.2f} {r.status_p99_s / base.status_p99_s:5.1f}x"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="16,96,384,768")
    parser.add_argument("--idle", type=float, default=10.0, help="seconds of idle CPU sampled")
    parser.add_argument("--polls", type=int, default=20)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout to measure")
    args = parser.parse_args()
    root = args.root.resolve()
    print(f"lockerd at {root}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    rows = [
        measure(root, int(n), args.idle, args.polls, args.requests) for n in args.sizes.split(",")
    ]
    table(rows)


if __name__ == "__main__":
    main()
