"""How fast a locker drains a backlog to the back office, and its memory while it does.

Writes a backlog of journal events (100,000 by default) into a fresh store,
starts the reference back office in its own process (``lockerd back-office``),
and times the real coordinator pushing it all: batches of ``sync.batch``,
each acknowledged before the next, the store on its own thread as in the
daemon. Prints events per second, the same for one event a request (the
budget: batches >= 30x that), and the process's RSS before and while draining.

    python benchmarks/sync_drain.py [--events 100000] [--batch 500]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lockerd.clock import SystemClock  # noqa: E402
from lockerd.config.schema import SyncSection  # noqa: E402
from lockerd.store import Store  # noqa: E402
from lockerd.sync.coordinator import SyncCoordinator  # noqa: E402
from lockerd.worker import Worker  # noqa: E402
from tests.rig import bank_config  # noqa: E402

TOKEN = "benchmark-token"


def rss_mb() -> float:
    text = Path("/proc/self/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+)", text).group(1)) / 1024


def backlog(store: Store, count: int) -> None:
    data = {"compartment": "S1", "intent": 1, "attempt": 1, "door": "closed"}
    with store.db.transaction():
        for n in range(count):
            store.db.journal(1.8e9 + n, "lock.pulsed", dict(data, n=n))


async def drain(state: Path, url: str, token: Path, events: int, batch: int) -> tuple[float, float]:
    config = bank_config(state)
    config = dataclasses.replace(
        config,
        locker=dataclasses.replace(config.locker, id=state.name),
        sync=SyncSection(url=url, token_file=str(token), batch=batch, timeout_s=60),
    )
    db = Worker("store")
    store = await db(Store.open, config, SystemClock())
    await db(backlog, store, events)
    sync = SyncCoordinator(config, store, db, None, SystemClock())  # type: ignore[arg-type]
    peak = rss_mb()

    async def watch() -> None:
        nonlocal peak
        while True:
            peak = max(peak, rss_mb())
            await asyncio.sleep(0.05)

    watcher = asyncio.ensure_future(watch())
    started = time.perf_counter()
    await sync.push_all()
    elapsed = time.perf_counter() - started
    watcher.cancel()
    assert await db(store.journal.unsent_count) == 0
    await sync.close()
    await db(store.close)
    db.shutdown()
    return events / elapsed, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--single", type=int, default=2_000, help="events sent one a request")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        token = work / "token"
        token.write_text(TOKEN)
        office = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "lockerd",
                "back-office",
                "--port",
                "0",
                "--token-file",
                str(token),
                "--database",
                str(work / "office.db"),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            url = office.stdout.readline().split(" at ", 1)[1].strip()
            before = rss_mb()
            rate, peak = asyncio.run(drain(work / "big", url, token, args.events, args.batch))
            single, _ = asyncio.run(drain(work / "one", url, token, args.single, 1))
        finally:
            office.terminate()
            office.wait()
    print(f"backlog of {args.events} events, batches of {args.batch}")
    print("  (the reference back office in its own process, on loopback)")
    print(f"  drained at {rate:,.0f} events/s ({args.events / rate:.1f} s)")
    print(f"  one event a request: {single:,.0f} events/s")
    print(f"  batches are {rate / single:.0f}x that (budget >= 30x)")
    print(f"  RSS before the store opened {before:.0f} MB, peak while draining {peak:.0f} MB")


if __name__ == "__main__":
    main()
