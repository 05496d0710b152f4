"""A scanner module on a serial line: USB CDC-ACM (/dev/ttyACM0), a USB-UART, or the Pi's UART.

In these modes a scanner sends each code's bytes followed by CR, LF or CR LF;
raw bytes arrive untouched (GS1 separators included), and nothing reaches the
browser's keyboard focus. A line longer than ``max_line`` is dropped whole.
"""

from __future__ import annotations

import logging

import serial

from drivers.errors import LinkError
from drivers.scanner.base import OnScan, ReaderThread, Scan

log = logging.getLogger(__name__)


class LineSplitter:
    """Cuts a byte stream at CR and LF; empty lines (the LF of CR LF) are skipped."""

    def __init__(self, max_line: int = 1024):
        self.max_line = max_line
        self._buffer = bytearray()
        self._overlong = False
        #: Lines dropped for being longer than ``max_line``.
        self.dropped = 0

    def feed(self, data: bytes) -> list[bytes]:
        lines = []
        for byte in data:
            if byte in (0x0D, 0x0A):
                if self._overlong:
                    self.dropped += 1
                elif self._buffer:
                    lines.append(bytes(self._buffer))
                self._buffer.clear()
                self._overlong = False
            elif len(self._buffer) < self.max_line:
                self._buffer.append(byte)
            else:
                self._overlong = True
        return lines


class SerialScanner(ReaderThread):
    """Reads codes from ``url`` (any pyserial URL) in its own thread; reopens after a failure."""

    def __init__(self, name: str, url: str, baud: int, on_scan: OnScan, *, reopen_s: float = 2.0):
        self.name, self.url, self.baud = name, url, baud
        self.on_scan = on_scan
        self.reopen_s = reopen_s
        self.lines = LineSplitter()
        self.online = False
        self._port: serial.SerialBase | None = None
        self._reader(f"scanner-{name}")

    def start(self) -> SerialScanner:
        """Open the port (a port that cannot be opened stops the start, with its reason)."""
        try:
            self._port = self._open()
        except (serial.SerialException, OSError, ValueError) as exc:
            raise LinkError(f"scanner {self.name}: cannot open {self.url}: {exc}") from exc
        self._thread.start()
        return self

    def close(self) -> None:
        self.stop_reading()
        if self._port is not None:
            self._port.close()

    def _open(self) -> serial.SerialBase:
        port = serial.serial_for_url(self.url, self.baud, timeout=0.2)
        self.online = True
        return port

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if self._port is None:
                    self._port = self._open()
                data = self._port.read(256)
            except (serial.SerialException, OSError) as exc:
                if self.online:
                    log.warning("scanner %s on %s failed: %s", self.name, self.url, exc)
                self.online = False
                if self._port is not None:
                    self._port.close()
                    self._port = None
                self._stop.wait(self.reopen_s)
                continue
            for line in self.lines.feed(data):
                self.on_scan(Scan(line.decode("latin-1"), self.name))
