"""The frame envelope every Kerong board shares: ``STX ... CMD ... ETX SUM``.

SUM is the low byte of the arithmetic sum of every preceding byte (STX and ETX
included). The CU16 (:mod:`drivers.kerong.cu16`) and the CU48
(:mod:`drivers.kerong.cu48`) differ in where CMD sits and in the lengths.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TypeVar

from drivers.framing import NEED_MORE, StreamDecoder

F = TypeVar("F")

STX = 0x02
ETX = 0x03


def checksum(data: bytes) -> int:
    """Kerong SUM: the low byte of the sum of ``data``."""
    return sum(data) & 0xFF


class SumFrameDecoder(StreamDecoder[F]):
    """Kerong ``STX ... CMD ... ETX SUM`` frames, with CMD at byte ``cmd_offset``.

    ``lengths`` maps each CMD the listening end expects to its frame length.
    """

    def __init__(self, lengths: Mapping[int, int], cmd_offset: int, parse: Callable[[bytes], F]):
        self._lengths = lengths
        self._cmd_offset = cmd_offset
        super().__init__(starts=bytes((STX,)), length_of=self._length, check=_sum_ok, parse=parse)

    def _length(self, buf: bytearray) -> int | None:
        if len(buf) <= self._cmd_offset:
            return NEED_MORE
        return self._lengths.get(buf[self._cmd_offset])


def _sum_ok(raw: bytes) -> bool:
    return raw[-2] == ETX and checksum(raw[:-1]) == raw[-1]
