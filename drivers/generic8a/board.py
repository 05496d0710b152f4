"""A generic 0x8A/0x80 board on a serial link: one query-all read gives every lock's state.

These boards report one signal per lock (the lock's own switch), so the bank
reads the door from it. The unlock reply is not waited for: it comes about a
second later on some firmware and never on others; the status read confirms.
"""

from __future__ import annotations

from drivers.base import MAX_PULSE_MS, Inputs, check_pulse, read_with_retries
from drivers.errors import ChannelError
from drivers.generic8a import codec
from drivers.link import Link


class Generic8aBoard:
    def __init__(
        self,
        link: Link,
        address: int,
        channels: int,
        *,
        timeout: float = 0.3,
        status_retries: int = 2,
        max_pulse_ms: int = MAX_PULSE_MS,
    ):
        if not 1 <= address <= codec.MAX_BOARD:
            raise ChannelError(f"board address {address} outside 1..{codec.MAX_BOARD}")
        if not 1 <= channels <= codec.MAX_LOCKS:
            raise ChannelError(f"{channels} locks: one query reply covers 1..{codec.MAX_LOCKS}")
        self.address = address
        self.channels = channels
        self._link = link
        self._timeout = timeout
        self._retries = status_retries
        self.max_pulse_ms = max_pulse_ms
        self.decoder = codec.reply_decoder(8)
        #: The query never changes: encoded once, sent every poll.
        self._query = codec.query_all_request(address)

    def pulse(self, channel: int, milliseconds: int) -> None:
        check_pulse("0x8A board", channel, self.channels, milliseconds, self.max_pulse_ms)
        self._link.send(codec.unlock_request(self.address, channel))

    def read_inputs(self, *, probe: float | None = None) -> Inputs:
        def read(again: bool) -> codec.LockReply | codec.AllReply:
            return self._link.transact(
                self._query,
                self.decoder,
                self._mine,
                expect=8,
                timeout=self._timeout if probe is None else min(probe, self._timeout),
                quiet_after=probe is None,
                retry=again,
            )

        reply = read_with_retries(read, self._retries if probe is None else 0)
        assert isinstance(reply, codec.AllReply)
        return Inputs(locks=reply.bits & ((1 << self.channels) - 1), sensors=0)

    def release_now(self) -> None:
        """Nothing to release: the board ends every pulse itself."""

    def close(self) -> None:
        """Nothing to release: the board ends every pulse itself."""

    def _mine(self, reply: codec.LockReply | codec.AllReply) -> bool:
        return isinstance(reply, codec.AllReply) and reply.board == self.address
