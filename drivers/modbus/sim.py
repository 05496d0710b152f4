"""Simulator twin of Modbus RTU relay boards (Waveshare-style) on a pty.

Each unit answers FC05 (a relay on/off at 0..N-1, or a timed "flash on" at
``pulse_base``+relay: the lock is pulsed), FC01 (relay states) and FC02
(its opto inputs, one per door, polarity ``closed_bit``), with CRC-16/MODBUS
from pymodbus. FC05 is answered with an echo of the request, as the Modbus
standard says, unless ``wrong_echo`` is set. Other function codes get
exception 01. Faults and line noise: see :mod:`drivers.simserial`.

Not modelled: the 3.5-character silence between frames (frames are found by
address, length and CRC), FC15/16, broadcast (unit 0), the address and baud
registers, and the flash-off command.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from pymodbus.framer import FramerRTU

from drivers.framing import NEED_MORE, StreamDecoder
from drivers.simserial import SerialSimulator, SimBoard

FIXED = (1, 2, 3, 5, 6)  # request function codes with 8-byte RTU frames


def crc(frame: bytes) -> bytes:
    return struct.pack(">H", FramerRTU.compute_CRC(frame))


@dataclass(frozen=True)
class Request:
    unit: int
    function: int
    address: int
    value: int
    raw: bytes


@dataclass
class SimRelayBoard(SimBoard):
    channels: int = 8
    pulse_base: int = 0x0200
    pulse_unit_ms: int = 100
    #: Relays switched on with a plain FC05 (not a flash): a coil left energized.
    on: int = 0
    #: The last flash per relay (1-based): its length in ms.
    flashes: list[tuple[int, int]] | None = None
    #: Fault: every FC05 reply echoes this (coil, value), with a good CRC,
    #: whatever was written; the board still acts on what it received.
    wrong_echo: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        self.flashes = []


class ModbusSimulator(SerialSimulator[SimRelayBoard, Request]):
    name = "modbus-sim"

    def __init__(self, boards: list[SimRelayBoard], **kwargs: Any):
        units = bytes(b.address for b in boards)

        def length_of(buf: bytearray) -> int | None:
            if len(buf) < 2:
                return NEED_MORE
            return 8 if buf[1] in FIXED else None

        decoder = StreamDecoder(
            starts=units,
            length_of=length_of,
            check=lambda raw: crc(raw[:-2]) == raw[-2:],
            parse=_parse,
        )
        super().__init__(boards, decoder, **kwargs)

    def raw(self, frame: Request) -> bytes:
        return frame.raw

    def handle(self, frame: Request) -> None:
        board = self.boards[frame.unit]
        if frame.function == 5:
            self._write_coil(board, frame)
            self._reply(board, _echo(board, frame))
        elif frame.function in (1, 2):
            bits = board.on if frame.function == 1 else board.sensor_bits()
            self._reply(board, _bits_reply(frame, bits >> frame.address))
        else:
            body = bytes((frame.unit, frame.function | 0x80, 0x01))
            self._reply(board, body + crc(body))

    @staticmethod
    def _write_coil(board: SimRelayBoard, frame: Request) -> None:
        relay = frame.address - board.pulse_base + 1
        if 1 <= relay <= board.channels:
            assert board.flashes is not None
            board.flashes.append((relay, frame.value * board.pulse_unit_ms))
            board.door(relay).pulse(frame.value * board.pulse_unit_ms / 1000)
        elif frame.address < board.channels:
            mask = 1 << frame.address
            if frame.value == 0xFF00:
                board.on |= mask
                board.door(frame.address + 1).coil(True)
            elif frame.value == 0x0000:
                board.on &= ~mask
                board.door(frame.address + 1).coil(False)


def _parse(raw: bytes) -> Request:
    address, value = struct.unpack(">HH", raw[2:6])
    return Request(raw[0], raw[1], address, value, raw)


def _echo(board: SimRelayBoard, frame: Request) -> bytes:
    """FC05 answers with an echo of the request (or, as a fault, of another write)."""
    if board.wrong_echo is None:
        return frame.raw
    body = struct.pack(">BBHH", frame.unit, frame.function, *board.wrong_echo)
    return body + crc(body)


def _bits_reply(frame: Request, bits: int) -> bytes:
    count = frame.value
    data = (bits & ((1 << count) - 1)).to_bytes((count + 7) // 8, "little")
    body = bytes((frame.unit, frame.function, len(data))) + data
    return body + crc(body)
