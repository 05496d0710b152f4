"""Simulator twin of a GPIO cabinet on gpiozero's MockFactory.

Lock pins are mock pins that energize a :class:`~drivers.simworld.SimDoor`'s
coil while at their active level (the latch catches again when the pin
goes inactive unless the door was opened meanwhile); door-switch pins are driven by the door
(``closed_level`` when shut: 0 for a switch to ground on a pull-up input).
Latch-feedback pins, when configured, follow the latch the same way.

Not modelled: gpiozero's ``bounce_time`` (MockPin ignores it, so switch
bounce is not simulated either), pin current limits, and pins shared with
other hardware on the header.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from gpiozero.pins.mock import MockFactory, MockPin

from drivers.simworld import SimDoor


class _LockPin(MockPin):  # type: ignore[misc]  # gpiozero ships no type information
    """A mock output pin that pulses its door on a change to the active level."""

    active_level = 1
    door: SimDoor | None = None

    def _change_state(self, value: Any) -> bool:
        changed = bool(super()._change_state(value))
        if changed and self.door is not None:
            self.door.coil(bool(value) == bool(self.active_level))
        return changed


class GpioSimulator:
    """Doors wired to a MockFactory's pins, before the board opens them."""

    def __init__(
        self,
        factory: MockFactory,
        lock_pins: Sequence[int],
        door_pins: Sequence[int],
        *,
        feedback_pins: Sequence[int] = (),
        active_high: bool = True,
        closed_level: int = 0,
        locked_level: int = 0,
    ):
        self.factory = factory
        self.doors = [SimDoor() for _ in lock_pins]
        for door, pin_number in zip(self.doors, lock_pins, strict=True):
            pin = factory.pin(pin_number, pin_class=_LockPin)
            pin.active_level = 1 if active_high else 0
            pin.door = door
        self._doors_pins = [factory.pin(n) for n in door_pins]
        self._feedback_pins = [factory.pin(n) for n in feedback_pins]
        self._closed_level = closed_level
        self._locked_level = locked_level
        for index, door in enumerate(self.doors):
            door.listeners.append(functools.partial(self._mirror, index))

    def door(self, channel: int) -> SimDoor:
        return self.doors[channel - 1]

    def settle(self) -> None:
        """Drive every input pin from its door; call after the board opened its pins."""
        for index, door in enumerate(self.doors):
            self._mirror(index, door)

    def _mirror(self, index: int, door: SimDoor) -> None:
        if index < len(self._doors_pins):
            closed = not door.is_open
            _drive(
                self._doors_pins[index], self._closed_level if closed else 1 - self._closed_level
            )
        if index < len(self._feedback_pins):
            level = self._locked_level if door.latched else 1 - self._locked_level
            _drive(self._feedback_pins[index], level)


def _drive(pin: MockPin, level: int) -> None:
    if pin.function != "input":
        return  # the board has not opened this pin yet; settle() drives it later
    if level:
        pin.drive_high()
    else:
        pin.drive_low()
