"""A Kerong KR-CU16 board on a :class:`~drivers.link.SerialLink`."""

from __future__ import annotations

from drivers.base import Inputs
from drivers.directlink import DirectLink
from drivers.errors import BoardTimeout, ChannelError
from drivers.kerong import codec
from drivers.link import SerialLink


class Cu16Board:
    """Sixteen locks and sixteen sensor inputs behind one CU16 address.

    An unlock has no reliable reply (sources disagree on whether one comes),
    so :meth:`pulse` only sends; the bank confirms with a status read.
    Status reads are retried; unlocks never are.
    """

    channels = codec.LOCKS

    def __init__(
        self,
        link: SerialLink | DirectLink,
        address: int,
        *,
        timeout: float = 0.3,
        status_retries: int = 2,
        energize_ms: int | None = None,
    ):
        if not 0 <= address <= codec.MAX_BOARD:
            raise ChannelError(f"CU16 address {address} outside 0..{codec.MAX_BOARD}")
        self.address = address
        self._link = link
        self._timeout = timeout
        self._retries = status_retries
        self._decoder = codec.Decoder(codec.REPLY_LENGTHS)
        if energize_ms is not None:
            self._set_energize_time(energize_ms)

    @property
    def decoder(self) -> codec.Decoder:
        return self._decoder

    def pulse(self, channel: int, milliseconds: int) -> None:
        if not 1 <= channel <= self.channels:
            raise ChannelError(f"CU16 lock {channel} outside 1..{self.channels}")
        self._link.send(codec.unlock_request(self.address, channel))

    def read_inputs(self) -> Inputs:
        request = codec.status_request(self.address)
        for attempt in range(self._retries + 1):
            try:
                frame = self._link.transact(
                    request, self._decoder, self._is_my_status, expect=9, timeout=self._timeout
                )
            except BoardTimeout:
                if attempt == self._retries:
                    raise
                continue
            status = codec.decode_status(frame)
            return Inputs(locks=status.locks, sensors=status.sensors)
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Nothing to release: the board ends every pulse itself."""

    def _is_my_status(self, frame: codec.Frame) -> bool:
        return frame.cmd == codec.REPLY_STATUS and frame.board == self.address

    def _set_energize_time(self, milliseconds: int) -> None:
        request = codec.energize_time_request(self.address, milliseconds)

        def accept(frame: codec.Frame) -> bool:
            return frame.cmd == codec.REPLY_ENERGIZE_TIME and frame.board == self.address

        try:
            self._link.transact(request, self._decoder, accept, expect=7, timeout=self._timeout)
        except BoardTimeout:
            pass  # not every firmware answers 0x37; the status read is the check that matters
