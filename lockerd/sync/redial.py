"""When a locker may connect to its MQTT broker again: full jitter, spread, and a rate cap.

A fleet that loses its broker all at once must not come back all at once:
the first retry after a lost connection is drawn uniformly over a window
(``sync.mqtt_first_retry_s``, 60 s by default: about what a broker needs to
take 10,000 TLS handshakes) less its first tenth. A retry that fails while
that window lasts is drawn again over what is left of it (at least a tenth of
the window), so a fleet is back within the window when the broker is. Past
the window, a refused retry (nothing listening: it cost the broker nothing)
is drawn over one window again, so a long outage costs at most about a
window on top, for about 2 attempts a window; any other failure (a timeout,
a TLS or CONNACK error: the broker is there but struggling) doubles from the
window with full jitter, capped. No locker ever makes more than
:data:`PER_MINUTE` connects in a minute (EMQX bans a client id for 5 minutes
after 15; AWS allows 1 a second), across restarts too (:meth:`Redial.recall`
is given the attempts an earlier run kept in the state database). The
policy is pure: it is told the time and answers a time, so it is tested
without waiting and shared with ``benchmarks/fleet_storm.py``.
"""

from __future__ import annotations

import random
from collections import deque

#: Connects one locker may make in any minute.
PER_MINUTE = 4
#: The share of the window no first retry lands in. A connection lost is most often the
#: broker dropping all its clients at once (a restart, a failover) and listening again a
#: moment later (1.2 s for mosquitto in benchmarks/fleet_storm.py): a retry that soon is
#: only refused, and then waits a whole window more.
FIRST_RETRY_FLOOR = 0.1
MINUTE = 60.0


class Redial:
    """Times of connect attempts: ``next_attempt(now)`` after each ``attempted``/``lost``."""

    def __init__(
        self,
        window: float,
        base: float,
        cap: float,
        rng: random.Random | None = None,
        per_minute: int = PER_MINUTE,
    ):
        self.window, self.base, self.cap = window, base, cap
        self.rng = rng or random.Random()
        self.per_minute = per_minute
        #: Failed attempts since the last connection that held (0: none yet).
        self.failures = 0
        self.recent: deque[float] = deque(maxlen=per_minute)
        self._dropped = False
        #: Where the spread after a lost connection ends (None: no such window open).
        self._window_end: float | None = None
        #: Failed attempts since that window ended (they double from the window).
        self._late = 0
        #: Whether the last attempt found nothing listening.
        self._refused = False

    def attempted(self, at: float, ok: bool, refused: bool = False) -> None:
        """Record an attempt made at ``at``, whether the broker took it, and whether it was
        ``refused`` (nothing listening: it cost the broker nothing)."""
        self.recent.append(at)
        self.failures = 0 if ok else self.failures + 1
        self._refused = refused
        late = not ok and (self._window_end is None or at >= self._window_end)
        self._late = self._late + 1 if late else 0
        if ok:
            self._window_end = None
        self._dropped = False

    def recall(self, ats: list[float]) -> None:
        """Attempts made before this policy began (by an earlier run of the daemon),
        at times on this policy's clock: they count toward the per-minute cap."""
        for at in sorted(ats)[-self.per_minute :]:
            self.recent.append(at)

    def lost(self) -> None:
        """A connection that held has gone: the next attempt is spread over the window
        (past its first tenth), which opens at the next :meth:`next_attempt`."""
        self._dropped, self.failures, self._late = True, 0, 0
        self._window_end, self._refused = None, False

    def next_attempt(self, now: float) -> float:
        """When the next attempt may start (``now`` or later)."""
        return max(now + self._jitter(now), self.allowed_from())

    def _jitter(self, now: float) -> float:
        floor = self.window * FIRST_RETRY_FLOOR
        if self._dropped:
            if self._window_end is None:
                self._window_end = now + self.window
            return self.rng.uniform(floor, self.window)
        if self.failures == 0:
            return 0.0  # the first connect of all, at start
        if self._window_end is None:
            late = self.failures  # failing since start: no window was ever open
        elif self._late == 0:
            return self.rng.uniform(0, max(self._window_end - now, floor))  # what is left
        elif self._refused:
            return self.rng.uniform(0, max(self.window, self.base))  # still down: one window
        else:
            late = self._late
        ceiling = max(self.window, self.base) * 2 ** (late - 1)
        return self.rng.uniform(0, min(self.cap, ceiling))

    def allowed_from(self) -> float:
        """The earliest time that keeps every minute within ``per_minute`` attempts."""
        if len(self.recent) < self.per_minute:
            return 0.0
        return self.recent[0] + MINUTE
