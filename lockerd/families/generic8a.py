"""The generic 0x8A/0x80 lock boards (``generic-8a``, XOR checksum): config and factory.

The driver is ``drivers/generic8a`` (codec, board, twin).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from drivers.generic8a.board import Generic8aBoard
from drivers.link import Link
from lockerd.config._typed import opt
from lockerd.families._serial import open_serial
from lockerd.families.base import Family, check_addressed, describe_hooked, timing

if TYPE_CHECKING:
    from drivers.generic8a.sim import Generic8aSimulator, SimGeneric8aBoard
    from lockerd.config.schema import BusConfig
    from lockerd.hardware import Hardware


@dataclass(frozen=True)
class Generic8aBoardConfig:
    name: str = opt(doc="board name compartments refer to")
    bus: str = opt(doc="the bus the board is on")
    power_group: str = opt(doc="the power group its locks draw from")
    address: int = opt(doc="board address set by its DIP switches", min=1, max=64)
    locks: int = opt(doc="lock channels the board has (one status reply covers 32)", min=1, max=32)
    locked_bit: int = opt(1, doc="status bit value that means the lock is shut", min=0, max=1)
    energize_ms: int = opt(
        1000,
        doc="how long the board energizes a lock (the vendor text: the lock needs 1 s to open)",
        min=100,
        max=24000,
    )
    has_feedback: ClassVar[bool] = True
    door_from_hook: ClassVar[bool] = True
    sensor_channels: ClassVar[int] = 0
    closed_bit: ClassVar[int] = 1
    items: ClassVar[bool] = False

    @property
    def channels(self) -> int:
        return self.locks


def _sim(twins: list[SimGeneric8aBoard]) -> Generic8aSimulator:
    from drivers.generic8a.sim import Generic8aSimulator  # only with a simulated bus

    return Generic8aSimulator(twins)


def _twin(board: Generic8aBoardConfig, wiring: dict[int, int]) -> SimGeneric8aBoard:
    from drivers.generic8a.sim import SimGeneric8aBoard

    return SimGeneric8aBoard(
        board.address, board.locked_bit, channels=board.locks, energize_ms=board.energize_ms
    )


def _board(
    link: Link, board: Generic8aBoardConfig, bus: BusConfig, max_pulse_ms: int
) -> Generic8aBoard:
    return Generic8aBoard(
        link, board.address, board.locks, max_pulse_ms=max_pulse_ms, **timing(bus)
    )


def _open(hardware: Hardware, bus: BusConfig, boards: list[Generic8aBoardConfig]) -> None:
    open_serial(hardware, bus, boards, _sim, _twin, _board)


GENERIC_8A = Family(
    protocol="generic-8a",
    board=Generic8aBoardConfig,
    about="A generic 0x8A/0x80 lock board (XOR checksum): one switch per lock, read as the door.",
    wire="serial",
    check=check_addressed,
    describe=describe_hooked,
    open=_open,
    channel_keys=("locks",),
)
