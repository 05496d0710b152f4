"""A USB keyboard-wedge scanner read through evdev, grabbed so its keys never reach the browser.

The scanner types each code as key presses and ends it with Enter. evdev
gives layout-independent key codes; :class:`KeyAssembler` turns them back
into characters as a US-layout keyboard would (scanners type in US layout
unless told otherwise). python-evdev is optional: Debian's python3-evdev, or
``pip install evdev`` with a compiler and the kernel headers.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from drivers.errors import LinkError
from drivers.scanner.base import OnScan, Scan

log = logging.getLogger(__name__)

EV_KEY = 1
KEY_ENTER, KEY_KPENTER = 28, 96
SHIFTS = {42, 54}  # left and right shift
_ROWS = {
    2: "1234567890-=",
    16: "qwertyuiop[]",
    30: "asdfghjkl;'`",
    43: "\\zxcvbnm,./",
}
_SHIFTED_ROWS = {
    2: "!@#$%^&*()_+",
    16: "QWERTYUIOP{}",
    30: 'ASDFGHJKL:"~',
    43: "|ZXCVBNM<>?",
}
_KEYPAD = {71: "7", 72: "8", 73: "9", 74: "-", 75: "4", 76: "5", 77: "6", 78: "+", 79: "1",
           80: "2", 81: "3", 82: "0", 83: ".", 55: "*", 98: "/"}  # fmt: skip


def _table(rows: dict[int, str]) -> dict[int, str]:
    return {first + i: char for first, chars in rows.items() for i, char in enumerate(chars)}


PLAIN = _table(_ROWS) | _KEYPAD | {57: " "}
SHIFTED = _table(_SHIFTED_ROWS) | _KEYPAD | {57: " "}


class KeyAssembler:
    """Key events in, one code out at each Enter. Unknown keys are counted, not guessed."""

    def __init__(self, max_len: int = 1024):
        self.max_len = max_len
        self._chars: list[str] = []
        self._shift: set[int] = set()
        #: Key codes pressed that have no character here (the code is dropped at Enter).
        self.unknown_keys = 0
        self._bad = False

    def key(self, code: int, value: int) -> str | None:
        """Feed one EV_KEY event (value 1 press, 0 release, 2 auto-repeat)."""
        if code in SHIFTS:
            (self._shift.add if value else self._shift.discard)(code)
            return None
        if value != 1:
            return None
        if code in (KEY_ENTER, KEY_KPENTER):
            text, bad = "".join(self._chars), self._bad
            self._chars.clear()
            self._bad = False
            return None if bad or not text else text
        char = (SHIFTED if self._shift else PLAIN).get(code)
        if char is None or len(self._chars) >= self.max_len:
            self.unknown_keys += char is None
            self._bad = True
        else:
            self._chars.append(char)
        return None


class WedgeScanner:
    """Grabs the input device at ``path`` (/dev/input/by-id/usb-...-event-kbd), reads codes."""

    def __init__(self, name: str, path: str, on_scan: OnScan):
        try:
            import evdev
        except ImportError as exc:
            raise LinkError(
                f"scanner {name}: a keyboard-wedge scanner needs python-evdev"
                " (apt install python3-evdev, or pip install evdev)"
            ) from exc
        self.name, self.path, self.on_scan = name, path, on_scan
        try:
            self._device: Any = evdev.InputDevice(path)
            self._device.grab()  # its keys go to us only, never to the kiosk's browser
        except OSError as exc:
            raise LinkError(f"scanner {name}: cannot open {path}: {exc.strerror or exc}") from exc
        self.keys = KeyAssembler()
        self.online = True
        self._thread = threading.Thread(target=self._run, name=f"wedge-{name}", daemon=True)

    def start(self) -> WedgeScanner:
        self._thread.start()
        return self

    def close(self) -> None:
        try:
            self._device.ungrab()
        except OSError:
            pass  # already gone (unplugged)
        self._device.close()  # ends read_loop in the thread
        self._thread.join(timeout=5)

    def _run(self) -> None:
        try:
            for event in self._device.read_loop():
                if event.type == EV_KEY:
                    text = self.keys.key(event.code, event.value)
                    if text is not None:
                        self.on_scan(Scan(text, self.name))
        except OSError as exc:
            self.online = False
            log.warning("scanner %s on %s stopped: %s", self.name, self.path, exc)
