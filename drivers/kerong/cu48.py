"""Pure frame codec for the Kerong KR-CU48: ``STX BOARD LOCK CMD ETX SUM``, 6 bytes.

Requests: 0x60 status (LOCK byte 0), 0x61 open (LOCK is the 0-based lock,
0..47). The status reply is 18 bytes, ``02 BOARD 00 75 D0..D11 03 SUM``:
D0..D5 are 48 lock bits (D0 bit 0 = lock 1), D6..D11 a second 48-bit field
that captures show set alongside a stored item, taken here as the sensor
inputs. SUM is the Kerong sum (hardware.md section 1.2, from captures of a
real controller). Some firmware answers an open with a short 0x75 frame;
nothing depends on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from drivers.kerong.sumframe import ETX, STX, SumFrameDecoder, checksum

CMD_STATUS = 0x60
CMD_OPEN = 0x61
REPLY = 0x75
LOCKS = 48
MAX_BOARD = 15

REQUEST_LENGTHS: Mapping[int, int] = {CMD_STATUS: 6, CMD_OPEN: 6}
REPLY_LENGTHS: Mapping[int, int] = {REPLY: 18}


@dataclass(frozen=True, slots=True)
class Frame:
    board: int
    lock_index: int
    cmd: int
    payload: bytes = b""

    @property
    def lock(self) -> int:
        """1-based lock number of an open frame."""
        return self.lock_index + 1

    def encode(self) -> bytes:
        body = bytes((STX, self.board, self.lock_index, self.cmd, *self.payload, ETX))
        return body + bytes((checksum(body),))


@dataclass(frozen=True, slots=True)
class Status:
    """48 lock bits and 48 sensor bits, bit 0 = channel 1."""

    board: int
    locks: int
    sensors: int

    def encode(self) -> bytes:
        payload = self.locks.to_bytes(6, "little") + self.sensors.to_bytes(6, "little")
        return Frame(self.board, 0, REPLY, payload).encode()


def _check_board(board: int) -> None:
    if not 0 <= board <= MAX_BOARD:
        raise ValueError(f"CU48 board address {board} outside 0..{MAX_BOARD}")


def status_request(board: int) -> bytes:
    """``02 BOARD 00 60 03 SUM``."""
    _check_board(board)
    return Frame(board, 0, CMD_STATUS).encode()


def open_request(board: int, lock: int) -> bytes:
    """``02 BOARD LOCK-1 61 03 SUM``: pulse one lock (1..48)."""
    _check_board(board)
    if not 1 <= lock <= LOCKS:
        raise ValueError(f"CU48 lock {lock} outside 1..{LOCKS}")
    return Frame(board, lock - 1, CMD_OPEN).encode()


def decode_status(frame: Frame) -> Status:
    if frame.cmd != REPLY or len(frame.payload) != 12:
        raise ValueError(f"not a CU48 status frame: cmd 0x{frame.cmd:02X}")
    payload = frame.payload
    return Status(
        frame.board, int.from_bytes(payload[:6], "little"), int.from_bytes(payload[6:], "little")
    )


class Decoder(SumFrameDecoder[Frame]):
    """CU48 frames; ``lengths`` is :data:`REQUEST_LENGTHS` or :data:`REPLY_LENGTHS`."""

    def __init__(self, lengths: Mapping[int, int]):
        super().__init__(lengths, 3, lambda raw: Frame(raw[1], raw[2], raw[3], raw[4:-2]))
