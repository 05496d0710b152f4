"""Wrong-code throttling: a budget of wrong codes that only time refills, plus a short back-off.

Pure arithmetic over the persisted numbers, so it survives restarts and is
tested without a clock. Two rules, one keypad (the locker has one; a wrong
code says nothing about who typed it):

- The budget (a token bucket, kept as one timestamp): the keypad takes
  ``lockout_after`` wrong codes; each comes back ``lockout_s`` after it was
  spent. With the budget spent, no typed code is checked until one comes back
  (a lock-out of ``lockout_s`` at most). Nothing else refills it: not a right
  code, not a completed pickup, not a restart. So over a year an attacker who
  never stops gets at most :func:`yearly_guesses` tries, whatever else happens.
- The back-off: from the ``free_failures + 1``-th wrong code since the last
  completed pickup, each wrong code adds a wait that doubles up to
  ``backoff_max_s``. Only a completed pickup (the parcel taken out and the
  door shut) ends the streak; it only slows hammering and is not counted
  in the yearly figure.

The chance that a year of guessing opens somebody's compartment, with ``n``
codes stored among ``10**L`` possible ones, is ``1 - (1 - n / 10**L) ** G``
(:func:`guess_chance`); ``lockerd check-config`` prints it for the configured
bank with every compartment full and refuses a config above 1 %.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from lockerd.config.schema import ThrottleSection

#: The year the guess chance is counted over (seconds).
YEAR_S = 365.25 * 24 * 3600
#: The most a full bank's guess chance per year may be.
MAX_GUESS_CHANCE = 0.01
#: A derived code length is never shorter than this, nor longer than MAX_CODE_LENGTH.
MIN_DERIVED_LENGTH = 8
MAX_CODE_LENGTH = 12


@dataclass(frozen=True)
class ThrottleState:
    #: Wrong codes since the last completed pickup (the back-off's streak).
    failures: int = 0
    #: Wall time before which no attempt is accepted (back-off or spent budget).
    blocked_until: float = 0.0
    #: The wait is the spent budget's (a lock-out), not only a back-off.
    locked_out: bool = False
    #: When the budget is full again: each wrong code pushes it ``lockout_s`` later.
    budget_full_at: float = 0.0


def after_failure(state: ThrottleState, now: float, rules: ThrottleSection) -> ThrottleState:
    """The state after one more wrong code at ``now``."""
    state = bounded(state, now, rules)
    failures = state.failures + 1
    full_at = min(max(state.budget_full_at, now) + rules.lockout_s, now + _full_span(rules))
    spent_until = _spent_until(full_at, rules)
    until = max(now + _backoff(failures, rules), spent_until)
    return ThrottleState(failures, until if until > now else 0.0, spent_until > now, full_at)


def after_pickup(state: ThrottleState, now: float, rules: ThrottleSection) -> ThrottleState:
    """A completed pickup ends the back-off's streak; the budget stays as it is."""
    state = bounded(state, now, rules)
    spent_until = _spent_until(state.budget_full_at, rules)
    running = spent_until > now
    return replace(
        state, failures=0, blocked_until=spent_until if running else 0.0, locked_out=running
    )


def bounded(state: ThrottleState, now: float, rules: ThrottleSection) -> ThrottleState:
    """``state`` as read at ``now``, whatever the wall clock did since it was written.

    A spent budget is never worth more than ``lockout_after * lockout_s`` of
    waiting, and no wait is longer than ``max(lockout_s, backoff_max_s)``; a
    timestamp beyond that was written on a clock that has since gone back (a
    board without a real-time clock booting at 1970, an NTP correction) and
    would otherwise block the keypad for as long as the step. A wait that is
    over is ``blocked_until = 0``, so an old timestamp never blocks again.
    """
    full_at = min(state.budget_full_at, now + _full_span(rules))
    until = min(state.blocked_until, now + max(rules.lockout_s, rules.backoff_max_s))
    if until <= now:
        return replace(state, blocked_until=0.0, locked_out=False, budget_full_at=full_at)
    return replace(state, blocked_until=until, budget_full_at=full_at)


def attempts_left(state: ThrottleState, now: float, rules: ThrottleSection) -> int:
    """Wrong codes the budget still takes at ``now``."""
    spent = max(0.0, state.budget_full_at - now) / rules.lockout_s
    # A hair of slack so 8100 s / 900 s counts as 9 spent, not 9.000000001.
    return max(0, math.floor(rules.lockout_after - spent + 1e-9))


def blocked_for(state: ThrottleState, now: float) -> float:
    """Seconds until the next attempt is accepted (0 when it is now; 0 is no wait)."""
    return max(0.0, state.blocked_until - now) if state.blocked_until else 0.0


def _full_span(rules: ThrottleSection) -> float:
    """How far ahead of now the budget can be full again: all of it spent."""
    return float(rules.lockout_after * rules.lockout_s)


def _spent_until(full_at: float, rules: ThrottleSection) -> float:
    """When the budget next holds one wrong code, given when it is full again."""
    return full_at - (rules.lockout_after - 1) * rules.lockout_s


def _backoff(failures: int, rules: ThrottleSection) -> float:
    if failures <= rules.free_failures:
        return 0.0
    steps = min(failures - rules.free_failures - 1, 64)
    return float(min(rules.backoff_base_s * 2**steps, rules.backoff_max_s))


class SteadyTime:
    """The throttle's time: the wall clock, except that it never jumps forward.

    Within one run of the daemon, refills follow the monotonic clock: when the
    wall clock has moved further ahead than the monotonic time that passed since
    the last reading (plus ``slack`` for clock slewing), only the monotonic time
    counts, so a forward step (a forged NTP answer) refills nothing. A backward
    step is followed, and :func:`bounded` caps what it could cost. Across a
    restart there is no monotonic reading to compare with; the cap is all there
    is (docs/wrong-codes.md: the known limit).
    """

    def __init__(self, slack: float = 2.0):
        self.slack = slack
        self._seen: tuple[float, float] | None = None

    def now(self, wall: float, mono: float) -> float:
        if self._seen is not None:
            last, last_mono = self._seen
            passed = max(0.0, mono - last_mono)
            if wall - last > passed + self.slack:
                wall = last + passed
        self._seen = (wall, mono)
        return wall


# -- the guess chance ------------------------------------------------------------


def yearly_guesses(rules: ThrottleSection) -> int:
    """Most wrong codes one keypad takes in a year: the full budget, then one per refill."""
    return rules.lockout_after + math.floor(YEAR_S / rules.lockout_s)


def guess_chance(stored: int, length: int, guesses: int) -> float:
    """Chance that ``guesses`` random tries hit one of ``stored`` codes of ``length`` digits."""
    hit = stored / 10**length
    if hit >= 1:
        return 1.0
    return -math.expm1(guesses * math.log1p(-hit))


def code_length_for(stored: int, guesses: int, limit: float = MAX_GUESS_CHANCE) -> int | None:
    """The fewest digits (from MIN_DERIVED_LENGTH) that keep the chance at most ``limit``."""
    for length in range(MIN_DERIVED_LENGTH, MAX_CODE_LENGTH + 1):
        if guess_chance(stored, length, guesses) <= limit:
            return length
    return None


def shortest_lockout_needed(
    stored: int, length: int, rules: ThrottleSection, limit: float = MAX_GUESS_CHANCE
) -> int | None:
    """The shortest ``lockout_s`` (whole seconds) that keeps the chance at most ``limit``."""
    hit = stored / 10**length
    if hit >= 1:
        return None
    most = math.floor(math.log1p(-limit) / math.log1p(-hit))
    if most <= rules.lockout_after:
        return None
    # floor(YEAR_S / lockout_s) may be at most ``most - lockout_after``.
    return math.floor(YEAR_S / (most - rules.lockout_after + 1)) + 1
