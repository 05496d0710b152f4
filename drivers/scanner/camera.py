"""A camera that reads codes: frames in its own thread, decoded, each code reported once.

The loop takes at most ``fps`` frames a second, so the CPU it uses is bounded
by the frame rate times the decode time of one frame (restricted formats keep
that small); the decoders release the GIL while they work. OpenCV is imported
here only, so a locker without a camera never loads it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from drivers.errors import LinkError
from drivers.scanner.base import OnScan, ReaderThread, RepeatFilter, Scan
from drivers.scanner.decode import Decoder

log = logging.getLogger(__name__)

#: In a still scene where the last decoded frame held no code, every this many frames is
#: decoded anyway (a frame that changes is decoded at once).
STILL_DECODE_EVERY = 5
#: A frame "changes" when a pixel of a sparse grid (every 4th row and column) moved by more
#: than this many grey levels since the last decoded frame: far above sensor noise, far
#: below the black-on-white step of any code coming into view.
STILL_LEVELS = 24


class FrameSource(Protocol):
    """Where frames come from: a V4L2 camera, or the simulator."""

    def read(self) -> Any | None:
        """The next 8-bit grey frame, or None when the device failed to give one."""

    def close(self) -> None:
        """Release the device."""


class OpenCvCamera:
    """A V4L2 camera (``/dev/video0``, or an index) through OpenCV, grey frames.

    A failed read releases the device and reopens it, at most once every
    ``reopen_s`` seconds, so an unplugged camera comes back by itself.
    """

    def __init__(self, device: str, width: int, height: int, fps: float, reopen_s: float = 2.0):
        import cv2  # only here: OpenCV costs memory and start-up time

        self._cv2 = cv2
        self.device, self.width, self.height, self.fps = device, width, height, fps
        self.reopen_s = reopen_s
        self._next_open = 0.0
        self._cap = self._open()
        if self._cap is None:
            raise LinkError(f"cannot open camera {device}")

    def _open(self) -> Any | None:
        cv2 = self._cv2
        self._next_open = time.monotonic() + self.reopen_s
        source: int | str = int(self.device) if self.device.isdigit() else self.device
        cap = cv2.VideoCapture(source, cv2.CAP_V4L2)
        if not cap.isOpened():
            cap.release()
            return None
        cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
        cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
        cap.set(cv2.CAP_PROP_FPS, self.fps)
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # the newest frame, not a queue of old ones
        return cap

    def read(self) -> Any | None:
        if self._cap is None:
            if time.monotonic() < self._next_open:
                return None
            self._cap = self._open()
            if self._cap is None:
                return None
        ok, frame = self._cap.read()
        if not ok:
            self._cap.release()
            self._cap = None
            return None
        return frame if frame.ndim == 2 else self._cv2.cvtColor(frame, self._cv2.COLOR_BGR2GRAY)

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


class CameraScanner(ReaderThread):
    """Reads frames from ``frames``, decodes them, and reports each new code to ``on_scan``."""

    def __init__(
        self,
        name: str,
        frames: FrameSource,
        decoder: Decoder,
        on_scan: OnScan,
        *,
        fps: float = 10.0,
        repeat_s: float = 3.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.name = name
        self.frames = frames
        self.decoder = decoder
        self.on_scan = on_scan
        self.period = 1.0 / fps
        self.clock = clock
        self.repeats = RepeatFilter(repeat_s)
        #: Frames read, frames the device failed to give, and seconds spent decoding.
        self.frames_read = 0
        self.failed_reads = 0
        self.decode_seconds = 0.0
        #: Whether the last read gave a frame.
        self.online = True
        #: The last frame decoded, whether it held a code, and frames let go since.
        self._last: Any = None
        self._last_found = False
        self._skipped = 0
        self._reader(f"camera-{name}")

    def start(self) -> CameraScanner:
        self._thread.start()
        return self

    def close(self) -> None:
        self.stop_reading()
        self.frames.close()

    def step(self) -> list[Scan]:
        """Read and decode one frame; the new codes in it."""
        frame = self.frames.read()
        now = self.clock()
        self.online = frame is not None
        if frame is None:
            self.failed_reads += 1
            return []
        self.frames_read += 1
        if self._still(frame):
            return []
        started = time.perf_counter()
        found = self.decoder.decode(frame)
        self.decode_seconds += time.perf_counter() - started
        self._last, self._last_found, self._skipped = frame, bool(found), 0
        return [
            Scan(text, self.name, fmt, now) for text, fmt in found if self.repeats.fresh(text, now)
        ]

    def _still(self, frame: Any) -> bool:
        """Whether ``frame`` may go undecoded: nothing was found in the last decoded frame,
        this one hardly differs from it, and fewer than :data:`STILL_DECODE_EVERY` frames
        were let go since (the decoder gives the same answer on the same picture)."""
        last = self._last
        if last is None or self._last_found or self._skipped >= STILL_DECODE_EVERY - 1:
            return False
        if getattr(frame, "shape", None) != last.shape:
            return False
        import numpy as np  # a camera's frames are numpy arrays: only a camera gets here

        grid = (slice(None, None, 4), slice(None, None, 4))
        still = bool(np.abs(frame[grid].astype(np.int16) - last[grid]).max() <= STILL_LEVELS)
        self._skipped += still
        return still

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                scans = self.step()
            except Exception:  # a decoder or driver fault must not end scanning
                log.exception("camera %s: reading a frame failed", self.name)
                scans = []
            for scan in scans:
                self.on_scan(scan)
            self._stop.wait(max(0.0, self.period - (time.monotonic() - started)))
