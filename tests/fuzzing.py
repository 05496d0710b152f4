"""What the fuzz suite (tests/test_fuzz_*.py) shares: how many cases, how they run, store dumps.

Each surface has one property, run twice: a few examples in the default
suite and enough in the ``slow`` group that the whole suite tries at least
:data:`SLOW_TOTAL` cases. Runs are reproducible (``derandomize``, no example
database), so CI finds what a laptop finds. Every slow run prints its count.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, Generic, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings

T = TypeVar("T")

#: Cases the slow group tries, over every surface together (issue 10).
SLOW_TOTAL = 100_000

Dump = dict[str, list[tuple[Any, ...]]]
#: Cases tried so far in this pytest process, over every surface.
TOTAL = 0
#: Cases tried so far in this pytest process, by surface (summed over pytest-xdist
#: workers by tests/conftest.py, which prints them at the end of the run).
BY_SURFACE: dict[str, int] = {}


def groups(default: int, slow: int) -> Any:
    """``@groups(10, 20_000)``: parametrize a fuzz test over its two runs, the slow one marked."""
    return pytest.mark.parametrize(
        "examples", [default, pytest.param(slow, marks=pytest.mark.slow, id="slow")], ids=str
    )


def run(surface: str, examples: int, prop: Callable[..., None], **strategies: Any) -> int:
    """Try ``prop`` on ``examples`` generated cases; print and return how many ran."""
    count = 0

    def counted(**kwargs: Any) -> None:
        nonlocal count
        count += 1
        prop(**kwargs)

    test = settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )(given(**strategies)(counted))
    started = time.monotonic()
    test()
    global TOTAL
    TOTAL += count
    BY_SURFACE[surface] = BY_SURFACE.get(surface, 0) + count
    seconds = time.monotonic() - started
    print(f"\nfuzz {surface}: {count} cases in {seconds:.1f} s ({TOTAL} in this run so far)")
    # Hypothesis stops early only when the strategies have no more distinct cases.
    assert count >= min(examples, 10), f"{surface}: only {count} cases ran"
    return count


class Loop:
    """An event loop of the test's own, for properties (synchronous) that drive async code."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()

    def __call__(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    def close(self) -> None:
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()


@contextmanager
def own_loop() -> Iterator[Loop]:
    loop = Loop()
    try:
        yield loop
    finally:
        loop.close()


class Renewed(Generic[T]):
    """A locker made afresh every ``every`` cases, so that its store (dumped twice a case)
    stays small and a long run does not slow down as the journal grows."""

    def __init__(self, make: Callable[[int], T], close: Callable[[T], None], every: int = 250):
        self._make, self._close, self.every = make, close, every
        self.cases = 0
        self.current = make(0)
        self._spoilt = False

    def __call__(self) -> T:
        """The locker for the next case."""
        self.cases += 1
        if self.cases % self.every == 0 or self._spoilt:
            self._close(self.current)
            self.current = self._make(self.cases)
            self._spoilt = False
        return self.current

    def spoil(self, changed: dict[str, Any]) -> None:
        """After an accepted request: a door it began to open keeps its flow going as time
        passes (a door-open timeout, a jam), which would show in the next case's dump as if
        that case had changed it. The next case gets a fresh locker then."""
        if "unlock_intents" in changed:
            self._spoilt = True

    def close(self) -> None:
        self._close(self.current)


def dump(conn: sqlite3.Connection) -> Dump:
    """Every row of every table, in storage order: compare two to see what a request changed."""
    tables = [
        row[0]
        for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            " ORDER BY name"
        )
    ]
    return {t: [tuple(r) for r in conn.execute(f'SELECT * FROM "{t}"')] for t in tables}


def changes(before: Dump, after: Dump) -> dict[str, tuple[list[Any], list[Any]]]:
    """Per changed table: (rows gone, rows new)."""
    out = {}
    for table in sorted(set(before) | set(after)):
        old, new = before.get(table, []), after.get(table, [])
        if old != new:
            out[table] = ([r for r in old if r not in new], [r for r in new if r not in old])
    return out


def journal_types(rows: list[tuple[Any, ...]]) -> list[str]:
    """The event types of new ``journal`` rows (seq, at, type, data)."""
    return [row[2] for row in rows]
