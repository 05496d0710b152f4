"""Couriers and wrong-code throttling, persisted so a restart forgets nothing."""

from __future__ import annotations

import math
import sqlite3
from dataclasses import dataclass

from lockerd import throttle
from lockerd.config.schema import ThrottleSection
from lockerd.domain import Event
from lockerd.errors import FlowError
from lockerd.store._context import Context


@dataclass(frozen=True)
class Courier:
    id: str
    name: str
    can_deliver: bool
    can_collect: bool
    #: Whose parcels the courier carries ('' for none): they see and collect only those.
    carrier: str = ""

    @property
    def rights(self) -> list[str]:
        return [r for r, ok in (("deliver", self.can_deliver), ("collect", self.can_collect)) if ok]


def load_throttle(conn: sqlite3.Connection, scope: str) -> throttle.ThrottleState:
    row = conn.execute(
        "SELECT failures, blocked_until, locked_out, budget_full_at FROM throttle WHERE scope = ?",
        (scope,),
    ).fetchone()
    if row is None:
        return throttle.ThrottleState()
    return throttle.ThrottleState(row[0], row[1], bool(row[2]), row[3])


def save_throttle(conn: sqlite3.Connection, scope: str, state: throttle.ThrottleState) -> None:
    conn.execute(
        "INSERT INTO throttle (scope, failures, blocked_until, locked_out, budget_full_at)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT(scope) DO UPDATE SET failures = excluded.failures,"
        " blocked_until = excluded.blocked_until, locked_out = excluded.locked_out,"
        " budget_full_at = excluded.budget_full_at",
        (scope, state.failures, state.blocked_until, int(state.locked_out), state.budget_full_at),
    )


def blocked_error(
    state: throttle.ThrottleState, now: float, what: str, wall: float
) -> FlowError | None:
    """The refusal while a back-off or lock-out is running (the attempt is not even
    checked), or None. ``now`` is the throttle's time, ``wall`` the clock's, for
    ``retry_at``."""
    wait = throttle.blocked_for(state, now)
    if not wait:
        return None
    if state.locked_out:
        return locked_out_error(state, now, what, wall)
    return FlowError(
        "too_fast",
        f"wait {_seconds(wait)} before the next {what}",
        retry_after=math.ceil(wait),
        retry_at=math.ceil(wall + wait),
    )


def locked_out_error(
    state: throttle.ThrottleState, now: float, what: str, wall: float
) -> FlowError:
    """The lock-out answer: when to come back, blaming nobody; for residents, the QR way."""
    wait = throttle.blocked_for(state, now)
    qr = " The QR code from the pickup notice still works." if what == "code" else ""
    return FlowError(
        "locked_out",
        f"Too many wrong {what}s were typed here; {what}s are taken again in {_seconds(wait)}.{qr}",
        retry_after=math.ceil(wait),
        retry_at=math.ceil(wall + wait),
    )


def wrong_code_error(
    state: throttle.ThrottleState, now: float, rules: ThrottleSection, what: str, wall: float
) -> FlowError:
    """The error for a wrong code, telling how many attempts are left and any wait."""
    if state.locked_out:
        return locked_out_error(state, now, what, wall)
    return FlowError(
        "wrong_code",
        f"that {what} is not right",
        attempts_left=throttle.attempts_left(state, now, rules),
        retry_after=math.ceil(throttle.blocked_for(state, now)),
    )


def _seconds(wait: float) -> str:
    """``1 second``, ``40 seconds``, ``1 min``, ``15 min``: whole units, rounded up."""
    if wait > 90:
        return f"{math.ceil(wait / 60)} min"
    whole = math.ceil(wait)
    return f"{whole} second" + ("" if whole == 1 else "s")


def courier_by_code(conn: sqlite3.Connection, code_hmac: bytes) -> Courier | None:
    row = conn.execute(
        "SELECT id, name, can_deliver, can_collect, carrier FROM couriers"
        " WHERE code_hmac = ? AND active",
        (code_hmac,),
    ).fetchone()
    return None if row is None else Courier(row[0], row[1], bool(row[2]), bool(row[3]), row[4])


class Throttles:
    """The wrong-code throttle's rows, one per scope (``pickup``, ``courier``)."""

    def __init__(self, context: Context):
        self._c = context

    def state(self, scope: str) -> throttle.ThrottleState:
        return load_throttle(self._c.conn, scope)

    def load(self, conn: sqlite3.Connection, scope: str, now: float) -> throttle.ThrottleState:
        """A scope's throttle state, bounded at ``now``; a bound that bit is written back
        (in ``conn``'s transaction), so the wait it leaves runs out instead of sliding."""
        stored = load_throttle(conn, scope)
        state = throttle.bounded(stored, now, self._c.config.pickup.throttle)
        if state != stored:
            save_throttle(conn, scope, state)
        return state

    def code_failed(
        self,
        conn: sqlite3.Connection,
        state: throttle.ThrottleState,
        now: float,
        wall: float,
        denied: Event,
        reason: str,
    ) -> throttle.ThrottleState:
        """Count a wrong pickup or send code against the pickup codes' budget (``denied``
        with its reason, and ``pickup.locked_out`` with the wall-clock time it ends when it
        locks the keypad out); the new state."""
        state = throttle.after_failure(state, now, self._c.config.pickup.throttle)
        save_throttle(conn, "pickup", state)
        self._c.event(denied, {"reason": reason, "failures": state.failures})
        if state.locked_out:
            until = wall + throttle.blocked_for(state, now)
            self._c.event(Event.PICKUP_LOCKED_OUT, {"until": until})
        return state

    def after_pickup(self, conn: sqlite3.Connection, scope: str) -> None:
        """A completed pickup ends the back-off streak (the budget stays)."""
        steady = self._c.throttle_now()
        state = self.load(conn, scope, steady)
        rules = self._c.config.pickup.throttle
        save_throttle(conn, scope, throttle.after_pickup(state, steady, rules))
