"""The narrow contract every board family implements, and what it reports."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from drivers.errors import BoardTimeout, ChannelError, FrameError, PulseRefused

T = TypeVar("T")

#: The longest pulse any board is opened to allow unless told a shorter one (the
#: config's ``safety.max_pulse_ms`` is at most this).
MAX_PULSE_MS = 5000


@dataclass(frozen=True, slots=True)
class Inputs:
    """Raw input levels read from one board, bit 0 = channel 1.

    ``locks`` are lock-feedback (latch/hook) bits and ``sensors`` door-sensor
    bits, exactly as the board reports them: what a 1 means (locked or not,
    closed or not) is wiring, so the bank applies each board's configured
    polarity, never the driver.
    """

    locks: int
    sensors: int


class LockBoard(Protocol):
    """A board that pulses locks and reads inputs. Methods block; call them from a bus thread."""

    #: Lock outputs on the board, numbered 1..channels.
    channels: int
    #: The longest pulse the board was opened to allow (0: it drives no lock).
    max_pulse_ms: int

    def pulse(self, channel: int, milliseconds: int) -> None:
        """Energize lock ``channel`` once for ``milliseconds``, then release it.

        Boards that time the pulse themselves use the length they were
        configured with when opened; the bank passes the same value.

        Raises:
            drivers.errors.ChannelError: no such lock on this board.
            drivers.errors.PulseRefused: longer than the board's ``max_pulse_ms``
                (the bank refuses it first; this layer refuses it again).
        """

    def release_now(self) -> None:
        """From any thread: leave every output de-energized at once (a stopping
        daemon). A board that times its own pulses has nothing to do."""

    def read_inputs(self, *, probe: float | None = None) -> Inputs:
        """Read every lock-feedback and sensor bit; a read that timed out or came back
        damaged is retried.

        Args:
            probe: probe a board already known to be silent instead: one try,
                with this reply timeout (seconds) where the board's link takes
                one, and no wait for a quiet line after it.

        Raises:
            drivers.errors.BoardTimeout: the board did not answer.
        """

    def close(self) -> None:
        """Release the board; every output is left de-energized."""


def check_pulse(
    board: str, channel: int, channels: int, milliseconds: int, max_pulse_ms: int
) -> None:
    """Refuse, before anything is sent, a lock the board lacks or a pulse over its limit."""
    if not 1 <= channel <= channels:
        raise ChannelError(f"{board} lock {channel} outside 1..{channels}")
    if not 0 < milliseconds <= max_pulse_ms:
        raise PulseRefused(f"{board} lock {channel}: a {milliseconds} ms pulse is outside"
                           f" 1..{max_pulse_ms} ms (max_pulse_ms)")  # fmt: skip


def read_with_retries(read: Callable[[bool], T], retries: int) -> T:
    """Call ``read`` until it answers, at most ``retries`` more times after a timeout
    or a damaged reply.

    ``read`` is told whether it is a retry (True): a link sends a retry at once,
    without the quiet line it otherwise waits for after a timeout, since a late
    reply to the first try answers the retry as well. Only for status reads: an
    unlock is never retried without first reading the status, and the bank, not
    a driver, makes that decision.
    """
    again = False
    for _ in range(retries):
        try:
            return read(again)
        except (BoardTimeout, FrameError):
            again = True  # at once: a damaged or lost reply says nothing about the next one
    return read(again)
