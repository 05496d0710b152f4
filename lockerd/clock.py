"""Injectable time: the system clock for the daemon, a fake clock for tests.

Every timer in the daemon (door-open timeouts, left-open alarms, pulse pacing,
expiry sweeps, throttling) goes through a :class:`Clock`, so flows can be
tested by advancing a :class:`FakeClock` instead of sleeping.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable
from typing import Any, Protocol


class Timer(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    """Wall time for records, monotonic time for intervals, and timers."""

    def time(self) -> float:
        """Seconds since the epoch (wall clock), for timestamps and deadlines."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back, for intervals."""

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> Timer:
        """Run ``callback(*args)`` on the event loop after ``delay`` seconds."""

    async def sleep(self, delay: float) -> None:
        """Suspend the calling task for ``delay`` seconds."""


class SystemClock:
    """The real clock; timers run on the running asyncio loop."""

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> Timer:
        return asyncio.get_running_loop().call_later(max(0.0, delay), callback, *args)

    async def sleep(self, delay: float) -> None:
        await asyncio.sleep(max(0.0, delay))


class _FakeTimer:
    __slots__ = ("args", "callback", "cancelled", "due")

    def __init__(self, due: float, callback: Callable[..., Any], args: tuple[Any, ...]):
        self.due = due
        self.callback = callback
        self.args = args
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeClock:
    """A clock that moves only when a test calls :meth:`advance`.

    Timers and sleeps fire in due order; after each one the loop is given
    enough turns for the tasks it woke to run until they wait again. Work
    that must finish between ticks has to run on the loop (an inline store
    and in-process boards), which is how the flow tests are built.
    """

    #: Loop turns given to woken tasks after each timer; a chain of awaits
    #: longer than this would be cut short, deterministically, not by chance.
    DRAIN_TURNS = 200

    def __init__(self, start: float = 1_800_000_000.0):
        self._wall0 = start
        self._now = 0.0
        self._heap: list[tuple[float, int, _FakeTimer]] = []
        self._order = itertools.count()

    def time(self) -> float:
        return self._wall0 + self._now

    def monotonic(self) -> float:
        return self._now

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> Timer:
        timer = _FakeTimer(self._now + max(0.0, delay), callback, args)
        heapq.heappush(self._heap, (timer.due, next(self._order), timer))
        return timer

    async def sleep(self, delay: float) -> None:
        future = asyncio.get_running_loop().create_future()

        def wake() -> None:
            if not future.done():
                future.set_result(None)

        timer = self.call_later(delay, wake)
        try:
            await future
        finally:
            timer.cancel()

    def spend(self, seconds: float) -> None:
        """Time passes inside a blocking call (a bus exchange run inline, as the flow
        tests run them): timers that fall due meanwhile fire at the next advance."""
        self._now += seconds

    def step_wall(self, seconds: float) -> None:
        """The wall clock alone is set ``seconds`` ahead (or back, if negative), as NTP
        or an operator does; monotonic time and timers do not move."""
        self._wall0 += seconds

    async def advance(self, seconds: float = 0.0) -> None:
        """Move time forward by ``seconds``, firing every timer that falls due."""
        target = self._now + seconds
        await self.drain()
        while self._heap and self._heap[0][0] <= target:
            due, _, timer = heapq.heappop(self._heap)
            if timer.cancelled:
                continue
            self._now = max(self._now, due)
            timer.callback(*timer.args)
            await self.drain()
        self._now = max(self._now, target)  # never back: a bus call may have spent past it
        await self.drain()

    async def drain(self) -> None:
        """Give the loop turns until woken tasks all wait again (or DRAIN_TURNS pass)."""
        loop = asyncio.get_running_loop()
        for _ in range(self.DRAIN_TURNS):
            await asyncio.sleep(0)
            # CPython's loop keeps its runnable callbacks in ``_ready``; when
            # only this task was runnable, everything else is waiting. Other
            # loops lack it and get the full number of turns.
            if not getattr(loop, "_ready", True):
                return
