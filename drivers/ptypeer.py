"""The device end of a pseudo-terminal, for simulators that speak real bytes.

The simulator keeps the pty master; the daemon opens :attr:`PtyPeer.port`
(``/dev/pts/N``) exactly as it would open ``/dev/ttyUSB0``. Both ends are in
raw mode, so every byte passes untouched. Baud rate has no effect on a pty:
replies arrive as fast as the simulator writes them unless it delays them.
"""

from __future__ import annotations

import os
import select
import threading
import tty
from collections.abc import Callable


class PtyPeer:
    """Runs ``on_bytes`` in a thread for every chunk the daemon writes."""

    def __init__(self, on_bytes: Callable[[bytes], None], name: str = "pty-sim"):
        self._on_bytes = on_bytes
        self._master, self._slave = os.openpty()
        tty.setraw(self._master)
        tty.setraw(self._slave)
        # Keeping our own slave fd open means a daemon that closes and
        # reopens the port never leaves the master reading EIO.
        self.port = os.ttyname(self._slave)
        self._stop_r, self._stop_w = os.pipe()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._write_lock = threading.Lock()

    def start(self) -> PtyPeer:
        self._thread.start()
        return self

    def write(self, data: bytes) -> None:
        with self._write_lock:
            view = memoryview(data)
            while view:
                view = view[os.write(self._master, view) :]

    def close(self) -> None:
        if self._stop_w < 0:
            return
        os.write(self._stop_w, b"x")
        if self._thread.is_alive():
            self._thread.join(timeout=2)
        for fd in (self._master, self._slave, self._stop_r, self._stop_w):
            os.close(fd)
        self._stop_w = -1

    def _run(self) -> None:
        while True:
            ready, _, _ = select.select([self._master, self._stop_r], [], [])
            if self._stop_r in ready:
                return
            try:
                data = os.read(self._master, 4096)
            except OSError:
                return
            if data:
                self._on_bytes(data)
