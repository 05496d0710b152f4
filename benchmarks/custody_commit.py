"""A custody commit's cost against the disk's: reserving a compartment and storing a parcel.

Opens a real store (SQLite WAL + FULL) in a folder on the disk being measured
and times, on a bank of ``--doors`` compartments:

- one 4 KiB write + fdatasync of a plain file (the unit of the budget);
- a plain sqlite3 transaction: a journal insert and a compartment update;
- ``reserve``: a drop-off's reservation (compartment choice, unlock intent,
  journal), as the kiosk's drop-off does;
- ``store``: the door closing on it (the parcel stored, its pickup code made,
  journal), as the door poller reports it.

Prints medians and p99 and their ratio to the write + fdatasync (budget:
<= 1.5x, PERFORMANCE.md), and the median CPU time of each (this process's,
user + system: the Python and SQLite work, steadier than wall time on a
shared machine). Each round alternates the kinds, so a disk's slow
spell falls on all of them alike.

    python benchmarks/custody_commit.py [--rounds 300] [--doors 768] [--dir DIR] [--root DIR]

``--root`` measures another checkout of lockerd (a baseline) the same way.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from scale import bank_text, percentile  # this folder's; imports no lockerd

ROOT = Path(__file__).resolve().parent.parent


def timed(fn: Callable[[], Any], wall: list[float], cpu: list[float]) -> Any:
    """``fn``'s answer; appends the wall time it took, and its CPU time (this process's)."""
    started, cpu_started = time.perf_counter(), time.process_time()
    answer = fn()
    cpu.append(time.process_time() - cpu_started)
    wall.append(time.perf_counter() - started)
    return answer


def fsync_4k(path: Path) -> Callable[[], None]:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    block = os.urandom(4096)

    def write() -> None:
        os.pwrite(fd, block, 0)
        os.fdatasync(fd)

    return write


def plain_sqlite(path: Path) -> Callable[[], None]:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE journal (seq INTEGER PRIMARY KEY, at REAL, type TEXT, data TEXT)")
    conn.execute("CREATE TABLE comps (id TEXT PRIMARY KEY, state TEXT)")
    conn.execute("INSERT INTO comps VALUES ('A1', 'free')")

    def commit() -> None:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO journal (at, type, data) VALUES (?, 'x', '{}')", (time.time(),))
        conn.execute("UPDATE comps SET state = 'reserved' WHERE id = 'A1'")
        conn.execute("COMMIT")

    return commit


def run(
    folder: Path, rounds: int, doors: int
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Wall and CPU times of each kind, round by round."""
    from lockerd.clock import SystemClock
    from lockerd.config import parse
    from lockerd.store import Store

    config = parse(
        bank_text(folder / "state", ["/dev/null", "/dev/null"], doors), folder / "b.toml"
    )
    store = Store.open(config, SystemClock())
    store.compartments.sync_layout()
    kinds: dict[str, list[float]] = {
        "fdatasync 4 KiB": [],
        "sqlite3": [],
        "reserve": [],
        "store": [],
    }
    cpu: dict[str, list[float]] = {name: [] for name in kinds}
    write, plain = fsync_4k(folder / "block"), plain_sqlite(folder / "plain.db")
    for n in range(rounds):
        timed(write, kinds["fdatasync 4 KiB"], cpu["fdatasync 4 KiB"])
        timed(plain, kinds["sqlite3"], cpu["sqlite3"])
        reserve = partial(store.custody.reserve_for_dropoff, "bench", f"BENCH{n:06d}", "S")
        comp = timed(reserve, kinds["reserve"], cpu["reserve"]).compartment_id
        store.custody.door_opened(comp)
        timed(partial(store.custody.door_closed, comp), kinds["store"], cpu["store"])
        _take_out(store, comp)
    store.close()
    return kinds, cpu


def _take_out(store: Any, comp_id: str) -> None:
    """Free the compartment again (untimed), so every round sees the same bank."""
    with store.context.change() as conn:
        conn.execute("UPDATE parcels SET state = 'collected' WHERE compartment_id = ?", (comp_id,))
        conn.execute("UPDATE compartments SET state = 'free' WHERE id = ?", (comp_id,))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--doors", type=int, default=768)
    parser.add_argument("--dir", type=Path, default=None, help="a folder on the disk to measure")
    parser.add_argument("--root", type=Path, default=ROOT, help="the lockerd checkout to measure")
    args = parser.parse_args()
    sys.path.insert(0, str(args.root.resolve()))
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        kinds, cpu = run(Path(folder), args.rounds, args.doors)
    unit = statistics.median(kinds["fdatasync 4 KiB"])
    print(f"{args.rounds} rounds, {args.doors} doors; load average {os.getloadavg()[0]:.1f}")
    for name, times in kinds.items():
        median, p99 = statistics.median(times), percentile(times, 0.99)
        print(
            f"  {name:16} median {median * 1000:6.3f} ms ({median / unit:4.2f}x)"
            f"  p99 {p99 * 1000:6.3f} ms  CPU {statistics.median(cpu[name]) * 1000:6.3f} ms"
            "   budget <= 1.5x"
        )


if __name__ == "__main__":
    main()
