"""Serial round trips per board family, and the full-bank poll of a 384-door bank.

Each twin runs in its own process (a board is another machine) on a pty and
models wire time at the bus's baud rate, so a figure is the daemon's own
code (link, codec, bank, bus thread) on top of the time the bytes would take
on an 8N1 line. Printed against PERFORMANCE.md: a round trip's software
overhead above wire time (p50 <= 10%, p99 <= 25%), and a full poll
<= 1.25 x the physical limit of the topology: wire time plus a 3.5-character
silence between frames (a configured ``gap_ms`` longer than that is software's
choice, so it counts against the poll, not in the limit).

    python benchmarks/bus_poll.py [--samples 300] [--polls 30]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from drivers.generic8a.board import Generic8aBoard  # noqa: E402
from drivers.kerong.board import Cu16Board, Cu48Board  # noqa: E402
from drivers.link import SerialLink  # noqa: E402
from drivers.modbus.board import ModbusRelayBoard, open_client  # noqa: E402
from lockerd import hardware  # noqa: E402
from lockerd.bank import Bank  # noqa: E402
from lockerd.clock import SystemClock  # noqa: E402
from lockerd.config import parse  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@contextmanager
def twin(family: str, baud: int, addresses: str) -> Iterator[str]:
    """A twin in its own process; yields its pty path."""
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "benchmarks" / "twin.py"), family, str(baud), addresses],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdin is not None
    try:
        yield proc.stdout.readline().strip()
    finally:
        proc.stdin.close()
        proc.wait(timeout=10)


def _serial(board: Callable[[SerialLink], Any]) -> Callable[[str, int], tuple[Any, Any]]:
    def open_board(port: str, baud: int) -> tuple[Any, Any]:
        link = SerialLink(port, baud, gap=0)
        return board(link), link

    return open_board


def _modbus(port: str, baud: int) -> tuple[Any, Any]:
    client = open_client(port, baud, 0.3)
    return ModbusRelayBoard(client, 1, 8, inputs=8), client


# family: (twin addresses, open the board on a port, baud, request bytes, reply bytes)
FAMILIES: dict[str, tuple[str, Callable[[str, int], tuple[Any, Any]], int, int, int]] = {
    "kerong-cu16": ("0", _serial(lambda link: Cu16Board(link, 0)), 19200, 5, 9),
    "kerong-cu48": ("0", _serial(lambda link: Cu48Board(link, 0)), 19200, 6, 18),
    "generic-8a": ("1", _serial(lambda link: Generic8aBoard(link, 1, 8)), 9600, 5, 8),
    "modbus-rtu": ("1", _modbus, 9600, 8, 6),
}


def round_trips(samples: int) -> None:
    print("status round trip, twin in its own process, wire time modelled")
    for name, (address, open_board, baud, request, reply) in FAMILIES.items():
        with twin(name, baud, address) as port:
            board, port_handle = open_board(port, baud)
            wire = (request + reply) * 10 / baud
            times = []
            for _ in range(samples):
                started = time.perf_counter()
                board.read_inputs()
                times.append(time.perf_counter() - started)
            port_handle.close()
        over = [(t - wire) / wire for t in times]
        median, p99 = statistics.median(times) * 1000, percentile(times, 0.99) * 1000
        print(
            f"  {name:12} {baud:5} baud  wire {wire * 1000:6.2f} ms  median {median:6.2f} ms"
            f"  p99 {p99:6.2f} ms  overhead: median {statistics.median(over):5.1%} (budget 10%),"
            f" p99 {percentile(over, 0.99):5.1%} (budget 25%)"
        )


BANK = """
[locker]
id = "bench"
[state]
directory = "{state}"
[timing]
poll_interval_ms = 20
[[size]]
name = "S"
[[power_group]]
name = "psu"
[[bus]]
name = "rs485"
protocol = "kerong-cu48"
port = "{port}"
baud = {baud}
gap_ms = {gap}
{boards}{compartments}"""


def bank_text(state: Path, port: str, baud: int, gap: int, boards: int) -> str:
    board_text = "".join(
        f'[[board]]\nname = "b{b}"\nbus = "rs485"\npower_group = "psu"\naddress = {b}\n'
        for b in range(boards)
    )
    comps = "".join(
        f'[[compartment]]\nid = "C{b}-{n}"\nsize = "S"\ncolumn = {n}\nrow = {b + 1}\n'
        f'board = "b{b}"\nlock = {n}\n'
        for b in range(boards)
        for n in range(1, 49)
    )
    return BANK.format(
        state=state, port=port, baud=baud, gap=gap, boards=board_text, compartments=comps
    )


async def full_poll(baud: int, gap_ms: int, polls: int, boards: int = 8, silent: int = 0) -> None:
    """``silent``: that many more boards in the config than answer on the line."""
    addresses = ",".join(str(b) for b in range(boards))
    with twin("kerong-cu48", baud, addresses) as port, tempfile.TemporaryDirectory() as tmp:
        text = bank_text(Path(tmp), port, baud, gap_ms, boards + silent)
        config = parse(text, Path(tmp) / "b.toml")
        opened = hardware.build(config)

        async def never(comp: str, intent: int) -> bool:
            return False

        bank = Bank(config, opened.drivers, opened.workers, SystemClock(), never)
        await bank.read_all()
        times = []
        for _ in range(polls):
            started = time.perf_counter()
            await bank.poll_bus("rs485", bank.clock.monotonic())
            times.append(time.perf_counter() - started)
        await bank.close()
        opened.close()
    wire = boards * (6 + 18) * 10 / baud
    limit = wire + boards * 2 * 3.5 * 10 / baud  # a silence before the request and the reply
    median, p99 = statistics.median(times), percentile(times, 0.99)
    dead = f" + {silent} silent" if silent else ""
    gap = "3.5 chars" if gap_ms < 0 else f"{gap_ms} ms"
    print(
        f"  {boards} x CU48{dead} = {boards * 48} doors at {baud:5} baud, gap {gap:>9}:"
        f" wire {wire * 1000:4.0f} ms, physical limit {limit * 1000:4.0f} ms;"
        f" poll median {median * 1000:4.0f} ms ({median / limit:4.2f}x),"
        f" p99 {p99 * 1000:4.0f} ms ({p99 / limit:4.2f}x; budget 1.25x)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--polls", type=int, default=30)
    args = parser.parse_args()
    round_trips(args.samples)
    print("full-bank poll through the bank's bus thread")
    for baud, gap in ((9600, -1), (19200, -1), (19200, 20)):
        asyncio.run(full_poll(baud, gap, args.polls))
    print("the same bus with a board that never answers (probed once every offline_probe_s)")
    asyncio.run(full_poll(19200, -1, 4 * args.polls, silent=1))


if __name__ == "__main__":
    main()
