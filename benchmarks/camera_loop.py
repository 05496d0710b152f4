"""The camera loop's cost and the decoders' speed and quality at 640x480.

Prints, for zxing-cpp and zbar (when libzbar0 is installed):

- decode time per frame, median and p99, on an empty scene and on a scene
  with a pickup QR code, against the 2.5 ms-a-frame budget (PERFORMANCE.md);
- the CPU the real camera loop (``CameraScanner`` on the simulated camera,
  10 fps, nothing in view) takes, as a share of one core;
- the share of degraded QR frames decoded (rotation, perspective, blur,
  noise, low contrast, small), against the 95% budget.

    python benchmarks/camera_loop.py [--seconds 10]
"""

from __future__ import annotations

import argparse
import ctypes.util
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from drivers.scanner.camera import CameraScanner  # noqa: E402
from drivers.scanner.decode import make_decoder  # noqa: E402
from drivers.scanner.sim import SimCamera, render_code  # noqa: E402

TOKEN = (
    "LKR1.eyJhdWQiOiJzaXRlLTAwMDEiLCJwYXJjZWwiOiJKSkQwMDAxIiwiZXhwIjoxODAwMDAwMDAwLCJqdGkiOiI5ZjFj"
    "MmEifQ.0Zb3h4mS1kq0y2e6p8t9F2l7x4c1v5b8n3m6k9j2h5g8f1d4s7a0q3w6e9r2t5y8u1i4o7p0a3s6d9f2g5h8"
)
FORMATS = ["qr", "code128"]
BUDGET_MS = 2.5


def scene(symbol: np.ndarray, top: int | None = None, left: int | None = None) -> np.ndarray:
    frame = np.full((480, 640), 150, np.uint8)
    h, w = symbol.shape
    top = (480 - h) // 2 if top is None else top
    left = (640 - w) // 2 if left is None else left
    frame[top : top + h, left : left + w] = symbol
    return frame


def placed(symbol: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, tuple[float, float]]:
    """``symbol`` anywhere in view, far enough from the edges to stay in view when turned."""
    margin = int(symbol.shape[0] * 0.21)  # half the diagonal beyond half the side
    top = int(rng.integers(margin, 480 - symbol.shape[0] - margin + 1))
    left = int(rng.integers(margin, 640 - symbol.shape[1] - margin + 1))
    return scene(symbol, top, left), (left + symbol.shape[1] / 2, top + symbol.shape[0] / 2)


def degraded(kind: str, rng: np.random.Generator) -> np.ndarray:
    """One pickup-QR frame with one thing a phone held up to a kiosk camera suffers."""
    frame, centre = placed(render_code(TOKEN, "qr", 2 if kind == "small" else 3), rng)
    if kind == "rotated":
        matrix = cv2.getRotationMatrix2D(centre, float(rng.uniform(-45, 45)), 1.0)
        frame = cv2.warpAffine(frame, matrix, (640, 480), borderValue=150)
    elif kind == "perspective":
        src = np.float32([[0, 0], [640, 0], [640, 480], [0, 480]])
        jitter = rng.uniform(-60, 60, (4, 2)).astype(np.float32)
        warp = cv2.getPerspectiveTransform(src, src + jitter)
        frame = cv2.warpPerspective(frame, warp, (640, 480), borderValue=150)
    elif kind == "blurred":
        frame = cv2.GaussianBlur(frame, (5, 5), float(rng.uniform(0.8, 1.4)))
    elif kind == "noisy":
        noise = rng.normal(0, float(rng.uniform(8, 20)), frame.shape)
        frame = np.clip(frame + noise, 0, 255).astype(np.uint8)
    elif kind == "low-contrast":
        low, span = float(rng.uniform(60, 120)), float(rng.uniform(30, 60))
        frame = (low + frame.astype(np.float32) * (span / 255)).astype(np.uint8)
    return frame


KINDS = ("clean", "rotated", "perspective", "blurred", "noisy", "low-contrast", "small")


def timings(decoder, frame: np.ndarray, rounds: int) -> tuple[float, float]:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        decoder.decode(frame)
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.99) - 1]


def loop_cpu(decoder_name: str, seconds: float) -> tuple[float, int]:
    camera = SimCamera()
    scanner = CameraScanner(
        "bench", camera, make_decoder(decoder_name, FORMATS), lambda scan: None, fps=10
    )
    cpu, wall = time.process_time(), time.monotonic()
    scanner.start()
    time.sleep(seconds)
    scanner.close()
    used = (time.process_time() - cpu) / (time.monotonic() - wall)
    return used, scanner.frames_read


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10, help="camera-loop run time")
    parser.add_argument("--quality-frames", type=int, default=210, help="degraded QR frames")
    args = parser.parse_args()
    names = ["zxing"] + (["zbar"] if ctypes.util.find_library("zbar") else [])
    empty = scene(np.zeros((0, 0), np.uint8))
    with_qr = scene(render_code(TOKEN, "qr", 3))
    rng = np.random.default_rng(2026)
    per_kind = max(1, args.quality_frames // len(KINDS))
    hard = {kind: [degraded(kind, rng) for _ in range(per_kind)] for kind in KINDS}
    print(f"640x480 grey frames, formats {', '.join(FORMATS)}; budget {BUDGET_MS} ms a frame here")
    for name in names:
        decoder = make_decoder(name, FORMATS)
        for label, frame in (("empty scene", empty), ("pickup QR", with_qr)):
            median, p99 = timings(decoder, frame, 200)
            print(
                f"  {name:5}  {label:11}  median {median:6.2f} ms  p99 {p99:6.2f} ms"
                f"  ({median / BUDGET_MS:.2f}x budget)"
            )
        qr_only = make_decoder(name, ["qr"])
        read = {k: sum((TOKEN, "qr") in qr_only.decode(f) for f in hard[k]) for k in KINDS}
        total = sum(read.values())
        detail = ", ".join(f"{k} {read[k]}/{per_kind}" for k in KINDS)
        print(
            f"  {name:5}  QR frames decoded: {total}/{per_kind * len(KINDS)}"
            f" = {100 * total / (per_kind * len(KINDS)):.1f}% (budget >= 95%): {detail}"
        )
        share, frames = loop_cpu(name, args.seconds)
        print(
            f"  {name:5}  camera loop at 10 fps, nothing in view: {100 * share:.2f}% of one core"
            f" ({frames} frames; x6 for a Pi 4: {600 * share:.1f}%, budget 15%)"
        )


if __name__ == "__main__":
    main()
