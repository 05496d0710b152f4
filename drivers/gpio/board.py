"""A cabinet wired to the GPIO header: lock drivers out, door switches in.

Each lock is a gpiozero ``OutputDevice`` created with ``initial_value=False``
(so opening the board never energizes a coil) and the configured active
level (most relay modules are active-low). Each door switch and optional
lock-feedback switch is a ``DigitalInputDevice``; the board reports raw
levels and the bank applies polarity. The pulse is timed in software, in
the bus thread, with the output released in a ``finally``: a crash of the
whole process mid-pulse can still leave a coil on, which is why board-timed
pulses (Kerong, Modbus) are preferred for anything bigger than a cabinet.
"""

from __future__ import annotations

import glob
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gpiozero import DigitalInputDevice, OutputDevice
from gpiozero.pins import Factory

from drivers.base import MAX_PULSE_MS, Inputs, check_pulse
from drivers.errors import LinkError

#: Pin factories by the name used in config; no fallback between them.
FACTORIES = {
    "lgpio": "gpiozero.pins.lgpio:LGPIOFactory",
    "rpigpio": "gpiozero.pins.rpigpio:RPiGPIOFactory",
    "pigpio": "gpiozero.pins.pigpio:PiGPIOFactory",
    "native": "gpiozero.pins.native:NativeFactory",
    "mock": "gpiozero.pins.mock:MockFactory",
}


def find_chip(label: str, root: str = "/sys/bus/gpio/devices") -> int:
    """Number of the gpiochip whose label is ``label`` (e.g. ``pinctrl-rp1`` on a Pi 5)."""
    for path in sorted(glob.glob(f"{root}/gpiochip*/label")):
        if Path(path).read_text().strip() == label:
            return int(Path(path).parent.name.removeprefix("gpiochip"))
    raise LinkError(f"no gpiochip labelled {label!r} under {root}")


def make_factory(name: str, chip_label: str | None = None) -> Factory:
    """Load the named gpiozero pin factory, or fail loudly (never a silent fallback)."""
    target = FACTORIES.get(name)
    if target is None:
        raise LinkError(f"unknown pin factory {name!r}; expected one of {sorted(FACTORIES)}")
    module_name, _, class_name = target.partition(":")
    kwargs: dict[str, Any] = {}
    if chip_label is not None:
        kwargs["chip"] = find_chip(chip_label)
    try:
        module = __import__(module_name, fromlist=[class_name])
        return getattr(module, class_name)(**kwargs)
    except Exception as exc:  # any import or hardware error means this factory cannot run
        raise LinkError(f"pin factory {name!r} could not be loaded: {exc}") from exc


class GpioBoard:
    """Locks on output pins, door (and optional latch feedback) switches on input pins."""

    def __init__(
        self,
        factory: Factory,
        lock_pins: Sequence[int],
        *,
        door_pins: Sequence[int] = (),
        feedback_pins: Sequence[int] = (),
        active_high: bool = True,
        pull_up: bool = True,
        bounce_ms: int | None = None,
        max_pulse_ms: int = MAX_PULSE_MS,
    ):
        self.channels = len(lock_pins)
        self.max_pulse_ms = max_pulse_ms
        self._released = threading.Event()
        bounce = bounce_ms / 1000 if bounce_ms else None
        self._locks = [
            OutputDevice(pin, active_high=active_high, initial_value=False, pin_factory=factory)
            for pin in lock_pins
        ]
        self._doors = [self._input(pin, pull_up, bounce, factory) for pin in door_pins]
        self._feedback = [self._input(pin, pull_up, bounce, factory) for pin in feedback_pins]

    @staticmethod
    def _input(pin: int, pull_up: bool, bounce: float | None, factory: Factory) -> Any:
        return DigitalInputDevice(pin, pull_up=pull_up, bounce_time=bounce, pin_factory=factory)

    def pulse(self, channel: int, milliseconds: int) -> None:
        check_pulse("GPIO", channel, self.channels, milliseconds, self.max_pulse_ms)
        lock = self._locks[channel - 1]
        try:
            lock.on()
            # On the bus thread, never the event loop; release_now() cuts it short.
            self._released.wait(milliseconds / 1000)
        finally:
            lock.off()

    def release_now(self) -> None:
        """From any thread: end a pulse under way and leave every lock off (a stopping daemon).

        A GPIO pulse is timed by this process; anything still energized when it
        stops must be released at once, not when the bus thread gets round to it.
        """
        self._released.set()
        for lock in self._locks:
            lock.off()

    def read_inputs(self, *, probe: float | None = None) -> Inputs:
        return Inputs(locks=_levels(self._feedback), sensors=_levels(self._doors))

    def close(self) -> None:
        for device in (*self._locks, *self._doors, *self._feedback):
            device.close()


def _levels(devices: Sequence[Any]) -> int:
    bits = 0
    for index, device in enumerate(devices):
        if device.pin.state:
            bits |= 1 << index
    return bits
