"""Decoders for camera frames: zxing-cpp (the default) and zbar through pyzbar.

Both take an 8-bit grey image (a numpy array, rows x columns) and look only
for the formats they were given: every extra symbology costs time on every
frame and invites misreads. Both release the GIL, so a camera thread decodes
without holding up the event loop.

zbar reads no DataMatrix, Aztec or Micro QR, and its PDF417 reader is not
dependable; :data:`ZBAR_FORMATS` leaves them out so such a config is refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from drivers.errors import DriverError

ZXING_NAMES = {
    "qr": "QRCode",
    "micro-qr": "MicroQRCode",
    "datamatrix": "DataMatrix",
    "aztec": "Aztec",
    "pdf417": "PDF417",
    "code128": "Code128",
    "code39": "Code39",
    "code93": "Code93",
    "codabar": "Codabar",
    "itf": "ITF",
    "ean13": "EAN13",
    "ean8": "EAN8",
    "upca": "UPCA",
    "upce": "UPCE",
    "databar": "DataBar",
}

ZBAR_NAMES = {
    "qr": "QRCODE",
    "code128": "CODE128",
    "code39": "CODE39",
    "code93": "CODE93",
    "codabar": "CODABAR",
    "itf": "I25",
    "ean13": "EAN13",
    "ean8": "EAN8",
    "upca": "UPCA",
    "upce": "UPCE",
    "databar": "DATABAR",
}

DECODER_FORMATS = {"zxing": tuple(ZXING_NAMES), "zbar": tuple(ZBAR_NAMES)}


class Decoder(Protocol):
    """Finds codes of the configured formats in one grey frame."""

    name: str

    def decode(self, frame: Any) -> list[tuple[str, str]]:
        """``(text, format)`` for every code found; format is a name from ``FORMATS``."""


class DecoderUnavailable(DriverError, ImportError):
    """The decoder's library (or, for zbar, its shared library) is not installed."""


class ZxingDecoder:
    """zxing-cpp: the best reader of damaged and tilted QR codes; self-contained wheels."""

    name = "zxing"

    def __init__(self, formats: Sequence[str]):
        try:
            import zxingcpp
        except ImportError as exc:
            raise DecoderUnavailable(f"zxing-cpp is not installed: {exc}") from exc
        self._zxing = zxingcpp
        self._formats = zxingcpp.barcode_formats_from_str(",".join(ZXING_NAMES[f] for f in formats))
        self._names = {getattr(zxingcpp.BarcodeFormat, ZXING_NAMES[f]): f for f in formats}

    def decode(self, frame: Any) -> list[tuple[str, str]]:
        found = self._zxing.read_barcodes(
            frame, formats=self._formats, try_invert=False, try_downscale=False
        )
        return [(r.text, self._names.get(r.format, str(r.format))) for r in found if r.valid]


class ZbarDecoder:
    """zbar through pyzbar: needs the system's libzbar0; better on tiny, faint 1-D bars."""

    name = "zbar"

    def __init__(self, formats: Sequence[str]):
        try:
            from pyzbar import pyzbar
        except ImportError as exc:  # pyzbar raises ImportError when libzbar is missing
            raise DecoderUnavailable(
                f"pyzbar cannot load zbar ({exc}); install libzbar0 (apt) and pyzbar"
            ) from exc
        self._pyzbar = pyzbar
        self._symbols = [getattr(pyzbar.ZBarSymbol, ZBAR_NAMES[f]) for f in formats]
        self._names = {ZBAR_NAMES[f]: f for f in formats}

    def decode(self, frame: Any) -> list[tuple[str, str]]:
        found = self._pyzbar.decode(frame, symbols=self._symbols)
        return [(r.data.decode("latin-1"), self._names.get(r.type, r.type.lower())) for r in found]


def make_decoder(name: str, formats: Sequence[str]) -> Decoder:
    """The decoder called ``name`` for ``formats``; no fallback to another decoder."""
    unknown = sorted(set(formats) - set(DECODER_FORMATS.get(name, ())))
    if name not in DECODER_FORMATS or unknown:
        raise ValueError(f"decoder {name!r} cannot read {', '.join(unknown) or 'anything'}")
    return ZxingDecoder(formats) if name == "zxing" else ZbarDecoder(formats)
