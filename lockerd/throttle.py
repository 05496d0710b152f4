"""Wrong-code throttling: back-off from the third failure in a row, then a lock-out.

Pure arithmetic over the persisted counters, so it survives restarts and is
tested without a clock.
"""

from __future__ import annotations

from dataclasses import dataclass

from lockerd.config.schema import ThrottleSection


@dataclass(frozen=True)
class ThrottleState:
    failures: int = 0
    #: Wall time before which no attempt is accepted (back-off or lock-out).
    blocked_until: float = 0.0
    locked_out: bool = False


def after_failure(state: ThrottleState, now: float, rules: ThrottleSection) -> ThrottleState:
    """The state after one more wrong code at ``now``."""
    failures = state.failures + 1
    if failures >= rules.lockout_after:
        return ThrottleState(failures, now + rules.lockout_s, locked_out=True)
    if failures > rules.free_failures:
        steps = failures - rules.free_failures - 1
        delay = min(rules.backoff_base_s * 2**steps, rules.backoff_max_s)
        return ThrottleState(failures, now + delay)
    return ThrottleState(failures)


def attempts_left(state: ThrottleState, rules: ThrottleSection) -> int:
    """Wrong codes still allowed before the lock-out."""
    return max(0, rules.lockout_after - state.failures)


def blocked_for(state: ThrottleState, now: float) -> float:
    """Seconds until the next attempt is accepted (0 when it is now)."""
    return max(0.0, state.blocked_until - now)


def after_lockout_expired(state: ThrottleState, now: float) -> ThrottleState:
    """A lock-out that has run out starts a fresh count."""
    if state.locked_out and now >= state.blocked_until:
        return ThrottleState()
    return state
