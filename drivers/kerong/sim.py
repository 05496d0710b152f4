"""Simulator twin of a chain of KR-CU16 boards, speaking CU16 bytes on a pty.

Each board has sixteen :class:`~drivers.simworld.SimDoor` s. A status
request (0x30) is answered with a 0x35 frame whose lock bits follow the
latches and whose sensor bits follow the doors, each in the polarity the
board is set to; a bus query (0x32 to 0xF0) is answered by every board in
address order with 0x36 frames; an unlock (0x31) pulses one lock and by
default sends no reply; 0x37 sets the energize time and is answered with
0x38 carrying the board's setting (a board may lack 0x37, or keep its own
setting: :class:`SimCu16` has a switch for each). Frames with a bad checksum
or an unknown command are dropped silently, as real boards do. Faults: see
:mod:`drivers.simserial`.

Each lock is energized for the board's energize time (500 ms unless set
with 0x37), which is how long its latch is out if nobody opens the door.

Not modelled: the TEST and RESET
buttons, baud-rate changes, and the 0x39/0x40 commands.
"""

from __future__ import annotations

import argparse
import threading
from dataclasses import dataclass
from typing import Any

from drivers.kerong import cu16, cu48
from drivers.simserial import BoardFaults, SerialSimulator, SimBoard

__all__ = ["BoardFaults", "Cu16Simulator", "Cu48Simulator", "SimCu16", "SimCu48"]


def _infrared_inputs(board: SimBoard) -> None:
    """A Kerong board on its own (no config saying what is wired): each input is the
    infrared item sensor of its own lock, as the board is sold."""
    if board.wiring is None:
        board.wiring = {}
        board.items = {n: board.door(n) for n in range(1, board.channels + 1)}


@dataclass
class SimCu16(SimBoard):
    """One simulated CU16: sixteen doors, and an infrared input per lock."""

    reply_to_unlock: bool = False
    #: False: a firmware without 0x37, which drops it like any unknown command.
    answers_energize_time: bool = True
    #: True: 0x37 is answered but not applied; the 0x38 reply carries the old setting.
    keeps_energize_time: bool = False
    channels: int = cu16.LOCKS

    def __post_init__(self) -> None:
        super().__post_init__()
        _infrared_inputs(self)

    def status(self, cmd: int = cu16.REPLY_STATUS) -> cu16.Status:
        return cu16.Status(self.address, self.lock_bits(), self.sensor_bits(), cmd)


class Cu16Simulator(SerialSimulator[SimCu16, cu16.Frame]):
    """A chain of simulated CU16 boards on one line."""

    name = "cu16-sim"

    def __init__(self, boards: list[SimCu16], **kwargs: Any):
        super().__init__(boards, cu16.Decoder(cu16.REQUEST_LENGTHS), **kwargs)

    def raw(self, frame: cu16.Frame) -> bytes:
        return frame.encode()

    def handle(self, frame: cu16.Frame) -> None:
        if frame.cmd == cu16.CMD_BUS_STATUS and frame.addr == cu16.BROADCAST_ADDR:
            for address in sorted(self.boards):
                each = self.boards[address]
                self._reply(each, each.status(cu16.REPLY_BUS_STATUS).encode())
            return
        board = self.boards.get(frame.board)
        if board is None:
            return
        if frame.cmd == cu16.CMD_STATUS:
            self._reply(board, board.status().encode())
        elif frame.cmd == cu16.CMD_UNLOCK:
            board.pulse(frame.lock)
            if board.reply_to_unlock:
                self._reply(board, board.status().encode())
        elif frame.cmd == cu16.CMD_UNLOCK_ALL:
            for channel in range(1, board.channels + 1):
                board.pulse(channel)
        elif frame.cmd == cu16.CMD_ENERGIZE_TIME and board.answers_energize_time:
            if not board.keeps_energize_time:
                board.energize_ms = cu16.energize_units(frame)
            units = (board.energize_ms // 10).to_bytes(2, "big")
            reply = cu16.Frame(frame.addr, cu16.REPLY_ENERGIZE_TIME, units)
            self._reply(board, reply.encode())


def main(argv: list[str] | None = None) -> int:
    """Run a simulated CU16 chain on a pty and print its path (for manual testing)."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--boards", default="0", help="comma-separated board addresses")
    parser.add_argument("--locked-bit", type=int, choices=(0, 1), default=1)
    parser.add_argument("--closed-bit", type=int, choices=(0, 1), default=1)
    args = parser.parse_args(argv)
    boards = [
        SimCu16(int(a), locked_bit=args.locked_bit, closed_bit=args.closed_bit)
        for a in args.boards.split(",")
    ]
    sim = Cu16Simulator(boards).start()
    print(sim.port, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        sim.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


@dataclass
class SimCu48(SimBoard):
    """One simulated CU48: forty-eight doors, and an infrared input per lock."""

    reply_to_unlock: bool = False
    channels: int = cu48.LOCKS

    def __post_init__(self) -> None:
        super().__post_init__()
        _infrared_inputs(self)

    def status(self) -> cu48.Status:
        return cu48.Status(self.address, self.lock_bits(), self.sensor_bits())


class Cu48Simulator(SerialSimulator[SimCu48, cu48.Frame]):
    """A chain of simulated CU48 boards: 0x60 is answered with an 18-byte 0x75 status,
    0x61 pulses one lock (and, if asked, answers with a short 0x75 frame)."""

    name = "cu48-sim"

    def __init__(self, boards: list[SimCu48], **kwargs: Any):
        super().__init__(boards, cu48.Decoder(cu48.REQUEST_LENGTHS), **kwargs)

    def raw(self, frame: cu48.Frame) -> bytes:
        return frame.encode()

    def handle(self, frame: cu48.Frame) -> None:
        board = self.boards.get(frame.board)
        if board is None:
            return
        if frame.cmd == cu48.CMD_STATUS:
            self._reply(board, board.status().encode())
        elif frame.cmd == cu48.CMD_OPEN and frame.lock <= board.channels:
            board.pulse(frame.lock)
            if board.reply_to_unlock:
                self._reply(board, cu48.Frame(board.address, frame.lock_index, cu48.REPLY).encode())
