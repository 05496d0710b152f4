"""Pure frame codec for the Kerong KR-CU16 protocol: bytes in, values out, no I/O.

Frames are ``STX ADDR CMD [DATA...] ETX SUM`` with STX 0x02, ETX 0x03 and SUM
the low byte of the arithmetic sum of every preceding byte (STX and ETX
included). ADDR carries the board number in its high nibble and, for an
unlock, the 0-based lock index in its low nibble.

Frames are found in the byte stream by :mod:`drivers.framing`: scan for
STX, take the length CMD implies, check ETX and SUM, and on any mismatch
drop one byte and resynchronise. Payload bytes may equal STX, so a frame is
only accepted whole.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from drivers.kerong.sumframe import ETX, STX, SumFrameDecoder, checksum

CMD_STATUS = 0x30
CMD_UNLOCK = 0x31
CMD_BUS_STATUS = 0x32
CMD_UNLOCK_ALL = 0x33
REPLY_STATUS = 0x35
REPLY_BUS_STATUS = 0x36
CMD_ENERGIZE_TIME = 0x37
REPLY_ENERGIZE_TIME = 0x38

#: ADDR of the bus-wide status query (0x32); board 15 would collide with it.
BROADCAST_ADDR = 0xF0
MAX_BOARD = 14
LOCKS = 16
#: Energize time is set in 10 ms units; Kerong's own tool accepts 0-24000 ms.
MAX_ENERGIZE_MS = 24_000

#: Total frame length by CMD, for frames a host sends.
REQUEST_LENGTHS: Mapping[int, int] = {
    CMD_STATUS: 5,
    CMD_UNLOCK: 5,
    CMD_BUS_STATUS: 5,
    CMD_UNLOCK_ALL: 5,
    CMD_ENERGIZE_TIME: 7,
}
#: Total frame length by CMD, for frames a board sends.
REPLY_LENGTHS: Mapping[int, int] = {
    REPLY_STATUS: 9,
    REPLY_BUS_STATUS: 9,
    REPLY_ENERGIZE_TIME: 7,
}


@dataclass(frozen=True, slots=True)
class Frame:
    """One checked frame: its ADDR, CMD and the bytes between CMD and ETX."""

    addr: int
    cmd: int
    payload: bytes = b""

    @property
    def board(self) -> int:
        return self.addr >> 4

    @property
    def lock(self) -> int:
        """1-based lock number of an unlock frame."""
        return (self.addr & 0x0F) + 1

    def encode(self) -> bytes:
        body = bytes((STX, self.addr, self.cmd, *self.payload, ETX))
        return body + bytes((checksum(body),))


@dataclass(frozen=True, slots=True)
class Status:
    """A status reply: 16 lock-hook bits and 16 sensor (IR) bits, bit 0 = channel 1."""

    board: int
    locks: int
    sensors: int
    cmd: int = REPLY_STATUS

    def encode(self) -> bytes:
        payload = bytes(
            (self.locks & 0xFF, self.locks >> 8, self.sensors & 0xFF, self.sensors >> 8)
        )
        return Frame(self.board << 4, self.cmd, payload).encode()


def _check_board(board: int) -> None:
    if not 0 <= board <= MAX_BOARD:
        raise ValueError(f"CU16 board address {board} outside 0..{MAX_BOARD}")


def status_request(board: int) -> bytes:
    """``02 (board<<4) 30 03 SUM``: ask one board for its lock and sensor bits."""
    _check_board(board)
    return Frame(board << 4, CMD_STATUS).encode()


def unlock_request(board: int, lock: int) -> bytes:
    """``02 (board<<4 | lock-1) 31 03 SUM``: pulse one lock (1..16)."""
    _check_board(board)
    if not 1 <= lock <= LOCKS:
        raise ValueError(f"CU16 lock {lock} outside 1..{LOCKS}")
    return Frame((board << 4) | (lock - 1), CMD_UNLOCK).encode()


def bus_status_request() -> bytes:
    """``02 F0 32 03 27``: every board on the bus answers with a 0x36 frame."""
    return Frame(BROADCAST_ADDR, CMD_BUS_STATUS).encode()


def energize_time_request(board: int, milliseconds: int) -> bytes:
    """``02 ADDR 37 HI LO 03 SUM``: set the board's pulse length, in 10 ms units."""
    _check_board(board)
    if not 0 <= milliseconds <= MAX_ENERGIZE_MS or milliseconds % 10:
        raise ValueError(
            f"energize time {milliseconds} ms is not a multiple of 10 in 0..{MAX_ENERGIZE_MS}"
        )
    units = milliseconds // 10
    return Frame(board << 4, CMD_ENERGIZE_TIME, bytes((units >> 8, units & 0xFF))).encode()


def decode_status(frame: Frame) -> Status:
    """Read the lock and sensor bits out of a 0x35 or 0x36 frame."""
    if frame.cmd not in (REPLY_STATUS, REPLY_BUS_STATUS) or len(frame.payload) != 4:
        raise ValueError(f"not a CU16 status frame: cmd 0x{frame.cmd:02X}")
    d1, d2, d3, d4 = frame.payload
    return Status(frame.board, d1 | d2 << 8, d3 | d4 << 8, frame.cmd)


def energize_units(frame: Frame) -> int:
    """Milliseconds carried by a 0x37 request or 0x38 reply."""
    hi, lo = frame.payload
    return ((hi << 8) | lo) * 10


class Decoder(SumFrameDecoder[Frame]):
    """CU16 frames: ``lengths`` is :data:`REQUEST_LENGTHS` on a board, :data:`REPLY_LENGTHS`
    on a host."""

    def __init__(self, lengths: Mapping[int, int]):
        super().__init__(lengths, 2, lambda raw: Frame(raw[1], raw[2], raw[3:-2]))
