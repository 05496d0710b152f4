"""The fake-clock tests' way of running the locker: every call inline, serial twins in-process.

With these, every board and store call happens on the loop as it is made, and
a simulated serial bus answers through a DirectLink (no pty, no thread), so
time moves only when the test advances the fake clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from drivers.directlink import DirectLink
from drivers.link import Link
from drivers.simserial import SerialSimulator
from lockerd import hardware
from lockerd.config import Config
from lockerd.config.schema import BusConfig
from lockerd.worker import Runner

T = TypeVar("T")
P = ParamSpec("P")


class InlineRunner(Runner):
    """A :class:`~lockerd.worker.Runner` that calls ``fn`` on the caller, at once."""

    def __init__(self, name: str = "inline") -> None:
        self.name = name

    async def __call__(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        return fn(*args, **kwargs)

    def shutdown(self) -> None:
        pass


def in_process(spend: Callable[[float], None] | None = None) -> hardware.Connect:
    """Links a simulated serial bus's twin in-process; ``spend`` is told each exchange's
    wire time (a fake clock's ``spend``), else the line takes no time."""

    def connect(sim: SerialSimulator[Any, Any], bus: BusConfig) -> Link:
        return DirectLink(sim.exchange, url=f"sim://{bus.name}", spend=spend, baud=bus.baud)

    return connect


def build(
    config: Config,
    *,
    now: Callable[[], float] = time.monotonic,
    spend: Callable[[float], None] | None = None,
) -> hardware.Hardware:
    """The config's hardware with inline runners and in-process serial twins."""
    return hardware.build(config, connect=in_process(spend), runner=InlineRunner, now=now)
