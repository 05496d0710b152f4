"""Locks and door switches on the header (``gpio``), through gpiozero: config and factory.

The driver is ``drivers/gpio`` (board, and the twin on gpiozero's MockFactory).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from lockerd.config._typed import opt
from lockerd.families.base import BoardChecks, Family, powered

if TYPE_CHECKING:
    from gpiozero import Factory

    from drivers.gpio.sim import GpioSimulator
    from lockerd.config.schema import BusConfig, Config
    from lockerd.hardware import Hardware

#: The highest GPIO line number of a supported board (BCM2711 on a CM4: GPIO 0..57).
GPIO_MAX = 57


@dataclass(frozen=True)
class GpioBoardConfig:
    name: str = opt(doc="board name compartments refer to")
    bus: str = opt(doc="the gpio bus")
    power_group: str = opt(doc="the power group its locks draw from")
    lock_pins: tuple[int, ...] = opt(doc="BCM pin of lock channel 1, 2, ...", min=0, max=GPIO_MAX)
    door_pins: tuple[int, ...] = opt(
        [], doc="BCM pin of door-sensor channel 1, 2, ...", min=0, max=GPIO_MAX
    )
    feedback_pins: tuple[int, ...] = opt(
        [], doc="BCM pin of lock-feedback channel 1, 2, ...", min=0, max=GPIO_MAX
    )
    active_high: bool = opt(True, doc="lock outputs are active-high (false: active-low relays)")
    pull_up: bool = opt(True, doc="inputs use the internal pull-up (switch to ground)")
    bounce_ms: int = opt(50, doc="debounce of input pins", min=0, max=1000)
    locked_bit: int = opt(0, doc="feedback level that means latched", min=0, max=1)
    closed_bit: int = opt(0, doc="door-switch level that means closed", min=0, max=1)

    door_from_hook: ClassVar[bool] = False
    items: ClassVar[bool] = False

    @property
    def channels(self) -> int:
        return len(self.lock_pins)

    @property
    def sensor_channels(self) -> int:
        return len(self.door_pins)

    @property
    def has_feedback(self) -> bool:
        return bool(self.feedback_pins)


def _check(board: GpioBoardConfig, path: str, checks: BoardChecks) -> None:
    """Its power group, and every pin claimed once on its header."""
    checks.power_group(board, path)
    problems = checks.problems
    if not board.lock_pins:
        problems.add(f"{path}.lock_pins", "a gpio board needs at least one lock pin")
    if not problems.intact(f"{path}.name"):
        return
    for key in ("lock_pins", "door_pins", "feedback_pins"):
        if problems.intact(f"{path}.{key}"):
            _claim_pins(board, path, key, checks)


def _claim_pins(board: GpioBoardConfig, path: str, key: str, checks: BoardChecks) -> None:
    pins: tuple[int, ...] = getattr(board, key)
    for index, pin in enumerate(pins):
        claimed = checks.pins.setdefault((board.bus, pin), f"{board.name}.{key}")
        if claimed != f"{board.name}.{key}" or pins.count(pin) > 1:
            checks.problems.add(f"{path}.{key}[{index}]", f"pin {pin} is used twice")


def _describe(board: GpioBoardConfig, config: Config) -> str:
    pins = f"lock pins {list(board.lock_pins)}, door pins {list(board.door_pins)}"
    return f"{pins}; closed={board.closed_bit}; {powered(board, config)}"


def _open(hardware: Hardware, bus: BusConfig, boards: list[GpioBoardConfig]) -> None:
    from drivers.gpio.board import GpioBoard, make_factory  # gpiozero: only when used

    factory = make_factory(bus.pin_factory, bus.chip_label or None)
    hardware.backend[bus.name] = f"gpio/{bus.pin_factory}"
    for board in boards:
        sim = _twin(factory, board) if bus.pin_factory == "mock" else None
        if sim is not None:
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


def _twin(factory: Factory, board: GpioBoardConfig) -> GpioSimulator:
    from drivers.gpio.sim import GpioSimulator

    return GpioSimulator(
        factory,
        board.lock_pins,
        board.door_pins,
        feedback_pins=board.feedback_pins,
        active_high=board.active_high,
        closed_level=board.closed_bit,
        locked_level=board.locked_bit,
    )


GPIO = Family(
    protocol="gpio",
    board=GpioBoardConfig,
    about="Locks and door switches wired to the header.",
    wire="gpio",
    check=_check,
    describe=_describe,
    open=_open,
    channel_keys=("lock_pins", "door_pins", "feedback_pins"),
)
