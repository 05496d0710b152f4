"""Half-duplex master link over a transport opened by URL.

The URL is anything pyserial's ``serial_for_url`` opens: a device path
(``/dev/ttyUSB0``, ``/dev/serial0``), a pty path (the simulators), or
``socket://host:port`` (a Kerong KR-BU or any TCP-to-RS-485 bridge) and
``loop://`` for tests. One request is in flight at a time; a link is owned
by exactly one bus thread, which is what makes it safe without locks.
"""

from __future__ import annotations

import os
import select
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

import serial

from drivers.errors import BoardTimeout, FrameError, LinkError

F = TypeVar("F")


class FrameDecoder(Protocol[F]):
    bad_checksum: int

    def reset(self) -> None: ...

    def feed(self, data: bytes) -> list[F]: ...


class Link(Protocol):
    """What a serial board needs of its line: a real port (:class:`SerialLink`) or a
    twin answering in-process (:class:`drivers.directlink.DirectLink`)."""

    url: str

    def send(self, request: bytes) -> None:
        """Write a frame that expects no reply."""

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
        """Send ``request`` and return the first decoded frame ``accept`` takes."""
        ...

    def close(self) -> None:
        """Release the line."""


@dataclass
class LinkStats:
    """Counters for diagnostics; only the bus thread writes them."""

    requests: int = 0
    replies: int = 0
    timeouts: int = 0
    stray_frames: int = 0
    damaged: int = 0


class SerialLink:
    """Writes a request, then reads until an accepted reply or the timeout."""

    def __init__(self, url: str, baudrate: int, *, gap: float = 0.02, low_latency: bool = True):
        """Open ``url`` at ``baudrate``.

        Args:
            gap: idle time kept between the end of one exchange and the next
                request, in seconds (boards need a few ms to turn the line round).
            low_latency: ask FTDI-style adapters for a 1 ms latency timer; ignored
                where the transport has no such setting.
        """
        self.url = url
        self.gap = gap
        #: One character on the line (8N1: ten bits).
        self.char_s = 10 / baudrate
        self.stats = LinkStats()
        try:
            self._port = serial.serial_for_url(
                url, baudrate=baudrate, timeout=0.1, write_timeout=1.0, exclusive=True
            )
        except (serial.SerialException, OSError, ValueError) as exc:
            raise LinkError(f"cannot open {url}: {exc}") from exc
        if low_latency and hasattr(self._port, "set_low_latency_mode"):
            try:
                self._port.set_low_latency_mode(True)
            except (OSError, ValueError, NotImplementedError):
                pass  # not a USB adapter with a latency timer (pty, UART, socket)
        # A device or pty is read and written on its descriptor: pyserial's read
        # re-applies the port settings (a lock and a termios read) whenever its
        # timeout changes, which is every exchange, and its write waits in a select
        # even when the frame went out whole. Other transports go through pyserial.
        fd = getattr(self._port, "fd", None)
        self._fd: int | None = fd if isinstance(fd, int) else None
        self._readable = select.poll()
        if self._fd is not None:
            self._readable.register(self._fd, select.POLLIN)
        self._idle_since = 0.0
        # After a timeout a reply may still be on its way; before the next
        # request the line must have been quiet this long, else that late
        # reply could be taken for the answer to the next request.
        self._quiet_needed = 0.0

    def send(self, request: bytes) -> None:
        """Write a frame that expects no reply (a Kerong unlock)."""
        self._before_request()
        self._write(request)
        self._idle_since = time.monotonic()

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
        """Send ``request`` and return the first decoded frame ``accept`` takes.

        After a timeout the next request waits for the line to be quiet as long,
        since a late reply may still be on its way; ``quiet_after=False`` skips
        that for a probe of a board already known to be silent (a stray reply
        from it is dropped before the next request and never accepted for
        another board's). ``retry=True`` marks a retry of the request that just
        failed: it goes out at once, since a late reply to the first try answers
        it as well as its own would.

        Frames that decode but are not accepted (a late reply to an earlier
        request, another board's answer) are counted and skipped. A reply of
        the expected length that fails its check ends the exchange at once
        (the board has finished talking; waiting out the timeout would only
        blind the bus), after the line has been quiet for a few characters.

        Raises:
            BoardTimeout: no accepted frame within ``timeout`` seconds.
            FrameError: the reply came back damaged.
            LinkError: the transport failed.
        """
        self._before_request(skip_quiet=retry)
        decoder.reset()
        damaged_before = decoder.bad_checksum
        self._write(request)
        deadline = time.monotonic() + timeout
        received = 0
        try:
            while deadline > time.monotonic():
                data = self._read(expect, deadline)
                received += len(data)
                for frame in decoder.feed(data):
                    if accept(frame):
                        self.stats.replies += 1
                        return frame
                    self.stats.stray_frames += 1
                if received >= expect and decoder.bad_checksum > damaged_before:
                    self.stats.damaged += 1
                    self._quiet_needed = max(self.gap, 4 * self.char_s)
                    raise FrameError(f"damaged reply on {self.url}")
        except (serial.SerialException, OSError) as exc:
            raise LinkError(f"{self.url}: {exc}") from exc
        finally:
            self._idle_since = time.monotonic()
        self.stats.timeouts += 1
        self._quiet_needed = timeout if quiet_after else 0.0
        raise BoardTimeout(f"no reply on {self.url} within {timeout * 1000:.0f} ms")

    def fileno(self) -> int | None:
        """The descriptor the link reads and writes itself; None for a socket or loop URL."""
        return self._fd

    def close(self) -> None:
        if self._fd is not None:
            self._readable.unregister(self._fd)
            self._fd = None  # its number may be reused at once: never read it again
        self._port.close()

    def _read(self, size: int, deadline: float) -> bytes:
        """Up to ``size`` bytes: all of them, or what has come by ``deadline``.

        Waits for the first byte, then for as long as the rest takes on the wire, so
        a reply that trickles in (a UART without a FIFO, a USB adapter's latency
        timer) costs a few wake-ups, not one a byte.
        """
        if self._fd is None:
            self._port.timeout = max(0.0, deadline - time.monotonic())
            return bytes(self._port.read(size))
        data = b""
        while len(data) < size and (left := deadline - time.monotonic()) > 0:
            if data:  # the rest is still on the wire: sleep through it, not a wake-up a byte
                time.sleep(min(left, (size - len(data)) * self.char_s))
                left = max(0.0, deadline - time.monotonic())
            if not self._readable.poll(left * 1000):
                break
            try:
                chunk = os.read(self._fd, size - len(data))
            except BlockingIOError:  # a readiness that was gone by the read: wait again
                continue
            if not chunk:
                raise LinkError(f"{self.url}: readable but no data (device unplugged?)")
            data += chunk
        return data

    def _before_request(self, skip_quiet: bool = False) -> None:
        wait = self._idle_since + self.gap - time.monotonic()
        if wait > 0:
            time.sleep(wait)  # runs in the bus thread, never on the event loop
        try:
            if self._quiet_needed and not skip_quiet:
                self._wait_for_quiet(self._quiet_needed)
            self._port.reset_input_buffer()  # drop late replies to earlier requests
        except serial.SerialException as exc:
            raise LinkError(f"{self.url}: {exc}") from exc
        self.stats.requests += 1

    def _wait_for_quiet(self, quiet: float) -> None:
        """Read and discard until nothing has arrived for ``quiet`` seconds (at most 4x that)."""
        self._port.timeout = quiet
        give_up = time.monotonic() + 4 * quiet
        while self._port.read(256) and time.monotonic() < give_up:
            pass
        self._quiet_needed = 0.0

    def _write(self, request: bytes) -> None:
        try:
            sent = self._write_some(request)
            if sent < len(request):  # a full output buffer: pyserial waits, up to its timeout
                self._port.write(request[sent:])
            self._port.flush()
        except (serial.SerialException, OSError) as exc:
            raise LinkError(f"{self.url}: {exc}") from exc

    def _write_some(self, request: bytes) -> int:
        """Write what the descriptor takes at once (nothing without one)."""
        if self._fd is None:
            return 0
        try:
            return os.write(self._fd, request)
        except BlockingIOError:
            return 0
