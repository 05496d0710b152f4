"""The serial scanner twin: a pty that sends each code followed by CR LF.

It behaves as a scanner module in CDC-ACM or UART mode does. It does not model
the module's configuration barcodes, beeps or a prefix/suffix other than CR LF.
"""

from __future__ import annotations

from drivers.ptypeer import PtyPeer


class SimSerialScanner:
    """A pty that a :class:`~drivers.scanner.serialscan.SerialScanner` opens like /dev/ttyACM0."""

    def __init__(self) -> None:
        self._peer = PtyPeer(lambda data: None, name="scanner-sim").start()
        self.port = self._peer.port

    def scan(self, text: str | bytes, terminator: bytes = b"\r\n") -> None:
        """Send one code as the module would after its trigger."""
        data = text.encode("latin-1") if isinstance(text, str) else text
        self._peer.write(data + terminator)

    def close(self) -> None:
        self._peer.close()
