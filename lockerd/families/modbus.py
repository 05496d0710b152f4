"""Modbus RTU relay boards (``modbus-rtu``), pulsed by the board itself: config and factory.

The driver is ``drivers/modbus`` (board through pymodbus, twin on a pty).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from lockerd.config._typed import opt
from lockerd.families.base import (
    BoardChecks,
    Family,
    attach_serial_item,
    check_addressed,
    door_wiring,
    powered,
)

if TYPE_CHECKING:
    from drivers.modbus.sim import SimRelayBoard
    from lockerd.config.schema import BusConfig, Config
    from lockerd.hardware import Hardware


@dataclass(frozen=True)
class ModbusBoardConfig:
    name: str = opt(doc="board name compartments refer to")
    bus: str = opt(doc="the bus the board is on")
    power_group: str = opt(doc="the power group its locks draw from")
    address: int = opt(doc="Modbus unit id", min=1, max=247)
    relays: int = opt(doc="relay (lock) channels", min=1, max=64)
    pulse_base: int = opt(
        0x0200, doc="coil address of relay 1's timed pulse (Waveshare: 0x0200)", min=0, max=0xFFFF
    )
    pulse_unit_ms: int = opt(100, doc="unit of the pulse value written there", min=1, max=1000)
    inputs: int = opt(0, doc="opto inputs read as door switches (0: none)", min=0, max=64)
    inputs_base: int = opt(0, doc="discrete-input address of input 1", min=0, max=0xFFFF)
    closed_bit: int = opt(1, doc="input value that means the door is shut", min=0, max=1)
    item_bit: int = opt(
        1, doc="item-sensor input value that means something is inside", min=0, max=1
    )
    has_feedback: ClassVar[bool] = False
    door_from_hook: ClassVar[bool] = False
    locked_bit: ClassVar[int] = 1
    items: ClassVar[bool] = True

    @property
    def channels(self) -> int:
        return self.relays

    @property
    def sensor_channels(self) -> int:
        return self.inputs


def _check(board: ModbusBoardConfig, path: str, checks: BoardChecks) -> None:
    check_addressed(board, path, checks)
    pulse_ms = checks.config.safety.pulse_ms
    if board.pulse_unit_ms > pulse_ms and checks.problems.intact("safety.pulse_ms"):
        checks.problems.add(f"{path}.pulse_unit_ms", "is longer than safety.pulse_ms")


def _describe(board: ModbusBoardConfig, config: Config) -> str:
    return (
        f"unit {board.address}, {board.relays} relays pulsed by the board,"
        f" {board.inputs} door inputs; closed={board.closed_bit}; {powered(board, config)}"
    )


def _twin(board: ModbusBoardConfig, wiring: dict[int, int]) -> SimRelayBoard:
    from drivers.modbus.sim import SimRelayBoard

    return SimRelayBoard(
        board.address,
        closed_bit=board.closed_bit,
        wiring=wiring,
        channels=board.relays,
        inputs=board.inputs,
        pulse_base=board.pulse_base,
        pulse_unit_ms=board.pulse_unit_ms,
    )


def _open(hardware: Hardware, bus: BusConfig, boards: list[ModbusBoardConfig]) -> None:
    """pymodbus owns the port, so a simulated bus is always a pty, even for inline tests."""
    from drivers.modbus.board import ModbusRelayBoard, open_client  # pymodbus: only when used
    from drivers.modbus.sim import ModbusSimulator

    config = hardware.config
    url = bus.port
    if bus.simulator:
        sim = ModbusSimulator([_twin(b, door_wiring(config, b.name)) for b in boards])
        hardware.serial_sims[bus.name] = sim
        url = sim.start().port
    client = open_client(url, bus.baud, bus.timeout_ms / 1000)
    hardware.links[bus.name] = client
    hardware.backend[bus.name] = f"modbus-rtu on {client.comm_params.host}"
    for board in boards:
        hardware.drivers[board.name] = ModbusRelayBoard(
            client,
            board.address,
            board.relays,
            pulse_base=board.pulse_base,
            pulse_unit_ms=board.pulse_unit_ms,
            inputs=board.inputs,
            inputs_base=board.inputs_base,
            status_retries=bus.retries,
            max_pulse_ms=config.safety.max_pulse_ms,
        )


MODBUS_RTU = Family(
    protocol="modbus-rtu",
    board=ModbusBoardConfig,
    about="A Modbus RTU relay board (Waveshare and clones), pulsed by the board itself; a pulse"
    " whose FC05 echo names another coil or value is a board error.",
    wire="serial",
    check=_check,
    describe=_describe,
    open=_open,
    channel_keys=("relays", "inputs"),
    attach_item=attach_serial_item,
)
