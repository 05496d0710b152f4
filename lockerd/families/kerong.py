"""Kerong KR-CU16 and KR-CU48 lock boards (``kerong-cu16``, ``kerong-cu48``): config and factory.

The driver is ``drivers/kerong`` (codecs ``cu16.py`` and ``cu48.py``, boards, twins).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

from drivers.kerong.board import Cu16Board, Cu48Board
from drivers.link import Link
from lockerd.config._typed import opt
from lockerd.families._serial import open_serial
from lockerd.families.base import (
    BoardChecks,
    Family,
    attach_serial_item,
    check_addressed,
    describe_hooked,
    timing,
)

if TYPE_CHECKING:
    from drivers.kerong.sim import Cu16Simulator, Cu48Simulator, SimCu16, SimCu48
    from lockerd.config.schema import BusConfig
    from lockerd.hardware import Hardware


@dataclass(frozen=True)
class KerongBoardConfig:
    name: str = opt(doc="board name compartments refer to")
    bus: str = opt(doc="the bus the board is on")
    power_group: str = opt(doc="the power group its locks draw from")
    address: int = opt(doc="board address set on the board", min=0, max=14)
    locked_bit: int = opt(1, doc="lock-hook bit value that means latched", min=0, max=1)
    closed_bit: int = opt(1, doc="door-sensor bit value that means closed", min=0, max=1)
    door_input: Literal["sensor", "hook"] = opt(
        "hook",
        doc="where each door is read: hook (the lock's own switch) or sensor (a door switch"
        " the installer wired to the lock's sensor input, in place of the infrared sensor)",
    )
    item_bit: int = opt(
        1, doc="item-sensor (infrared) bit value that means something is inside", min=0, max=1
    )
    energize_ms: int = opt(
        1000,
        doc="how long the board energizes a lock (its own setting; 500 ms for"
        " electromagnetic locks, 1000 ms for motor locks)",
        min=100,
        max=24000,
    )
    channels: ClassVar[int] = 16
    has_feedback: ClassVar[bool] = True
    items: ClassVar[bool] = True

    @property
    def door_from_hook(self) -> bool:
        return self.door_input == "hook"

    @property
    def sensor_channels(self) -> int:
        return self.channels


@dataclass(frozen=True)
class Cu16BoardConfig(KerongBoardConfig):
    set_energize_time: bool = opt(
        False, doc="write energize_ms to the board at start (command 0x37; unverified on hardware)"
    )


@dataclass(frozen=True)
class Cu48BoardConfig(KerongBoardConfig):
    address: int = opt(doc="board address set on the board", min=0, max=15)
    channels: ClassVar[int] = 48


def _check_cu16(board: Cu16BoardConfig, path: str, checks: BoardChecks) -> None:
    check_addressed(board, path, checks)
    # The board takes its energize time in 10 ms steps, and 0 ms is no pulse at all.
    if board.set_energize_time and (board.energize_ms < 10 or board.energize_ms % 10):
        checks.problems.add(
            f"{path}.energize_ms",
            f"{board.energize_ms} cannot be written to the board (set_energize_time): "
            "give a multiple of 10 ms, at least 10",
        )


def _cu16_sim(twins: list[SimCu16]) -> Cu16Simulator:
    from drivers.kerong.sim import Cu16Simulator

    return Cu16Simulator(twins)


def _cu48_sim(twins: list[SimCu48]) -> Cu48Simulator:
    from drivers.kerong.sim import Cu48Simulator

    return Cu48Simulator(twins)


def _cu16_twin(board: Cu16BoardConfig, wiring: dict[int, int]) -> SimCu16:
    from drivers.kerong.sim import SimCu16  # the twins only with a simulated bus

    bits = (board.locked_bit, board.closed_bit)
    return SimCu16(board.address, *bits, wiring=wiring, energize_ms=board.energize_ms)


def _cu16(link: Link, board: Cu16BoardConfig, bus: BusConfig, max_pulse_ms: int) -> Cu16Board:
    energize = board.energize_ms if board.set_energize_time else None
    return Cu16Board(
        link, board.address, energize_ms=energize, max_pulse_ms=max_pulse_ms, **timing(bus)
    )


def _open_cu16(hardware: Hardware, bus: BusConfig, boards: list[Cu16BoardConfig]) -> None:
    open_serial(hardware, bus, boards, _cu16_sim, _cu16_twin, _cu16)


def _cu48_twin(board: Cu48BoardConfig, wiring: dict[int, int]) -> SimCu48:
    from drivers.kerong.sim import SimCu48

    bits = (board.locked_bit, board.closed_bit)
    return SimCu48(board.address, *bits, wiring=wiring, energize_ms=board.energize_ms)


def _cu48(link: Link, board: Cu48BoardConfig, bus: BusConfig, max_pulse_ms: int) -> Cu48Board:
    return Cu48Board(link, board.address, max_pulse_ms=max_pulse_ms, **timing(bus))


def _open_cu48(hardware: Hardware, bus: BusConfig, boards: list[Cu48BoardConfig]) -> None:
    open_serial(hardware, bus, boards, _cu48_sim, _cu48_twin, _cu48)


CU16 = Family(
    protocol="kerong-cu16",
    board=Cu16BoardConfig,
    about="A Kerong KR-CU16: 16 locks, 16 infrared item-sensor inputs (D3/D4). Each door is"
    ' read from its lock\'s switch unless `door_input = "sensor"` says door switches'
    " are wired to the inputs instead; see Door evidence below.",
    wire="serial",
    check=_check_cu16,
    describe=describe_hooked,
    open=_open_cu16,
    channel_keys=("door_input",),
    attach_item=attach_serial_item,
)

CU48 = Family(
    protocol="kerong-cu48",
    board=Cu48BoardConfig,
    about="A Kerong KR-CU48: 48 locks, 48 item-sensor inputs (the reply's second field);"
    " doors read as on the CU16.",
    wire="serial",
    check=check_addressed,
    describe=describe_hooked,
    open=_open_cu48,
    channel_keys=("door_input",),
    attach_item=attach_serial_item,
)
