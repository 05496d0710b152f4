"""Couriers and wrong-code throttling, persisted so a restart forgets nothing."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from lockerd import throttle
from lockerd.config.schema import ThrottleSection
from lockerd.errors import FlowError


@dataclass(frozen=True)
class Courier:
    id: str
    name: str
    can_deliver: bool
    can_collect: bool

    @property
    def rights(self) -> list[str]:
        return [r for r, ok in (("deliver", self.can_deliver), ("collect", self.can_collect)) if ok]


def load_throttle(conn: sqlite3.Connection, scope: str, now: float) -> throttle.ThrottleState:
    row = conn.execute(
        "SELECT failures, blocked_until, locked_out FROM throttle WHERE scope = ?", (scope,)
    ).fetchone()
    if row is None:
        return throttle.ThrottleState()
    state = throttle.ThrottleState(row[0], row[1], bool(row[2]))
    return throttle.after_lockout_expired(state, now)


def save_throttle(conn: sqlite3.Connection, scope: str, state: throttle.ThrottleState) -> None:
    conn.execute(
        "INSERT INTO throttle (scope, failures, blocked_until, locked_out) VALUES (?, ?, ?, ?)"
        " ON CONFLICT(scope) DO UPDATE SET failures = excluded.failures,"
        " blocked_until = excluded.blocked_until, locked_out = excluded.locked_out",
        (scope, state.failures, state.blocked_until, int(state.locked_out)),
    )


def refuse_if_blocked(state: throttle.ThrottleState, now: float, what: str) -> None:
    """Raise while a back-off or lock-out is running; the attempt is not even checked."""
    wait = throttle.blocked_for(state, now)
    if not wait:
        return
    if state.locked_out:
        raise FlowError(
            "locked_out",
            f"too many wrong {what}s; try again in {wait / 60:.0f} min",
            status=429,
            retry_after=round(wait),
        )
    raise FlowError(
        "too_fast", f"wait {wait:.0f} s before the next {what}", status=429, retry_after=round(wait)
    )


def wrong_code_error(
    state: throttle.ThrottleState, now: float, rules: ThrottleSection, what: str
) -> FlowError:
    """The error for a wrong code, telling how many attempts are left and any wait."""
    if state.locked_out:
        wait = throttle.blocked_for(state, now)
        return FlowError(
            "locked_out",
            f"too many wrong {what}s; try again in {wait / 60:.0f} min",
            status=429,
            retry_after=round(wait),
        )
    return FlowError(
        "wrong_code",
        f"that {what} is not right",
        status=403,
        attempts_left=throttle.attempts_left(state, rules),
        retry_after=round(throttle.blocked_for(state, now)),
    )


def courier_by_code(conn: sqlite3.Connection, code_hmac: bytes) -> Courier | None:
    row = conn.execute(
        "SELECT id, name, can_deliver, can_collect FROM couriers WHERE code_hmac = ? AND active",
        (code_hmac,),
    ).fetchone()
    return None if row is None else Courier(row[0], row[1], bool(row[2]), bool(row[3]))
