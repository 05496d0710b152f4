"""Blocking work off the event loop: one dedicated thread per resource."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import ParamSpec, TypeVar

T = TypeVar("T")
P = ParamSpec("P")


class Worker:
    """Runs blocking calls one at a time in its own thread, in submission order.

    ``Worker(None)`` runs calls inline on the caller instead: the fake-clock
    flow tests use it with in-process boards and the store, so every step
    happens on the loop and time moves only when the test says.
    """

    def __init__(self, thread_name: str | None):
        self._executor = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix=thread_name)
            if thread_name
            else None
        )

    async def __call__(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(*args, **kwargs)`` in the worker's thread; its result."""
        if self._executor is None:
            return fn(*args, **kwargs)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, partial(fn, *args, **kwargs))

    def shutdown(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
