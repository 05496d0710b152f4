"""systemd's notify protocol (sd_notify(3)): READY, STATUS, STOPPING and the watchdog.

A datagram of ``KEY=value`` lines to the socket named by ``$NOTIFY_SOCKET``
(a leading ``@`` means the abstract namespace). Without that variable (not
started by systemd, or ``Type=`` other than notify) every call does nothing.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Mapping

log = logging.getLogger(__name__)


class Notifier:
    def __init__(self, environ: Mapping[str, str] | None = None):
        environ = os.environ if environ is None else environ
        address = environ.get("NOTIFY_SOCKET", "")
        self.address = "\0" + address[1:] if address.startswith("@") else address
        usec = environ.get("WATCHDOG_USEC", "")
        pid = environ.get("WATCHDOG_PID", "")
        ours = not pid or pid == str(os.getpid())
        #: Seconds between watchdog pings (half of WatchdogSec=), or None without a watchdog.
        self.watchdog_interval = int(usec) / 2e6 if usec.isdigit() and ours else None

    @property
    def enabled(self) -> bool:
        return bool(self.address)

    def send(self, **fields: object) -> None:
        """Send ``KEY=value`` lines; a failure is logged, never raised (systemd may be gone)."""
        if not self.address:
            return
        message = "\n".join(f"{key.upper()}={value}" for key, value in fields.items())
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.sendto(message.encode(), self.address)
        except OSError as exc:
            log.warning("sd_notify to %s failed: %s", self.address.lstrip("\0"), exc)


class Watchdog:
    """Pings systemd's watchdog only while every bus poller keeps completing polls.

    ``progress()`` returns the completed polls per bus; a ping is sent when each
    count moved since the previous ping, so a hung bus thread or a stuck event
    loop stops the pings and systemd restarts the daemon.
    """

    def __init__(self, notifier: Notifier, progress: Callable[[], Mapping[str, int]]):
        self.notifier = notifier
        self.progress = progress
        self._last: dict[str, int] = dict(progress())
        self.pings = 0
        self.missed = 0

    def check(self) -> bool:
        """Ping if every bus made progress since the last check; whether it pinged."""
        now = dict(self.progress())
        moved = all(now.get(bus, 0) > count for bus, count in self._last.items())
        self._last = now
        if moved:
            self.pings += 1
            self.notifier.send(watchdog=1)
        else:
            self.missed += 1
            log.warning("watchdog not fed: a bus poller made no progress")
        return moved
