"""Both decoders on generated camera frames: clean, rotated, blurred, low contrast, dark."""

from __future__ import annotations

import ctypes.util

import cv2
import numpy as np
import pytest

from drivers.scanner.decode import DecoderUnavailable, make_decoder
from drivers.scanner.sim import render_code

TOKEN = "LKR1.eyJhdWQiOiJkZW1vIiwicGFyY2VsIjoiSkpEMDAwMSJ9.c2lnbmF0dXJlLWJ5dGVzLWhlcmU"
LABEL = "JJD0001234567"
HAVE_ZBAR = ctypes.util.find_library("zbar") is not None
DECODERS = [
    "zxing",
    pytest.param(
        "zbar",
        marks=pytest.mark.skipif(
            not HAVE_ZBAR, reason="no libzbar0 here: apt install libzbar0 (.ci/run does)"
        ),
    ),
]


def frame(symbol: np.ndarray) -> np.ndarray:
    """A 640x480 grey scene with ``symbol`` in the middle, as a camera would see it."""
    scene = np.full((480, 640), 150, np.uint8)
    top, left = (480 - symbol.shape[0]) // 2, (640 - symbol.shape[1]) // 2
    scene[top : top + symbol.shape[0], left : left + symbol.shape[1]] = symbol
    return scene


def rotated(image: np.ndarray, degrees: float) -> np.ndarray:
    centre = (image.shape[1] / 2, image.shape[0] / 2)
    matrix = cv2.getRotationMatrix2D(centre, degrees, 1.0)
    return cv2.warpAffine(image, matrix, image.shape[::-1], borderValue=150)


TRANSFORMS = {
    "clean": lambda f: f,
    "rotated": lambda f: rotated(f, 10),
    "blurred": lambda f: cv2.GaussianBlur(f, (5, 5), 1.2),
    "low-contrast": lambda f: (100 + f.astype(np.float32) * (50 / 255)).astype(np.uint8),
    "noisy": lambda f: np.clip(
        f.astype(np.int16) + np.random.default_rng(7).integers(-25, 26, f.shape), 0, 255
    ).astype(np.uint8),
}


@pytest.mark.parametrize("decoder", DECODERS)
@pytest.mark.parametrize("transform", TRANSFORMS)
@pytest.mark.parametrize(("fmt", "text", "scale"), [("qr", TOKEN, 4), ("code128", LABEL, 2)])
def test_each_decoder_reads_a_degraded_frame(decoder, transform, fmt, text, scale) -> None:
    image = TRANSFORMS[transform](frame(render_code(text, fmt, scale)))
    assert make_decoder(decoder, ["qr", "code128"]).decode(image) == [(text, fmt)]


@pytest.mark.parametrize("decoder", DECODERS)
def test_a_qr_code_turned_well_past_level_is_read(decoder) -> None:
    image = rotated(frame(render_code(TOKEN, "qr", 4)), 35)
    assert make_decoder(decoder, ["qr"]).decode(image) == [(TOKEN, "qr")]


@pytest.mark.parametrize("decoder", DECODERS)
def test_formats_not_asked_for_are_not_read(decoder) -> None:
    image = frame(render_code(LABEL, "code128", 2))
    assert make_decoder(decoder, ["qr"]).decode(image) == []


@pytest.mark.parametrize("decoder", DECODERS)
def test_an_empty_scene_reads_nothing(decoder) -> None:
    assert make_decoder(decoder, ["qr", "code128"]).decode(frame(np.zeros((0, 0)))) == []


def test_zbar_cannot_be_asked_for_datamatrix() -> None:
    with pytest.raises(ValueError, match="cannot read datamatrix"):
        make_decoder("zbar", ["qr", "datamatrix"])


def test_an_unknown_decoder_is_refused() -> None:
    with pytest.raises(ValueError, match="decoder 'opencv'"):
        make_decoder("opencv", ["qr"])


def test_zbar_without_its_library_says_what_to_install(monkeypatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "pyzbar", None)  # as if the import failed
    with pytest.raises(DecoderUnavailable, match="libzbar0"):
        make_decoder("zbar", ["qr"])


@pytest.mark.parametrize("decoder", DECODERS)
def test_a_code_held_close_to_the_lens_is_read(decoder) -> None:
    symbol = render_code(TOKEN, "qr", 11)
    assert symbol.shape[0] > 440
    image = cv2.GaussianBlur(frame(symbol), (7, 7), 2.0)
    assert make_decoder(decoder, ["qr"]).decode(image) == [(TOKEN, "qr")]
