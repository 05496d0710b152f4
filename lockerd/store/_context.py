"""What every repository of the store shares: the database, the device key, the config,
the clock, and the journal events the current transaction has written.

Methods are blocking and called from the store thread only (or inline in tests).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from lockerd import codes, throttle
from lockerd.clock import Clock
from lockerd.config import Config
from lockerd.domain import Event
from lockerd.store._db import Database
from lockerd.store.records import JournalEntry

Listener = Callable[[list[JournalEntry]], None]


class Context:
    """One locker's database and what its repositories write with."""

    def __init__(self, db: Database, key: codes.DeviceKey, config: Config, clock: Clock):
        self.db = db
        self.key = key
        self.config = config
        self.clock = clock
        self.layout = {c.id: c for c in config.compartment}
        self.listeners: list[Listener] = []
        self.written: list[JournalEntry] = []
        #: Whether pickup codes wait (sealed) for someone to deliver them: the back
        #: office, or the demo's recipient messages. Without either, none is kept.
        self.keep_notices = True
        #: The throttle's time for this run: the wall clock that never jumps ahead.
        self._steady = throttle.SteadyTime()

    @property
    def conn(self) -> sqlite3.Connection:
        return self.db.conn

    def event(self, kind: Event, data: dict[str, Any]) -> int:
        """Journal an event inside the current transaction; subscribers hear of it after COMMIT."""
        at = self.clock.time()
        seq = self.db.journal(at, kind, data)
        self.written.append({"seq": seq, "type": str(kind), "at": at, "data": data})
        return seq

    def change(self) -> AbstractContextManager[sqlite3.Connection]:
        """One transaction; the journal events it wrote go to subscribers after COMMIT."""
        return _Change(self)

    def throttle_now(self) -> float:
        """The throttle's time now (:class:`lockerd.throttle.SteadyTime`)."""
        return self._steady.now(self.clock.time(), self.clock.monotonic())


class _Change(AbstractContextManager[sqlite3.Connection]):
    def __init__(self, context: Context):
        self._context = context
        self._tx = context.db.transaction()

    def __enter__(self) -> sqlite3.Connection:
        self._context.written = []
        return self._tx.__enter__()

    def __exit__(self, *exc: Any) -> None:
        written, self._context.written = self._context.written, []
        self._tx.__exit__(*exc)
        if exc[0] is None and written:
            for listener in self._context.listeners:
                listener(written)
