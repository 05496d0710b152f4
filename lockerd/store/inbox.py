"""The command inbox: each back-office command applies once.

Every command is recorded in the inbox in the same transaction as its effect
and its ``command.applied`` or ``command.rejected`` event, so a command
delivered twice is applied once. What a command does is the caller's effect
(lockerd/sync/apply.py); a :class:`~lockerd.errors.FlowError` from it rolls
the effect back and rejects the command with its message.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import TypeVar

from lockerd.domain import Event
from lockerd.errors import FlowError
from lockerd.store._context import Context

T = TypeVar("T")


class InboxRepo:
    """The ``inbox`` rows: which commands were applied or rejected."""

    def __init__(self, context: Context):
        self._c = context

    def seen(self, command_id: str) -> bool:
        row = self._c.conn.execute("SELECT 1 FROM inbox WHERE id = ?", (command_id,)).fetchone()
        return row is not None

    def reject(self, command_id: str, kind: str, reason: str) -> bool:
        """Record a refusal (bad fields, signature, expiry); False if the id was seen before."""
        with self._c.change() as conn:
            if self.seen(command_id):
                return False
            self._close(conn, command_id, kind, "rejected", reason)
        return True

    def apply(
        self, command_id: str, kind: str, effect: Callable[[sqlite3.Connection], T]
    ) -> tuple[str, T | None]:
        """Run a command's effect once: ``applied``, ``rejected`` or ``duplicate``, and
        what the effect returned (None unless applied)."""
        with self._c.change() as conn:
            if self.seen(command_id):
                return "duplicate", None
            result, reason = self._attempt(conn, effect)
            outcome = "applied" if reason is None else "rejected"
            self._close(conn, command_id, kind, outcome, reason)
            return outcome, result

    def _attempt(
        self, conn: sqlite3.Connection, effect: Callable[[sqlite3.Connection], T]
    ) -> tuple[T | None, str | None]:
        """The effect in a savepoint: its result, or its refusal's reason with none of it kept."""
        written = len(self._c.written)
        conn.execute("SAVEPOINT command")
        try:
            result, reason = effect(conn), None
        except FlowError as exc:  # Refused, or a refusal of the operation it reuses
            conn.execute("ROLLBACK TO command")
            del self._c.written[written:]
            result, reason = None, exc.message
        conn.execute("RELEASE command")
        return result, reason

    def _close(
        self, conn: sqlite3.Connection, command_id: str, kind: str, outcome: str, reason: str | None
    ) -> None:
        conn.execute(
            "INSERT INTO inbox (id, type, outcome, reason, applied_at) VALUES (?, ?, ?, ?, ?)",
            (command_id, kind, outcome, reason, self._c.clock.time()),
        )
        data = {"id": command_id, "type": kind}
        if outcome == "applied":
            self._c.event(Event.COMMAND_APPLIED, data)
        else:
            self._c.event(Event.COMMAND_REJECTED, data | {"reason": reason})
