"""Blocking work off the event loop: one dedicated thread per resource."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import ParamSpec, Protocol, TypeVar

T = TypeVar("T")
P = ParamSpec("P")


class Runner(Protocol):
    """Runs blocking calls for the loop, one at a time, in submission order.

    The daemon's is a :class:`Worker` (a thread of its own); the fake-clock
    tests pass one that calls inline, so time moves only when the test says.
    """

    async def __call__(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(*args, **kwargs)``; its result."""
        ...

    def shutdown(self) -> None:
        """Finish what was submitted and stop taking calls."""


class Worker:
    """Runs blocking calls one at a time in its own thread, in submission order."""

    def __init__(self, thread_name: str):
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=thread_name)

    async def __call__(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(*args, **kwargs)`` in the worker's thread; its result."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, partial(fn, *args, **kwargs))

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True)
