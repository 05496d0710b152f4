"""A link whose far end is a simulator called in-process: the same bytes, no port, no time.

It has the :class:`~drivers.link.SerialLink` interface, so the real board
code runs unchanged on top of it. A request the simulator does not answer
raises :class:`~drivers.errors.BoardTimeout` at once instead of after the
timeout; that is what lets flow tests drive time with a fake clock.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from drivers.errors import BoardTimeout
from drivers.link import FrameDecoder, LinkStats

F = TypeVar("F")


class DirectLink:
    def __init__(self, exchange: Callable[[bytes], bytes], url: str = "direct://"):
        self._exchange = exchange
        self.url = url
        self.stats = LinkStats()

    def send(self, request: bytes) -> None:
        self.stats.requests += 1
        self._exchange(request)

    def transact(
        self,
        request: bytes,
        decoder: FrameDecoder[F],
        accept: Callable[[F], bool],
        *,
        expect: int,
        timeout: float,
    ) -> F:
        self.stats.requests += 1
        decoder.reset()
        for frame in decoder.feed(self._exchange(request)):
            if accept(frame):
                self.stats.replies += 1
                return frame
            self.stats.stray_frames += 1
        self.stats.timeouts += 1
        raise BoardTimeout(f"no reply on {self.url}")

    def close(self) -> None:
        """Nothing to release."""
