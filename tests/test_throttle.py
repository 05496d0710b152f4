"""Wrong-code throttling arithmetic (persisted counters, no clock)."""

from hypothesis import given
from hypothesis import strategies as st

from lockerd.config.schema import ThrottleSection
from lockerd.throttle import (
    ThrottleState,
    after_failure,
    after_lockout_expired,
    attempts_left,
    blocked_for,
)

RULES = ThrottleSection(
    free_failures=2, backoff_base_s=2, backoff_max_s=60, lockout_after=10, lockout_s=900
)


def fail(times: int, now: float = 0.0) -> ThrottleState:
    state = ThrottleState()
    for _ in range(times):
        state = after_failure(state, now, RULES)
    return state


def test_first_two_failures_are_free() -> None:
    assert blocked_for(fail(1), 0) == 0
    assert blocked_for(fail(2), 0) == 0


def test_backoff_doubles_from_the_third_and_is_capped() -> None:
    waits = [blocked_for(fail(n), 0) for n in range(3, 10)]
    assert waits == [2, 4, 8, 16, 32, 60, 60]


def test_lockout_at_the_limit_then_a_fresh_count() -> None:
    state = fail(10)
    assert state.locked_out and blocked_for(state, 0) == 900
    assert attempts_left(state, RULES) == 0
    assert after_lockout_expired(state, 899) == state
    assert after_lockout_expired(state, 900) == ThrottleState()


@given(failures=st.integers(0, 30))
def test_waits_never_decrease_with_more_failures(failures: int) -> None:
    assert blocked_for(fail(failures + 1), 0) >= blocked_for(fail(failures), 0)
