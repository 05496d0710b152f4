"""Scanner twins: a camera that plays image files or codes held up to it, and a serial scanner.

The simulated camera gives the same 8-bit grey frames a real one does, so the
real decoder runs on them. It models a code held steadily in front of the
lens for a number of frames, nothing else: not focus, motion blur, exposure,
glare or frame timing (the scanner's loop paces itself).

The simulated serial scanner lives in ``serialsim.py`` (no numpy there, so a
bank with only a serial scanner never imports it) and is re-exported here.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from drivers.scanner.decode import ZXING_NAMES
from drivers.scanner.serialsim import SimSerialScanner

__all__ = ["SimCamera", "SimSerialScanner", "render_code"]


def render_code(text: str, fmt: str = "qr", scale: int = 4) -> Any:
    """``text`` as a ``fmt`` symbol (a name from FORMATS), black on white with quiet zones."""
    import zxingcpp

    symbol = zxingcpp.create_barcode(text, getattr(zxingcpp.BarcodeFormat, ZXING_NAMES[fmt]))
    image = np.asarray(zxingcpp.write_barcode_to_image(symbol, scale=scale))
    if fmt not in ("qr", "micro-qr", "datamatrix", "aztec"):
        image = np.repeat(image[:1], max(60, image.shape[1] // 4), axis=0)  # bars need height
    return image


class SimCamera:
    """Frames of an empty scene, with a picture in view for as many frames as asked."""

    def __init__(
        self, width: int = 640, height: int = 480, images: Sequence[Path] = (), hold: int = 10
    ):
        self.width, self.height = width, height
        self._blank = np.full((height, width), 170, np.uint8)
        self._blank.flags.writeable = False
        self._shown: deque[tuple[Any, int]] = deque()
        self._lock = threading.Lock()
        self.frames_served = 0
        for path in images:
            self.show(_load(path), hold)

    def show(self, picture: Any, frames: int) -> None:
        """Hold ``picture`` (grey, at most the frame's size) in the middle of the view."""
        picture = np.asarray(picture, dtype=np.uint8)
        if picture.ndim != 2 or picture.shape[0] > self.height or picture.shape[1] > self.width:
            raise ValueError(f"a picture must be grey and fit {self.width}x{self.height}")
        frame = self._blank.copy()
        top = (self.height - picture.shape[0]) // 2
        left = (self.width - picture.shape[1]) // 2
        frame[top : top + picture.shape[0], left : left + picture.shape[1]] = picture
        frame.flags.writeable = False
        with self._lock:
            self._shown.append((frame, frames))

    def show_code(self, text: str, fmt: str = "qr", frames: int = 30) -> None:
        """Hold a code up to the camera, as a resident holds a phone."""
        scale = 4
        while True:
            picture = render_code(text, fmt, scale)
            if scale == 1 or (picture.shape[0] <= self.height and picture.shape[1] <= self.width):
                break
            scale -= 1
        self.show(picture, frames)

    @property
    def idle(self) -> bool:
        """Nothing is in view any more."""
        with self._lock:
            return not self._shown

    def read(self) -> Any:
        self.frames_served += 1
        with self._lock:
            if not self._shown:
                return self._blank
            frame, left = self._shown[0]
            if left <= 1:
                self._shown.popleft()
            else:
                self._shown[0] = (frame, left - 1)
            return frame

    def close(self) -> None:
        pass


def _load(path: Path) -> Any:
    import cv2  # image files need OpenCV's readers; codes held up do not

    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise ValueError(f"{path}: not an image OpenCV can read")
    return image
