"""Time from a correct pickup code posted to the kiosk API to the unlock frame on the pty.

Runs ``lockerd`` as a real process on a CU16 twin that this script owns, so
the figure covers HTTP parsing, the throttled code check and intent commit
(SQLite WAL + FULL, one fsync), the intent check, and the bus thread writing
the frame. Pulse pacing is configured short (no gap, no cooldown) and each
pickup starts after the previous pulse ended, so that it measures software,
not the power-group rule. Prints median and p99 against
the wire time of the unlock exchange (PERFORMANCE.md).

    python benchmarks/pin_to_unlock.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from drivers.kerong import cu16  # noqa: E402
from drivers.kerong.sim import Cu16Simulator, SimCu16  # noqa: E402
from tests.daemon import Daemon  # noqa: E402

BAUD = 19200
CHANNELS = 16
PULSE_MS = 50


def config_text(state: Path, port: str) -> str:
    comps = "".join(
        f'[[compartment]]\nid = "C{n}"\nsize = "S"\ncolumn = {n}\nrow = 1\n'
        f'board = "cu0"\nlock = {n}\n'
        for n in range(1, CHANNELS + 1)
    )
    return f"""
[locker]
id = "bench"
[state]
directory = "{state}"
[kiosk]
demo = true
[timing]
poll_interval_ms = 20
debounce_polls = 1
[safety]
pulse_ms = {PULSE_MS}
cooldown_s = 0
[[size]]
name = "S"
[[power_group]]
name = "psu"
gap_ms = 0
[[bus]]
name = "rs485"
protocol = "kerong-cu16"
port = "{port}"
baud = {BAUD}
gap_ms = 0
[[board]]
name = "cu0"
bus = "rs485"
power_group = "psu"
address = 0
[demo]
couriers = [{{ id = "bench", code = "9999" }}]
{comps}"""


async def cycle(
    daemon: Daemon, events, sim: Cu16Simulator, flow_id: str, lock: int, done: str
) -> None:
    door = sim.board(0).door(lock)
    await events.flow(flow_id, "open")  # its push-out spring opened it with the pulse
    assert door.is_open, f"C{lock} did not open after its pulse"
    door.close()
    await events.flow(flow_id, done)


async def one_round(daemon: Daemon, events, sim: Cu16Simulator, round_no: int) -> list[float]:
    _, login = await daemon.call("POST", "/api/courier/login", {"code": "9999"})
    for n in range(CHANNELS):
        _, flow = await daemon.call(
            "POST",
            "/api/dropoffs",
            {"barcode": f"BENCH{round_no:03d}{n:03d}", "size": "S"},
            login["token"],
        )
        await cycle(daemon, events, sim, flow["id"], int(flow["compartment"][1:]), "stored")
    _, messages = await daemon.call("GET", "/api/demo/messages")
    samples = []
    for message in messages["messages"]:
        lock = int(message["compartment_id"][1:])
        # Let the previous coil's pulse end: one energized lock per power
        # group is a rule, and its wait is not software overhead.
        await asyncio.sleep(PULSE_MS / 1000 + 0.01)
        mark = len(sim.frames())
        sent = time.monotonic()
        _, flow = await daemon.call("POST", "/api/pickups", {"code": message["code"]})
        index = await asyncio.to_thread(sim.wait_for_frame, cu16.unlock_request(0, lock), 5, mark)
        samples.append(sim.received[index][0] - sent)
        await cycle(daemon, events, sim, flow["id"], lock, "collected")
    return samples


async def main(rounds: int) -> None:
    sim = Cu16Simulator([SimCu16(0)]).start()
    for lock in range(1, CHANNELS + 1):
        # Doors with push-out springs: each opens with its pulse, with no person racing
        # the board's energize time (an event read late would find the latch caught).
        sim.board(0).door(lock).spring = True
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.toml"
        path.write_text(config_text(Path(tmp) / "state", sim.port))
        async with Daemon(path, "--log-level", "warning") as daemon:
            events = await daemon.events()
            samples: list[float] = []
            for round_no in range(rounds):
                samples += await one_round(daemon, events, sim, round_no)
            await events.close()
    sim.close()
    report(samples)


def report(samples: list[float]) -> None:
    ms = sorted(s * 1000 for s in samples)
    median = statistics.median(ms)
    p99 = ms[min(len(ms) - 1, round(0.99 * (len(ms) - 1)))]
    byte_ms = 10_000 / BAUD
    frame_wire = 5 * byte_ms
    exchange_wire = (5 + 9 + 5) * byte_ms  # unlock + status request + status reply
    print(f"correct PIN -> unlock frame on the pty, {len(ms)} pickups, CU16 at {BAUD} baud")
    print(f"  median {median:7.2f} ms   p99 {p99:7.2f} ms   max {ms[-1]:7.2f} ms")
    print(f"  unlock frame alone on the wire:        {frame_wire:5.2f} ms")
    print(f"  unlock + confirming status read, wire: {exchange_wire:5.2f} ms")
    print(
        f"  ratio to the unlock exchange: median {median / exchange_wire:4.2f}x (budget 1x), "
        f"p99 {p99 / exchange_wire:4.2f}x (budget 2x + one fsync)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="16 pickups per round")
    asyncio.run(main(parser.parse_args().rounds))
