"""Physics shared by every simulator twin: a latch, a door, what is inside, and a person.

As hardware.md (1.6, 7) states it for the fail-secure hook locks parcel
lockers use: the latch is released only while the coil is energized. If
the door is pulled open during that time (by a person, or by a push-out
spring), the latch stays out until the door is shut again; if the door
does not move, the latch catches again the moment the pulse ends. So a
lock switch read as the door shows a release for about the energize time
when nobody opens, and for the whole door cycle when somebody does.

A board-timed pulse (Kerong, 0x8A, Modbus "flash") energizes the coil for
the board's own energize time, measured on the door's ``clock``; a coil
this process switches (GPIO) is energized from :meth:`SimDoor.coil` on to
off. The item sensor reports what is inside, never the door: a person puts
a parcel in or takes it out only while the door is open.

Not modelled: coil current and heating, a person holding a door shut
during the pulse, and a door shut again within the pulse (it reads the
same as a door that never moved, which is the point of the evidence rules).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class SimDoor:
    """One compartment's latch, door and contents, with fault switches and a pulse history."""

    #: The lock ignores pulses (a burnt coil, a broken linkage).
    stuck: bool = False
    #: The door will not open even when the latch is released.
    jammed: bool = False
    #: The latch never catches (a broken return spring, a latch stuck retracted):
    #: the lock reads released with the door shut, and anyone can pull the door.
    latch_broken: bool = False
    #: A push-out spring: the door springs ajar by itself when the latch releases.
    spring: bool = False
    #: A person has a hand on the handle and pulls: the door opens the moment
    #: the latch releases (now, or at the next pulse). Cleared when the door opens.
    hand: bool = False
    is_open: bool = False
    #: Something is inside (what an item sensor sees).
    item: bool = False
    #: How long a board-timed pulse energizes the coil, in seconds.
    energize_s: float = 0.5
    #: The clock the energize time runs on (a test gives its fake clock).
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    #: ``clock()`` of every pulse the lock received, for tests.
    pulses: list[float] = field(default_factory=list)
    #: Called with the door after every change (a simulator mirrors it on its pins).
    listeners: list[Callable[[SimDoor], None]] = field(default_factory=list, repr=False)
    _energized_until: float = field(default=-math.inf, repr=False)
    _coil_on: bool = field(default=False, repr=False)
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    @property
    def energized(self) -> bool:
        """The coil has current now (and the lock is not stuck, so the latch is pulled in)."""
        return not self.stuck and (self._coil_on or self.clock() < self._energized_until)

    @property
    def latched(self) -> bool:
        """The latch holds the door: it is out while the door is open or the coil is energized
        (or always, where it is broken)."""
        return not self.latch_broken and not self.is_open and not self.energized

    def pulse(self, seconds: float | None = None) -> None:
        """A board-timed pulse: the coil is energized for ``seconds`` (the energize time)."""
        with self._lock:
            now = self.clock()
            self.pulses.append(now)
            self._energized_until = now + (self.energize_s if seconds is None else seconds)
            self._released()
        self._changed()

    def coil(self, on: bool) -> None:
        """A coil this process switches (a GPIO lock driver): on releases, off lets it catch."""
        with self._lock:
            if on and not self._coil_on:
                self.pulses.append(self.clock())
            self._coil_on = on
            if on:
                self._released()
        self._changed()

    def _released(self) -> None:
        if self.energized and not self.jammed and (self.spring or self.hand):
            self.is_open = True
            self.hand = False

    def open(self) -> bool:
        """A person pulls the door now; True if it opened (only while the latch is out)."""
        with self._lock:
            if self.is_open:
                return True
            if self.latched or self.jammed:
                return False
            self.is_open = True
        self._changed()
        return True

    def pull(self) -> bool:
        """A person takes the handle and keeps pulling: opens now if it can, else at the
        next release. True if it opened now."""
        with self._lock:
            if self.open():
                return True
            self.hand = True
            return False

    def close(self) -> None:
        """A person pushes the door shut; the latch catches it unless the coil is energized."""
        with self._lock:
            self.is_open = False
            self.hand = False
        self._changed()

    def force(self) -> None:
        """The door is forced open without a pulse (a pry bar, a broken latch)."""
        with self._lock:
            self.is_open = True
        self._changed()

    def put_in(self) -> None:
        """A person puts a parcel in (the door must be open)."""
        self._contents(True)

    def take_out(self) -> None:
        """A person takes the parcel out (the door must be open)."""
        self._contents(False)

    def _contents(self, item: bool) -> None:
        with self._lock:
            if not self.is_open:
                raise RuntimeError("nobody can reach inside a shut compartment")
            self.item = item
        self._changed()

    def _changed(self) -> None:
        for listener in self.listeners:
            listener(self)
