"""Build every board driver the config names, with its simulator twin where asked.

This is the only place that chooses between real and simulated hardware, and
it does so from the config alone: ``simulator = true`` on a serial bus runs
the twin on a pty, ``pin_factory = "mock"`` on a GPIO bus wires the twin to
gpiozero's MockFactory. There is no fallback: a port or pin factory that
cannot be opened stops the start with its reason.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from smbus2 import SMBus

from drivers.base import LockBoard
from drivers.directlink import DirectLink
from drivers.errors import LinkError
from drivers.gpio.board import GpioBoard, make_factory
from drivers.gpio.sim import GpioSimulator
from drivers.i2c.board import Mcp23017Inputs, Pcf8574Inputs
from drivers.i2c.sim import SimExpander, SimI2cBus, SimMcp23017, SimPcf8574
from drivers.kerong.board import Cu16Board, Cu48Board
from drivers.kerong.sim import Cu16Simulator, Cu48Simulator, SimCu16, SimCu48
from drivers.link import Link, SerialLink
from drivers.modbus.board import ModbusRelayBoard, open_client
from drivers.modbus.sim import ModbusSimulator, SimRelayBoard
from drivers.simserial import SerialSimulator, SimBoard
from drivers.simworld import SimDoor
from drivers.xorboard.board import XorBoard
from drivers.xorboard.sim import SimXorBoard, XorSimulator
from lockerd.config import Config
from lockerd.config.schema import (
    BusConfig,
    CompartmentConfig,
    GpioBoardConfig,
    I2cBoardConfig,
    KerongBoardConfig,
    ModbusBoardConfig,
)
from lockerd.worker import Worker

log = logging.getLogger(__name__)


@dataclass
class Hardware:
    """The opened boards, a worker per bus, and the simulators behind simulated buses."""

    config: Config
    drivers: dict[str, LockBoard] = field(default_factory=dict)
    workers: dict[str, Worker] = field(default_factory=dict)
    serial_sims: dict[str, SerialSimulator[Any, Any]] = field(default_factory=dict)
    gpio_sims: dict[str, GpioSimulator] = field(default_factory=dict)
    i2c_sims: dict[str, SimI2cBus] = field(default_factory=dict)
    links: dict[str, Any] = field(default_factory=dict)

    def sim_door(self, comp: CompartmentConfig) -> SimDoor | None:
        """The simulated door of ``comp``, or None when its board is real."""
        board = self.config.board_named(comp.board)
        if isinstance(board, GpioBoardConfig):
            sim = self.gpio_sims.get(board.name)
            return None if sim is None else sim.door(comp.lock)
        serial = self.serial_sims.get(board.bus)
        return None if serial is None else serial.board(board.address).door(comp.lock)

    def backends(self) -> dict[str, str]:
        """Bus name -> what drives it, for the start-up log and health output."""
        out = {}
        for bus in self.config.bus:
            if bus.protocol == "gpio":
                out[bus.name] = f"gpio/{bus.pin_factory}"
            elif bus.protocol == "i2c":
                out[bus.name] = f"i2c on {bus.port or 'simulator'}"
            elif bus.protocol == "modbus-rtu":
                out[bus.name] = f"modbus-rtu on {self.links[bus.name].comm_params.host}"
            else:
                out[bus.name] = f"{bus.protocol} on {self.links[bus.name].url}"
        return out

    def close(self) -> None:
        for worker in self.workers.values():
            worker.shutdown()
        for link in self.links.values():
            link.close()
        for sim in self.serial_sims.values():
            sim.close()


def build(
    config: Config,
    *,
    threaded: bool = True,
    now: Callable[[], float] = time.monotonic,
    spend: Callable[[float], None] | None = None,
) -> Hardware:
    """Open every bus and board.

    Args:
        threaded: give each bus its own thread (the daemon). False runs board
            calls inline and connects simulated serial buses in-process, for
            the fake-clock flow tests.
        now: the clock simulated locks time their energize time on (a test's fake clock).
        spend: with ``threaded=False``, called with the time each in-process bus
            exchange would take on the line (a fake clock's ``spend``).
    """
    hardware = Hardware(config)
    try:
        # Expanders last: their twins are wired to the doors the lock boards' twins made.
        for bus in sorted(config.bus, key=lambda b: b.protocol == "i2c"):
            hardware.workers[bus.name] = Worker(f"bus-{bus.name}" if threaded else None)
            if bus.protocol == "gpio":
                _build_gpio(hardware, bus)
            elif bus.protocol == "i2c":
                _build_i2c(hardware, bus)
            elif bus.protocol == "modbus-rtu":
                _build_modbus(hardware, bus)
            else:
                _build_serial(hardware, bus, threaded, spend)
        _wire_simulated_world(hardware, now)
    except BaseException:
        hardware.close()
        raise
    return hardware


def _wire_simulated_world(hardware: Hardware, now: Callable[[], float]) -> None:
    """Give every simulated door the clock, and wire item sensors to the compartments they watch."""
    config = hardware.config
    for sim in hardware.serial_sims.values():
        sim.now = now
        for board in sim.boards.values():
            for door in board.doors:
                door.clock = now
    for gpio in hardware.gpio_sims.values():
        for door in gpio.doors:
            door.clock = now
    for comp in config.compartment:
        door = hardware.sim_door(comp)
        if door is not None:
            door.spring = config.demo.door_springs
    for comp in config.compartment:
        door = hardware.sim_door(comp)
        if not comp.item_sensor or door is None:
            continue
        owner = config.board_named(comp.items_board)
        if isinstance(owner, I2cBoardConfig):
            expander = hardware.i2c_sims.get(owner.bus)
            if expander is not None:
                chip = expander.devices[owner.address]
                chip.item_level = owner.item_bit
                chip.attach_item(comp.item_sensor, door)
            continue
        serial = hardware.serial_sims.get(owner.bus)
        if serial is not None and isinstance(owner, KerongBoardConfig | ModbusBoardConfig):
            sim_board = serial.board(owner.address)
            sim_board.item_bit = owner.item_bit
            sim_board.items[comp.item_sensor] = door


def _boards_on(config: Config, bus: BusConfig) -> list[Any]:
    return [b for b in config.boards if b.bus == bus.name]


def _wiring(config: Config, board: str) -> dict[int, int]:
    """Input -> lock channel, for the door switches wired to ``board``'s own inputs."""
    if config.board_named(board).door_from_hook:
        return {}  # the doors are read from the locks' switches; the inputs carry no door
    return {
        c.sensor_channel: c.lock
        for c in config.compartment
        if c.board == board and c.door_board == board
    }


@dataclass(frozen=True)
class _SerialFamily:
    """How to simulate and how to open the boards of one serial protocol."""

    simulator: Callable[[list[Any]], SerialSimulator[Any, Any]]
    sim_board: Callable[[Any, dict[int, int]], SimBoard]
    #: Opens a board: ``(link, board config, bus config, max_pulse_ms=...)``.
    board: Callable[..., LockBoard]


def _timing(bus: BusConfig) -> dict[str, Any]:
    return {"timeout": bus.timeout_ms / 1000, "status_retries": bus.retries}


SERIAL_FAMILIES: dict[str, _SerialFamily] = {
    "kerong-cu16": _SerialFamily(
        Cu16Simulator,
        lambda b, wiring: SimCu16(
            b.address, b.locked_bit, b.closed_bit, wiring=wiring, energize_ms=b.energize_ms
        ),
        lambda link, b, bus, **limits: Cu16Board(
            link,
            b.address,
            energize_ms=b.energize_ms if b.set_energize_time else None,
            **_timing(bus),
            **limits,
        ),
    ),
    "kerong-cu48": _SerialFamily(
        Cu48Simulator,
        lambda b, wiring: SimCu48(
            b.address, b.locked_bit, b.closed_bit, wiring=wiring, energize_ms=b.energize_ms
        ),
        lambda link, b, bus, **limits: Cu48Board(link, b.address, **_timing(bus), **limits),
    ),
    "generic-8a": _SerialFamily(
        XorSimulator,
        lambda b, wiring: SimXorBoard(
            b.address, b.locked_bit, channels=b.locks, energize_ms=b.energize_ms
        ),
        lambda link, b, bus, **limits: XorBoard(link, b.address, b.locks, **_timing(bus), **limits),
    ),
}


def _build_serial(
    hardware: Hardware,
    bus: BusConfig,
    threaded: bool,
    spend: Callable[[float], None] | None = None,
) -> None:
    config = hardware.config
    family = SERIAL_FAMILIES[bus.protocol]
    boards = _boards_on(config, bus)
    link: Link
    if bus.simulator:
        sim = family.simulator([family.sim_board(b, _wiring(config, b.name)) for b in boards])
        hardware.serial_sims[bus.name] = sim
        if threaded:
            link = SerialLink(sim.start().port, bus.baud, gap=bus.gap_ms / 1000)
        else:
            link = DirectLink(sim.exchange, url=f"sim://{bus.name}", spend=spend, baud=bus.baud)
    else:
        link = SerialLink(bus.port, bus.baud, gap=bus.gap_ms / 1000)
    hardware.links[bus.name] = link
    for board in boards:
        hardware.drivers[board.name] = family.board(
            link, board, bus, max_pulse_ms=config.safety.max_pulse_ms
        )


def _build_modbus(hardware: Hardware, bus: BusConfig) -> None:
    """pymodbus owns the port, so a simulated bus is always a pty, even for inline tests."""
    config = hardware.config
    boards: list[ModbusBoardConfig] = _boards_on(config, bus)
    url = bus.port
    if bus.simulator:
        sim = ModbusSimulator(
            [
                SimRelayBoard(
                    b.address,
                    closed_bit=b.closed_bit,
                    wiring=_wiring(config, b.name),
                    channels=b.relays,
                    inputs=b.inputs,
                    pulse_base=b.pulse_base,
                    pulse_unit_ms=b.pulse_unit_ms,
                )
                for b in boards
            ]
        )
        hardware.serial_sims[bus.name] = sim
        url = sim.start().port
    client = open_client(url, bus.baud, bus.timeout_ms / 1000)
    hardware.links[bus.name] = client
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


def _build_i2c(hardware: Hardware, bus: BusConfig) -> None:
    config = hardware.config
    boards: list[I2cBoardConfig] = _boards_on(config, bus)
    smbus: Any
    if bus.simulator:
        chips: dict[str, SimExpander] = {
            b.name: (SimMcp23017 if b.chip == "mcp23017" else SimPcf8574)(b.address) for b in boards
        }
        for comp in config.compartment:
            door = hardware.sim_door(comp)
            if comp.door_board in chips and door is not None:
                chips[comp.door_board].attach(comp.sensor_channel, door)
        smbus = hardware.i2c_sims[bus.name] = SimI2cBus(list(chips.values()))
    else:
        try:
            smbus = SMBus(bus.port)
        except OSError as exc:
            raise LinkError(f"cannot open I2C bus {bus.port}: {exc.strerror or exc}") from exc
    hardware.links[bus.name] = smbus
    for board in boards:
        hardware.drivers[board.name] = (
            Mcp23017Inputs(smbus, board.address, pull_up=board.pull_up)
            if board.chip == "mcp23017"
            else Pcf8574Inputs(smbus, board.address)
        )


def _build_gpio(hardware: Hardware, bus: BusConfig) -> None:
    factory = make_factory(bus.pin_factory, bus.chip_label or None)
    for board in _boards_on(hardware.config, bus):
        sim = None
        if bus.pin_factory == "mock":
            sim = GpioSimulator(
                factory,
                board.lock_pins,
                board.door_pins,
                feedback_pins=board.feedback_pins,
                active_high=board.active_high,
                closed_level=board.closed_bit,
                locked_level=board.locked_bit,
            )
            hardware.gpio_sims[board.name] = sim
        hardware.drivers[board.name] = GpioBoard(
            factory,
            board.lock_pins,
            door_pins=board.door_pins,
            feedback_pins=board.feedback_pins,
            active_high=board.active_high,
            pull_up=board.pull_up,
            bounce_ms=board.bounce_ms or None,
            max_pulse_ms=hardware.config.safety.max_pulse_ms,
        )
        if sim is not None:
            sim.settle()
