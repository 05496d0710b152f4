"""When a locker may connect to its MQTT broker again: full jitter, spread, and a rate cap.

A fleet that loses its broker all at once must not come back all at once:
the first retry after a lost connection is drawn uniformly over a window
(``sync.mqtt_first_retry_s``, 60 s by default: about what a broker needs to
take 10,000 TLS handshakes) less its first tenth, later ones with capped
exponential full jitter,
and no locker ever makes more than :data:`PER_MINUTE` connects in a minute
(EMQX bans a client id for 5 minutes after 15; AWS allows 1 a second). The
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

    def attempted(self, at: float, ok: bool) -> None:
        """Record an attempt made at ``at`` and whether the broker took it."""
        self.recent.append(at)
        self.failures = 0 if ok else self.failures + 1
        self._dropped = False

    def lost(self) -> None:
        """A connection that held has gone: the next attempt is spread over the window
        (past its first tenth)."""
        self._dropped, self.failures = True, 0

    def next_attempt(self, now: float) -> float:
        """When the next attempt may start (``now`` or later)."""
        return max(now + self._jitter(), self._allowed_from())

    def _jitter(self) -> float:
        if self._dropped:
            return self.rng.uniform(self.window * FIRST_RETRY_FLOOR, self.window)
        if self.failures == 0:
            return 0.0  # the first connect of all, at start
        ceiling = max(self.window, self.base) * 2 ** (self.failures - 1)
        return self.rng.uniform(0, min(self.cap, ceiling))

    def _allowed_from(self) -> float:
        """The earliest time that keeps every minute within ``per_minute`` attempts."""
        if len(self.recent) < self.per_minute:
            return 0.0
        return self.recent[0] + MINUTE
