"""Wrong-code throttling arithmetic (persisted numbers, no clock) and the guess-chance figures."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lockerd.config.schema import ThrottleSection
from lockerd.throttle import (
    MAX_GUESS_CHANCE,
    YEAR_S,
    SteadyTime,
    ThrottleState,
    after_failure,
    after_pickup,
    attempts_left,
    blocked_for,
    bounded,
    code_length_for,
    guess_chance,
    shortest_lockout_needed,
    yearly_guesses,
)

RULES = ThrottleSection(
    free_failures=2, backoff_base_s=2, backoff_max_s=60, lockout_after=10, lockout_s=900
)


def fail(times: int, now: float = 0.0, rules: ThrottleSection = RULES) -> ThrottleState:
    state = ThrottleState()
    for _ in range(times):
        state = after_failure(state, now, rules)
    return state


def test_first_two_failures_are_free() -> None:
    assert blocked_for(fail(1), 0) == 0
    assert blocked_for(fail(2), 0) == 0


def test_backoff_doubles_from_the_third_and_is_capped() -> None:
    waits = [blocked_for(fail(n), 0) for n in range(3, 10)]
    assert waits == [2, 4, 8, 16, 32, 60, 60]


def test_the_budget_runs_out_at_the_limit_and_comes_back_one_code_at_a_time() -> None:
    state = fail(10)
    assert state.locked_out and blocked_for(state, 0) == 900
    assert attempts_left(state, 0, RULES) == 0
    assert attempts_left(state, 900, RULES) == 1
    again = after_failure(state, 900, RULES)
    assert again.locked_out and blocked_for(again, 900) == 900, "no fresh count after a lock-out"
    assert attempts_left(state, 10 * 900, RULES) == 10, "full again after a quiet spell"


def test_a_completed_pickup_ends_the_streak_but_not_the_budget() -> None:
    state = after_pickup(fail(10), 0, RULES)
    assert state.failures == 0
    assert blocked_for(state, 0) == 900 and state.locked_out


def test_an_attacker_who_never_stops_gets_at_most_the_yearly_figure() -> None:
    # Every attempt as soon as it is accepted, for a whole year; every one wrong.
    rules = ThrottleSection()
    state, now, count = ThrottleState(), 0.0, 0
    while now <= YEAR_S:
        state = after_failure(state, now, rules)
        count += 1
        now = max(now, state.blocked_until)
    assert count <= yearly_guesses(rules)
    assert count >= yearly_guesses(rules) - 2, "the bound is tight, not a guess"


@given(
    failures=st.integers(0, 40),
    gap=st.floats(0, 4000, allow_nan=False),
)
def test_waits_never_shrink_with_another_failure(failures: int, gap: float) -> None:
    state = fail(failures)
    later = after_failure(state, gap, RULES)
    assert blocked_for(later, gap) >= blocked_for(state, gap)
    assert attempts_left(later, gap, RULES) <= attempts_left(state, gap, RULES)


def test_the_chance_formula() -> None:
    assert guess_chance(1, 8, 1) == pytest.approx(1e-8)
    assert guess_chance(100, 8, 10**6) == pytest.approx(1 - (1 - 1e-6) ** 10**6)
    assert guess_chance(10**8, 8, 1) == 1.0
    assert guess_chance(5, 8, 0) == 0.0


@pytest.mark.parametrize(("doors", "length"), [(1, 8), (24, 8), (28, 8), (29, 9), (384, 10)])
def test_the_derived_code_length_keeps_every_full_bank_under_one_percent(doors, length) -> None:
    guesses = yearly_guesses(ThrottleSection())
    assert code_length_for(doors, guesses) == length
    assert guess_chance(doors, length, guesses) <= MAX_GUESS_CHANCE
    assert guess_chance(doors, length - 1, guesses) > MAX_GUESS_CHANCE or length == 8


def test_no_code_length_is_enough_for_a_throttle_that_lets_everything_through() -> None:
    assert code_length_for(10**6, 10**9) is None


def test_the_shortest_lock_out_that_keeps_the_limit() -> None:
    rules = ThrottleSection()
    refill = shortest_lockout_needed(384, 8, rules)
    assert refill is not None
    fitted = ThrottleSection(lockout_after=rules.lockout_after, lockout_s=refill)
    assert guess_chance(384, 8, yearly_guesses(fitted)) <= MAX_GUESS_CHANCE
    slower = ThrottleSection(lockout_after=rules.lockout_after, lockout_s=refill - 1)
    assert guess_chance(384, 8, yearly_guesses(slower)) > MAX_GUESS_CHANCE
    assert shortest_lockout_needed(10**8, 8, rules) is None
    assert math.isfinite(refill)


# -- the wall clock


def test_no_wait_is_kept_once_it_is_over() -> None:
    assert fail(1).blocked_until == 0, "no back-off: nothing to keep"
    assert after_pickup(fail(3), 100, RULES).blocked_until == 0
    assert after_pickup(fail(10), 0, RULES).blocked_until == 900, "the lock-out runs on"


@given(
    failures=st.integers(0, 40),
    written=st.floats(-1e10, 1e10, allow_nan=False),
    read=st.floats(-1e10, 1e10, allow_nan=False),
)
def test_a_state_read_on_any_clock_is_never_worth_more_than_a_spent_budget(
    failures: int, written: float, read: float
) -> None:
    state = bounded(fail(failures, written), read, RULES)
    assert blocked_for(state, read) <= max(RULES.lockout_s, RULES.backoff_max_s)
    assert state.budget_full_at <= read + RULES.lockout_after * RULES.lockout_s
    assert attempts_left(state, read, RULES) <= attempts_left(fail(failures, written), read, RULES)


def test_the_throttle_time_does_not_follow_a_forward_step_of_the_wall_clock() -> None:
    steady = SteadyTime(slack=2)
    assert steady.now(1000, 0) == 1000
    assert steady.now(1010, 10) == 1010
    assert steady.now(1011.5, 10) == 1011.5, "within the slack: slewing"
    assert steady.now(90_000, 20) == 1021.5, "a step ahead: only the monotonic time counts"
    assert steady.now(90_030, 50) == 1051.5, "and it stays behind the stepped clock"
    assert steady.now(500, 60) == 500, "a step back is followed (and bounded())"
