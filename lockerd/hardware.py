"""Build every board driver the config names, with its simulator twin where asked.

This is the only place that chooses between real and simulated hardware, and
it does so from the config alone: ``simulator = true`` on a serial bus runs
the twin (on a pty, unless the caller connects it otherwise), ``pin_factory =
"mock"`` on a GPIO bus wires the twin to gpiozero's MockFactory. There is no
fallback: a port or pin factory that cannot be opened stops the start with its
reason. Each bus is opened by its family (``lockerd.families``); how a twin is
connected and how a bus's calls are run are the caller's (the daemon's
defaults: a pty, a thread per bus).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from drivers.base import LockBoard
from drivers.link import Link, SerialLink
from lockerd.config import Config
from lockerd.config.schema import BusConfig, CompartmentConfig
from lockerd.families import FAMILIES
from lockerd.worker import Runner, Worker

if TYPE_CHECKING:  # gpiozero and the twins' modules: imported by a family when a bus needs them
    from drivers.gpio.sim import GpioSimulator
    from drivers.i2c.sim import SimI2cBus
    from drivers.simserial import SerialSimulator
    from drivers.simworld import SimDoor

log = logging.getLogger(__name__)

#: Links a simulated serial bus's twin to its boards: ``(twin, bus) -> link``.
Connect = Callable[["SerialSimulator[Any, Any]", BusConfig], Link]


def over_pty(sim: SerialSimulator[Any, Any], bus: BusConfig) -> Link:
    """The twin on a pty, read through a real :class:`SerialLink` (the daemon's way)."""
    return SerialLink(sim.start().port, bus.baud, gap=bus.gap_s)


@dataclass
class Hardware:
    """The opened boards, a worker per bus, and the simulators behind simulated buses."""

    config: Config
    #: How a simulated serial bus's twin is linked to its boards.
    connect: Connect = over_pty
    drivers: dict[str, LockBoard] = field(default_factory=dict)
    #: Each bus's runner: board calls go through it.
    workers: dict[str, Runner] = field(default_factory=dict)
    serial_sims: dict[str, SerialSimulator[Any, Any]] = field(default_factory=dict)
    gpio_sims: dict[str, GpioSimulator] = field(default_factory=dict)
    i2c_sims: dict[str, SimI2cBus] = field(default_factory=dict)
    links: dict[str, Any] = field(default_factory=dict)
    #: Bus name -> what drives it, for the start-up log and health output.
    backend: dict[str, str] = field(default_factory=dict)

    def sim_door(self, comp: CompartmentConfig) -> SimDoor | None:
        """The simulated door of ``comp``, or None when its board is real."""
        board = self.config.board_named(comp.board)
        gpio = self.gpio_sims.get(board.name)
        if gpio is not None:
            return gpio.door(comp.lock)
        serial = self.serial_sims.get(board.bus)
        # A board on a serial twin has an address (every serial family's section has one).
        return None if serial is None else serial.board(cast(Any, board).address).door(comp.lock)

    def backends(self) -> dict[str, str]:
        """Bus name -> what drives it, for the start-up log and health output."""
        return {bus.name: self.backend[bus.name] for bus in self.config.bus}

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
    connect: Connect = over_pty,
    runner: Callable[[str], Runner] = Worker,
    now: Callable[[], float] = time.monotonic,
) -> Hardware:
    """Open every bus and board.

    Args:
        connect: how a simulated serial bus's twin is linked to its boards (the
            daemon: a pty and a :class:`SerialLink`; a fake-clock test: in-process).
        runner: makes the runner of the bus named by its argument's thread name
            (the daemon: a :class:`Worker`, a thread per bus).
        now: the clock simulated locks time their energize time on (a test's fake clock).
    """
    hardware = Hardware(config, connect=connect)
    try:
        # Expanders last: their twins are wired to the doors the lock boards' twins made.
        for bus in sorted(config.bus, key=lambda b: FAMILIES[b.protocol].senses_only):
            hardware.workers[bus.name] = runner(f"bus-{bus.name}")
            boards = [b for b in config.boards if b.bus == bus.name]
            FAMILIES[bus.protocol].open(hardware, bus, boards)
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
        attach = FAMILIES[config.bus_named(owner.bus).protocol].attach_item
        if attach is not None:
            attach(hardware, owner, comp.item_sensor, door)
