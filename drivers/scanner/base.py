"""What every scanner reports, and the format names config and decoders share."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

#: Symbologies by the names config uses. A decoder maps them to its own
#: identifiers; a name it cannot read is refused when the config loads.
FORMATS = (
    "qr",
    "micro-qr",
    "datamatrix",
    "aztec",
    "pdf417",
    "code128",
    "code39",
    "code93",
    "codabar",
    "itf",
    "ean13",
    "ean8",
    "upca",
    "upce",
    "databar",
)


@dataclass(frozen=True, slots=True)
class Scan:
    """One read: the decoded text, where it came from and the symbology (when known)."""

    text: str
    source: str
    format: str = ""
    at: float = field(default_factory=time.monotonic)


#: Called from the scanner's own thread for every read it reports.
OnScan = Callable[[Scan], None]


class RepeatFilter:
    """Reports a code once while it stays in view.

    A camera sees the same code in every frame; the code is reported again
    only after it was out of sight for ``repeat_s`` seconds.
    """

    def __init__(self, repeat_s: float):
        self.repeat_s = repeat_s
        self._last_seen: dict[str, float] = {}

    def fresh(self, text: str, now: float) -> bool:
        """Whether ``text`` seen at ``now`` is a new read (and remember the sighting)."""
        stale = [t for t, seen in self._last_seen.items() if now - seen > self.repeat_s]
        for old in stale:
            del self._last_seen[old]
        new = text not in self._last_seen
        self._last_seen[text] = now
        return new


class ReaderThread:
    """The thread a scanner reads in: ``_run`` loops until :meth:`stop_reading` is called."""

    def _reader(self, name: str) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        raise NotImplementedError

    def stop_reading(self) -> None:
        """Ask the loop to end and wait for it (a read in progress ends within its timeout)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
