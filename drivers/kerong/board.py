"""Kerong KR-CU16 and KR-CU48 boards on a serial link.

An unlock has no reliable reply (sources disagree on whether one comes), so
:meth:`pulse` only sends; the bank confirms with a status read. Status
reads are retried; unlocks never are.
"""

from __future__ import annotations

import logging
from typing import Any

from drivers.base import MAX_PULSE_MS, Inputs, check_pulse, read_with_retries
from drivers.errors import BoardTimeout, ChannelError, FrameError
from drivers.kerong import cu16, cu48
from drivers.link import Link

log = logging.getLogger(__name__)


class _KerongBoard:
    """Status reads with retries, unlocks sent once; the codec is the subclass's."""

    channels = 0
    max_address = 0
    family = ""
    reply_length = 0

    def __init__(
        self,
        link: Link,
        address: int,
        *,
        timeout: float = 0.3,
        status_retries: int = 2,
        max_pulse_ms: int = MAX_PULSE_MS,
    ):
        if not 0 <= address <= self.max_address:
            raise ChannelError(f"{self.family} address {address} outside 0..{self.max_address}")
        self.address = address
        self._link = link
        self._timeout = timeout
        self._retries = status_retries
        self.max_pulse_ms = max_pulse_ms
        #: The status request never changes: encoded once, sent every poll.
        self._status = self._status_request()

    def pulse(self, channel: int, milliseconds: int) -> None:
        check_pulse(self.family, channel, self.channels, milliseconds, self.max_pulse_ms)
        self._link.send(self._unlock_request(channel))

    def release_now(self) -> None:
        """Nothing to release: the board ends every pulse itself."""

    def read_inputs(self, *, probe: float | None = None) -> Inputs:
        def read(again: bool) -> Any:
            return self._link.transact(
                self._status,
                self.decoder,
                self._is_my_status,
                expect=self.reply_length,
                timeout=self._timeout if probe is None else min(probe, self._timeout),
                quiet_after=probe is None,
                retry=again,
            )

        return self._inputs(read_with_retries(read, self._retries if probe is None else 0))

    def close(self) -> None:
        """Nothing to release: the board ends every pulse itself."""

    decoder: Any

    def _unlock_request(self, channel: int) -> bytes:
        raise NotImplementedError

    def _status_request(self) -> bytes:
        raise NotImplementedError

    def _is_my_status(self, frame: Any) -> bool:
        raise NotImplementedError

    def _inputs(self, frame: Any) -> Inputs:
        raise NotImplementedError


class Cu16Board(_KerongBoard):
    """Sixteen locks and sixteen sensor inputs behind one CU16 address.

    Attributes:
        energize_confirmed: whether the board echoed the energize time written
            at start: None when none was written, False when it did not answer
            or reported another value.
    """

    channels = cu16.LOCKS
    max_address = cu16.MAX_BOARD
    family = "CU16"
    reply_length = 9

    def __init__(
        self,
        link: Link,
        address: int,
        *,
        timeout: float = 0.3,
        status_retries: int = 2,
        max_pulse_ms: int = MAX_PULSE_MS,
        energize_ms: int | None = None,
    ):
        super().__init__(
            link,
            address,
            timeout=timeout,
            status_retries=status_retries,
            max_pulse_ms=max_pulse_ms,
        )
        self.decoder = cu16.Decoder(cu16.REPLY_LENGTHS)
        self.energize_confirmed: bool | None = None
        if energize_ms is not None:
            self._set_energize_time(energize_ms)

    def _unlock_request(self, channel: int) -> bytes:
        return cu16.unlock_request(self.address, channel)

    def _status_request(self) -> bytes:
        return cu16.status_request(self.address)

    def _is_my_status(self, frame: cu16.Frame) -> bool:
        return frame.cmd == cu16.REPLY_STATUS and frame.board == self.address

    def _inputs(self, frame: cu16.Frame) -> Inputs:
        status = cu16.decode_status(frame)
        return Inputs(locks=status.locks, sensors=status.sensors)

    def _set_energize_time(self, milliseconds: int) -> None:
        """Write the energize time (0x37) and check that the 0x38 answer carries it.

        The command is unverified on hardware and a firmware may not implement
        it, so a missing, different or damaged answer is logged, never raised: the
        board then pulses for its own setting.
        """
        request = cu16.energize_time_request(self.address, milliseconds)
        try:
            reply = self._link.transact(
                request, self.decoder, self._is_my_energize_time, expect=7, timeout=self._timeout
            )
        except BoardTimeout:
            answer = "no answer"
        except FrameError:  # line noise on this one answer says nothing about the board
            answer = "a damaged answer"
        else:
            reported = cu16.energize_units(reply)
            answer = "" if reported == milliseconds else f"it reports {reported} ms"
        self.energize_confirmed = not answer
        if answer:
            log.warning(
                "CU16 board %d did not confirm energize time %d ms (set_energize_time): %s; "
                "the board keeps its own setting; check it with the vendor tool",
                self.address,
                milliseconds,
                answer,
            )

    def _is_my_energize_time(self, frame: cu16.Frame) -> bool:
        return frame.cmd == cu16.REPLY_ENERGIZE_TIME and frame.board == self.address


class Cu48Board(_KerongBoard):
    """Forty-eight locks and forty-eight sensor inputs behind one CU48 address."""

    channels = cu48.LOCKS
    max_address = cu48.MAX_BOARD
    family = "CU48"
    reply_length = 18

    def __init__(
        self,
        link: Link,
        address: int,
        *,
        timeout: float = 0.3,
        status_retries: int = 2,
        max_pulse_ms: int = MAX_PULSE_MS,
    ):
        super().__init__(
            link,
            address,
            timeout=timeout,
            status_retries=status_retries,
            max_pulse_ms=max_pulse_ms,
        )
        self.decoder = cu48.Decoder(cu48.REPLY_LENGTHS)

    def _unlock_request(self, channel: int) -> bytes:
        return cu48.open_request(self.address, channel)

    def _status_request(self) -> bytes:
        return cu48.status_request(self.address)

    def _is_my_status(self, frame: cu48.Frame) -> bool:
        return frame.cmd == cu48.REPLY and frame.board == self.address

    def _inputs(self, frame: cu48.Frame) -> Inputs:
        status = cu48.decode_status(frame)
        return Inputs(locks=status.locks, sensors=status.sensors)
