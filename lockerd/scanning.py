"""The scan stream: every scanner's reads, checked, held briefly by id, and announced.

A scan is a credential as often as a parcel label (a pickup QR code, a
courier's badge), so its text never goes out on the event stream. The kiosk
is told that a scan arrived (``{"type": "scan", "scan": {"id", "source",
"format", "kind"}}``) and hands the id to the endpoint its screen calls
(pickup, courier login or drop-off), which takes the text once. An unread
scan is forgotten after :data:`HELD_S` seconds.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from drivers.errors import LinkError
from drivers.scanner.base import OnScan, Scan
from lockerd import qrtoken, sendcode
from lockerd.clock import Clock
from lockerd.config import Config
from lockerd.config.schema import ScannerConfig
from lockerd.errors import BadRequest, NotFound

if TYPE_CHECKING:  # each scanner type's driver is imported when one is configured
    from drivers.scanner.camera import OpenCvCamera
    from drivers.scanner.serialsim import SimSerialScanner
    from drivers.scanner.sim import SimCamera

log = logging.getLogger(__name__)
Message = dict[str, Any]

HELD_S = 120.0
HELD_MAX = 32
MAX_TEXT = 1024
PRINTABLE = re.compile(r"[\x20-\x7e]+")


def check_text(text: str) -> str | None:
    """Why a scanned text cannot be used, or None when it can."""
    if not text:
        return "the scan was empty"
    if len(text) > MAX_TEXT:
        return f"the scan is longer than {MAX_TEXT} characters"
    if not PRINTABLE.fullmatch(text):
        return "the scan has characters that are not printable ASCII"
    return None


@dataclass
class HeldScan:
    text: str
    source: str
    format: str
    at: float


class ScanHub:
    """Receives scans from scanner threads and holds them for the kiosk; loop-owned."""

    def __init__(self, clock: Clock, publish: Callable[[Message], None]):
        self.clock = clock
        self.publish = publish
        self.rejected = 0
        self._held: OrderedDict[str, HeldScan] = OrderedDict()
        self._loop: asyncio.AbstractEventLoop | None = None

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def from_thread(self, scan: Scan) -> None:
        """The scanners' callback: hand the scan to the loop."""
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self.add, scan)

    def add(self, scan: Scan) -> str | None:
        """Check and hold one scan; its id, or None when it was refused (and said so)."""
        text = scan.text.strip()
        problem = check_text(text)
        if problem is not None:
            self.rejected += 1
            log.info("scan from %s refused: %s", scan.source, problem)
            self.publish({"type": "scan.rejected", "source": scan.source, "reason": problem})
            return None
        self._forget_old()
        scan_id = secrets.token_hex(8)
        self._held[scan_id] = HeldScan(text, scan.source, scan.format, self.clock.monotonic())
        while len(self._held) > HELD_MAX:
            self._held.popitem(last=False)
        kind = "pickup_token" if qrtoken.looks_like_token(text) else "label"
        kind = "send_code" if sendcode.looks_like_send_code(text) else kind
        view = {"id": scan_id, "source": scan.source, "format": scan.format, "kind": kind}
        self.publish({"type": "scan", "scan": view})
        return scan_id

    def take(self, scan_id: object) -> str:
        """The text of scan ``scan_id``, once."""
        if not isinstance(scan_id, str) or not re.fullmatch(r"[0-9a-f]{16}", scan_id):
            raise BadRequest("invalid_field", "scan must be a scan id", field="scan")
        self._forget_old()
        held = self._held.pop(scan_id, None)
        if held is None:
            raise NotFound("unknown_scan", "that scan was used or is too old: scan again")
        return held.text

    def _forget_old(self) -> None:
        now = self.clock.monotonic()
        while self._held and now - next(iter(self._held.values())).at > HELD_S:
            self._held.popitem(last=False)


@dataclass
class Scanners:
    """The opened scanners, and the twins behind simulated ones."""

    devices: dict[str, Any] = field(default_factory=dict)
    cameras: dict[str, SimCamera] = field(default_factory=dict)
    serial_sims: dict[str, SimSerialScanner] = field(default_factory=dict)

    def view(self, config: Config) -> list[dict[str, Any]]:
        return [
            {
                "name": s.name,
                "type": s.type,
                "simulated": s.simulator,
                "online": bool(getattr(self.devices.get(s.name), "online", False)),
            }
            for s in config.scanner
        ]

    def close(self) -> None:
        for device in self.devices.values():
            device.close()
        for sim in self.serial_sims.values():
            sim.close()


def build(config: Config, on_scan: OnScan) -> Scanners:
    """Open and start every configured scanner; no fallback when one cannot be opened."""
    scanners = Scanners()
    try:
        for scanner in config.scanner:
            scanners.devices[scanner.name] = _open(config, scanner, scanners, on_scan).start()
    except BaseException:
        scanners.close()
        raise
    return scanners


def _open(config: Config, s: ScannerConfig, scanners: Scanners, on_scan: OnScan) -> Any:
    if s.type == "wedge":
        from drivers.scanner.wedge import WedgeScanner

        return WedgeScanner(s.name, s.device, on_scan)
    if s.type == "serial":
        return _open_serial(s, scanners, on_scan)
    return _open_camera(config, s, scanners, on_scan)


def _open_serial(s: ScannerConfig, scanners: Scanners, on_scan: OnScan) -> Any:
    from drivers.scanner.serialscan import SerialScanner
    from drivers.scanner.serialsim import SimSerialScanner

    url = s.device
    if s.simulator:
        sim = scanners.serial_sims[s.name] = SimSerialScanner()
        url = sim.port
    return SerialScanner(s.name, url, s.baud, on_scan)


def _open_camera(config: Config, s: ScannerConfig, scanners: Scanners, on_scan: OnScan) -> Any:
    """numpy (the twin) and OpenCV (a real camera) are imported only here."""
    from drivers.scanner.camera import CameraScanner, OpenCvCamera
    from drivers.scanner.decode import make_decoder

    decoder = make_decoder(s.decoder, s.formats)
    frames: SimCamera | OpenCvCamera
    if s.simulator:
        frames = scanners.cameras[s.name] = _sim_camera(config, s)
    else:
        frames = OpenCvCamera(s.device, s.width, s.height, s.fps)
    return CameraScanner(s.name, frames, decoder, on_scan, fps=s.fps, repeat_s=s.repeat_s)


def _sim_camera(config: Config, s: ScannerConfig) -> SimCamera:
    from drivers.scanner.sim import SimCamera

    images = [config.resolve(path) for path in s.images]
    missing = [str(p) for p in images if not Path(p).is_file()]
    if missing:
        raise LinkError(f"scanner {s.name}: no image file {', '.join(missing)}")
    return SimCamera(s.width, s.height, images)
