"""Pure frame codec for the generic 0x8A/0x80 lock boards (hardware.md section 2.1).

Every frame is ``HEADER BOARD ... BCC`` where BCC is the XOR of every
preceding byte. Requests: unlock ``8A BB LL 11 BCC`` (LL 1..N; 0 would open
every lock, so it is refused here), query one ``80 BB LL 33 BCC``, query all
``80 BB 00 33 BCC``. Replies: one lock ``80 BB LL SS BCC`` (some firmware
echoes with 0x8A instead: both are accepted), all locks ``80 BB D4 D3 D2 D1
33 BCC`` with the lock groups in reverse order (D1 = locks 1-8, bit 0 =
lock 1). What SS 0x11 / 0x00 or a set bit means depends on the lock's
switch, so polarity is configuration. The unlock reply comes about a second
later, if at all; nothing depends on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import reduce

from drivers.framing import NEED_MORE, StreamDecoder

UNLOCK = 0x8A
QUERY = 0x80
BATCH = 0x90
LONG_ON = 0x9A
LONG_OFF = 0x9B
UNLOCK_CMD = 0x11
QUERY_CMD = 0x33
MAX_BOARD = 64
MAX_LOCKS = 32  # what one query-all reply carries


def bcc(data: bytes) -> int:
    """XOR of every byte."""
    return reduce(lambda a, b: a ^ b, data, 0)


def _frame(*body: int) -> bytes:
    return bytes((*body, bcc(bytes(body))))


def _check(board: int, lock: int | None = None) -> None:
    if not 1 <= board <= MAX_BOARD:
        raise ValueError(f"board address {board} outside 1..{MAX_BOARD}")
    if lock is not None and not 1 <= lock <= MAX_LOCKS:
        raise ValueError(f"lock {lock} outside 1..{MAX_LOCKS}")


def unlock_request(board: int, lock: int) -> bytes:
    """``8A BB LL 11 BCC``."""
    _check(board, lock)
    return _frame(UNLOCK, board, lock, UNLOCK_CMD)


def query_request(board: int, lock: int) -> bytes:
    """``80 BB LL 33 BCC``: one lock's state."""
    _check(board, lock)
    return _frame(QUERY, board, lock, QUERY_CMD)


def query_all_request(board: int) -> bytes:
    """``80 BB 00 33 BCC``: every lock's state in one 8-byte reply."""
    _check(board)
    return _frame(QUERY, board, 0, QUERY_CMD)


@dataclass(frozen=True, slots=True)
class LockReply:
    """``HH BB LL SS BCC``: one lock's state (after a query or an unlock)."""

    header: int
    board: int
    lock: int
    state: int

    def encode(self) -> bytes:
        return _frame(self.header, self.board, self.lock, self.state)


@dataclass(frozen=True, slots=True)
class AllReply:
    """``80 BB D4 D3 D2 D1 33 BCC``: 32 lock bits, bit 0 = lock 1."""

    board: int
    bits: int

    def encode(self) -> bytes:
        groups = self.bits.to_bytes(4, "big")  # D4 (locks 25-32) first
        return _frame(QUERY, self.board, *groups, QUERY_CMD)


@dataclass(frozen=True, slots=True)
class Request:
    """A host frame as a board sees it."""

    header: int
    board: int
    body: bytes
    raw: bytes

    @property
    def lock(self) -> int:
        return self.body[0]

    @property
    def command(self) -> int:
        return self.body[-1]


def _bcc_ok(raw: bytes) -> bool:
    return bcc(raw[:-1]) == raw[-1]


def reply_decoder(length: int) -> StreamDecoder[LockReply | AllReply]:
    """Replies of one known length (5: one lock, 8: all locks), either header."""

    def parse(raw: bytes) -> LockReply | AllReply:
        if length == 8:
            return AllReply(raw[1], int.from_bytes(raw[2:6], "big"))
        return LockReply(raw[0], raw[1], raw[2], raw[3])

    def check(raw: bytes) -> bool:
        return _bcc_ok(raw) and (length != 8 or (raw[0] == QUERY and raw[6] == QUERY_CMD))

    return StreamDecoder(
        starts=bytes((QUERY, UNLOCK)),
        length_of=lambda buf: length,
        check=check,
        parse=parse,
    )


REQUEST_LENGTHS: Mapping[int, int] = {UNLOCK: 5, QUERY: 5, LONG_ON: 5, LONG_OFF: 5, BATCH: 6}


def request_decoder() -> StreamDecoder[Request]:
    """Host frames, as a board (the simulator) reads them."""

    def length_of(buf: bytearray) -> int | None:
        return REQUEST_LENGTHS.get(buf[0]) if buf else NEED_MORE

    return StreamDecoder(
        starts=bytes(REQUEST_LENGTHS),
        length_of=length_of,
        check=_bcc_ok,
        parse=lambda raw: Request(raw[0], raw[1], raw[2:-1], raw),
    )
