"""Finding frames in a byte stream: the part every serial codec shares.

A frame starts with one of a few known bytes, its length follows from its
header, and it ends in a check (an ETX and a sum, or an XOR). RS-485 gives
us bytes in any chunking, with noise, truncated frames and late replies, and
boards never NAK. So the decoder scans for a start byte, waits for the
length the header implies, checks the frame whole, and on any mismatch
drops one byte and scans again: a payload byte that equals a start byte can
never make a frame that passes the check by accident more often than the
check itself allows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

F = TypeVar("F")

#: ``length_of`` answers this when the header is not complete yet.
NEED_MORE = -1


class StreamDecoder(Generic[F]):
    """Turns a byte stream into checked frames; counters say what was dropped."""

    def __init__(
        self,
        *,
        starts: bytes,
        length_of: Callable[[bytearray], int | None],
        check: Callable[[bytes], bool],
        parse: Callable[[bytes], F],
    ):
        """
        Args:
            starts: the bytes a frame may start with.
            length_of: total frame length from the buffered header, None for
                an unknown command, or :data:`NEED_MORE`.
            check: whether a complete candidate frame is valid.
            parse: the frame value made from valid bytes.
        """
        self._starts = starts
        self._length_of = length_of
        self._check = check
        self._parse = parse
        self._buffer = bytearray()
        self.frames = 0
        self.bad_checksum = 0
        self.unknown_command = 0
        self.dropped_bytes = 0

    def reset(self) -> None:
        """Forget any partial frame (a new request starts a new exchange)."""
        self.dropped_bytes += len(self._buffer)
        self._buffer.clear()

    def feed(self, data: bytes) -> list[F]:
        """Add received bytes; return every complete, valid frame they finish."""
        self._buffer += data
        out: list[F] = []
        while (frame := self._next()) is not None:
            out.append(frame)
        return out

    def _next(self) -> F | None:
        buf = self._buffer
        while True:
            start = self._first_start(buf)
            if start < 0:
                self.dropped_bytes += len(buf)
                buf.clear()
                return None
            if start:
                self.dropped_bytes += start
                del buf[:start]
            length = self._length_of(buf)
            if length == NEED_MORE:
                return None
            if length is None:
                self.unknown_command += 1
                self._skip()
                continue
            if len(buf) < length:
                return None
            raw = bytes(buf[:length])
            if not self._check(raw):
                self.bad_checksum += 1
                self._skip()
                continue
            del buf[:length]
            self.frames += 1
            return self._parse(raw)

    def _first_start(self, buf: bytearray) -> int:
        """Index of the first start byte in ``buf``, or -1."""
        found = [i for i in map(buf.find, self._starts) if i >= 0]
        return min(found) if found else -1

    def _skip(self) -> None:
        del self._buffer[:1]
        self.dropped_bytes += 1
