"""A link whose far end is a simulator called in-process: the same bytes, no port, no time.

It has the :class:`~drivers.link.SerialLink` interface, so the real board
code runs unchanged on top of it. A request the simulator does not answer
raises :class:`~drivers.errors.BoardTimeout` at once instead of after the
timeout; that is what lets flow tests drive time with a fake clock. Given a
``spend`` callback (a fake clock's), each exchange still costs its time on
that clock: the bytes' wire time at ``baud``, the whole timeout for a
request nobody answered and then the quiet line the next request waits for,
as :class:`~drivers.link.SerialLink` does. A whole reply that fails its check
ends the exchange at once with :class:`~drivers.errors.FrameError`, as there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from drivers.errors import BoardTimeout, FrameError
from drivers.link import FrameDecoder, LinkStats

F = TypeVar("F")


class DirectLink:
    def __init__(
        self,
        exchange: Callable[[bytes], bytes],
        url: str = "direct://",
        *,
        spend: Callable[[float], None] | None = None,
        baud: int = 19200,
    ):
        self._exchange = exchange
        self.url = url
        self.stats = LinkStats()
        self._spend = spend
        self._char_s = 10 / baud
        self._quiet_needed = 0.0

    def _costs(self, seconds: float) -> None:
        if self._spend is not None:
            self._spend(seconds)

    def _before_request(self, skip_quiet: bool = False) -> None:
        self.stats.requests += 1
        if not skip_quiet:  # a retry goes at once (see SerialLink.transact)
            self._costs(self._quiet_needed)
            self._quiet_needed = 0.0

    def send(self, request: bytes) -> None:
        self._before_request()
        self._exchange(request)
        self._costs(len(request) * self._char_s)

    def transact(
        self,
        request: bytes,
        decoder: FrameDecoder[F],
        accept: Callable[[F], bool],
        *,
        expect: int,
        timeout: float,
        quiet_after: bool = True,
        retry: bool = False,
    ) -> F:
        self._before_request(skip_quiet=retry)
        decoder.reset()
        damaged_before = decoder.bad_checksum
        reply = self._exchange(request)
        for frame in decoder.feed(reply):
            if accept(frame):
                self.stats.replies += 1
                self._costs((len(request) + len(reply)) * self._char_s)
                return frame
            self.stats.stray_frames += 1
        if len(reply) >= expect and decoder.bad_checksum > damaged_before:
            self.stats.damaged += 1
            self._costs((len(request) + len(reply)) * self._char_s)
            raise FrameError(f"damaged reply on {self.url}")
        self.stats.timeouts += 1
        self._costs(timeout)
        self._quiet_needed = timeout if quiet_after else 0.0
        raise BoardTimeout(f"no reply on {self.url}")

    def close(self) -> None:
        """Nothing to release."""
