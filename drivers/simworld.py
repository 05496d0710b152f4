"""Physics shared by every simulator twin: a latch, a door, and a person.

A pulse releases the latch (unless the lock is stuck); the door opens only
when a simulated person opens it, and only while the latch is released
(unless it is jammed); closing the door re-latches it. This models the hook
locks parcel lockers use, which stay released after a pulse until the door
has been opened and shut again.

Not modelled: coil current and heating, the spring that pushes a door ajar,
a person holding a door shut during the pulse, or an item-presence sensor
seeing the parcel (the IR bit mirrors the door).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class SimDoor:
    """One compartment's latch and door, with fault switches and a pulse history."""

    #: The lock ignores pulses (a burnt coil, a broken linkage).
    stuck: bool = False
    #: The door will not open even when the latch is released.
    jammed: bool = False
    latched: bool = True
    is_open: bool = False
    #: ``time.monotonic()`` of every pulse the lock received, for tests.
    pulses: list[float] = field(default_factory=list)
    #: Called with the door after every change (a simulator mirrors it on its pins).
    listeners: list[Callable[[SimDoor], None]] = field(default_factory=list, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def pulse(self) -> None:
        with self._lock:
            self.pulses.append(time.monotonic())
            if not self.stuck:
                self.latched = False
        self._changed()

    def open(self) -> bool:
        """A person pulls the door; True if it opened."""
        with self._lock:
            if self.latched or self.jammed:
                return False
            self.is_open = True
        self._changed()
        return True

    def close(self) -> None:
        """A person pushes the door shut; the latch catches it."""
        with self._lock:
            self.is_open = False
            self.latched = True
        self._changed()

    def force(self) -> None:
        """The door is forced open without a pulse (a pry bar, a broken latch)."""
        with self._lock:
            self.is_open = True
            self.latched = False
        self._changed()

    def _changed(self) -> None:
        for listener in self.listeners:
            listener(self)
