"""Simulator twin of a chain of KR-CU16 boards, speaking CU16 bytes on a pty.

Each board has sixteen :class:`~drivers.simworld.SimDoor` s. A status
request (0x30) is answered with a 0x35 frame whose lock bits follow the
latches and whose sensor bits follow the doors, each in the polarity the
board is set to; a bus query (0x32 to 0xF0) is answered by every board in
address order with 0x36 frames; an unlock (0x31) pulses one lock and by
default sends no reply; 0x37 sets the energize time and is answered with
0x38. Frames with a bad checksum or an unknown command are dropped silently,
as real boards do.

Faults per board: silent (no reply at all), and counts of the next replies
to corrupt (bad checksum), truncate, or send late. Door faults (stuck lock,
jammed door) live on the doors.

Not modelled: wire time (replies come at pty speed unless ``reply_delay``
is set), the energize time's effect on the latch, the TEST and RESET
buttons, baud-rate changes, and the 0x39/0x40 commands.
"""

from __future__ import annotations

import argparse
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from drivers.kerong import codec
from drivers.ptypeer import PtyPeer
from drivers.simworld import SimDoor


@dataclass
class BoardFaults:
    """Switches and counters that change how one simulated board answers."""

    silent: bool = False
    corrupt_replies: int = 0
    truncate_replies: int = 0
    late_replies: int = 0
    late_by: float = 0.5


@dataclass
class SimCu16:
    """One simulated board: its doors, polarity and faults."""

    address: int
    locked_bit: int = 1
    closed_bit: int = 1
    reply_to_unlock: bool = False
    energize_ms: int = 500
    #: Sensor input -> the lock channel whose door it watches; unlisted inputs watch
    #: the door of the same-numbered lock.
    wiring: dict[int, int] = field(default_factory=dict)
    doors: list[SimDoor] = field(default_factory=lambda: [SimDoor() for _ in range(codec.LOCKS)])
    faults: BoardFaults = field(default_factory=BoardFaults)

    def door(self, channel: int) -> SimDoor:
        """The door behind lock ``channel``."""
        return self.doors[channel - 1]

    def status(self, cmd: int = codec.REPLY_STATUS) -> codec.Status:
        locks = sensors = 0
        for index, door in enumerate(self.doors):
            if door.latched == bool(self.locked_bit):
                locks |= 1 << index
            watched = self.door(self.wiring.get(index + 1, index + 1))
            if (not watched.is_open) == bool(self.closed_bit):
                sensors |= 1 << index
        return codec.Status(self.address, locks, sensors, cmd)


class Cu16Simulator:
    """A chain of simulated CU16 boards on one pty."""

    def __init__(
        self,
        boards: list[SimCu16],
        *,
        reply_delay: float = 0.0,
        now: Callable[[], float] = time.monotonic,
    ):
        self.boards = {board.address: board for board in boards}
        self.reply_delay = reply_delay
        #: Clock for the ``received`` timestamps (a test may give its fake clock).
        self.now = now
        self._decoder = codec.Decoder(codec.REQUEST_LENGTHS)
        #: Every valid frame received, as ``(now(), bytes)``.
        self.received: list[tuple[float, bytes]] = []
        self._cond = threading.Condition()
        self._peer: PtyPeer | None = None
        self._direct: bytearray | None = None
        self.port = ""

    def start(self) -> Cu16Simulator:
        """Serve on a new pty; :attr:`port` is its path."""
        self._peer = PtyPeer(self._on_bytes, name="cu16-sim")
        self.port = self._peer.port
        self._peer.start()
        return self

    def exchange(self, data: bytes) -> bytes:
        """Handle ``data`` in-process and return the replies at once (no pty, no delays).

        Late replies are lost here: a real host would have flushed them.
        """
        self._direct = bytearray()
        try:
            self._on_bytes(data)
            return bytes(self._direct)
        finally:
            self._direct = None

    def close(self) -> None:
        if self._peer is not None:
            self._peer.close()

    def board(self, address: int) -> SimCu16:
        return self.boards[address]

    @property
    def decoder(self) -> codec.Decoder:
        return self._decoder

    def frames(self) -> list[bytes]:
        with self._cond:
            return [frame for _, frame in self.received]

    def wait_for_frame(self, frame: bytes, timeout: float, after: int = 0) -> int:
        """Block until ``frame`` has been received (at index >= ``after``); return its index."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for index in range(after, len(self.received)):
                    if self.received[index][1] == frame:
                        return index
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"simulator never received {frame.hex(' ')}")
                self._cond.wait(remaining)

    def _on_bytes(self, data: bytes) -> None:
        for frame in self._decoder.feed(data):
            with self._cond:
                self.received.append((self.now(), frame.encode()))
                self._cond.notify_all()
            self._handle(frame)

    def _handle(self, frame: codec.Frame) -> None:
        if frame.cmd == codec.CMD_BUS_STATUS and frame.addr == codec.BROADCAST_ADDR:
            for address in sorted(self.boards):
                board = self.boards[address]
                self._reply(board, board.status(codec.REPLY_BUS_STATUS).encode())
            return
        target = self.boards.get(frame.board)
        if target is None:
            return
        self._answer(target, frame)

    def _answer(self, board: SimCu16, frame: codec.Frame) -> None:
        if frame.cmd == codec.CMD_STATUS:
            self._reply(board, board.status().encode())
        elif frame.cmd == codec.CMD_UNLOCK:
            board.door(frame.lock).pulse()
            if board.reply_to_unlock:
                self._reply(board, board.status().encode())
        elif frame.cmd == codec.CMD_UNLOCK_ALL:
            for door in board.doors:
                door.pulse()
        elif frame.cmd == codec.CMD_ENERGIZE_TIME:
            board.energize_ms = codec.energize_units(frame)
            self._reply(
                board, codec.Frame(frame.addr, codec.REPLY_ENERGIZE_TIME, frame.payload).encode()
            )

    def _reply(self, board: SimCu16, reply: bytes) -> None:
        faults = board.faults
        if faults.silent:
            return
        if faults.corrupt_replies:
            faults.corrupt_replies -= 1
            reply = reply[:-1] + bytes(((reply[-1] + 1) & 0xFF,))
        elif faults.truncate_replies:
            faults.truncate_replies -= 1
            reply = reply[: len(reply) // 2]
        delay = self.reply_delay
        if faults.late_replies:
            faults.late_replies -= 1
            delay += faults.late_by
            if self._direct is not None:
                return
        if self._direct is not None:
            self._direct += reply
            return
        if delay:
            time.sleep(delay)
        assert self._peer is not None
        self._peer.write(reply)


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
