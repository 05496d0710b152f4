"""Opening the boards of one serial bus (a port, or a twin connected as the caller says)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from drivers.base import LockBoard
from drivers.link import Link, SerialLink
from lockerd.families.base import door_wiring

if TYPE_CHECKING:
    from drivers.simserial import SerialSimulator, SimBoard
    from lockerd.config.schema import BusConfig
    from lockerd.hardware import Hardware

#: Makes the twin of a board: ``(board config, door wiring: input -> lock)``.
TwinOf = Callable[[Any, dict[int, int]], "SimBoard"]
#: Opens a board: ``(link, board config, bus config, max_pulse_ms)``.
BoardOf = Callable[[Link, Any, "BusConfig", int], LockBoard]


def open_serial(
    hardware: Hardware,
    bus: BusConfig,
    boards: list[Any],
    simulator: Callable[[list[Any]], SerialSimulator[Any, Any]],
    twin: TwinOf,
    board: BoardOf,
) -> None:
    """Open ``boards`` on ``bus``: over its port, or over the twin ``hardware.connect`` links."""
    config = hardware.config
    link: Link
    if bus.simulator:
        sim = simulator([twin(b, door_wiring(config, b.name)) for b in boards])
        hardware.serial_sims[bus.name] = sim
        link = hardware.connect(sim, bus)
    else:
        link = SerialLink(bus.port, bus.baud, gap=bus.gap_s)
    hardware.links[bus.name] = link
    hardware.backend[bus.name] = f"{bus.protocol} on {link.url}"
    for spec in boards:
        hardware.drivers[spec.name] = board(link, spec, bus, config.safety.max_pulse_ms)
