"""Scanner, kiosk-language and demo-signer keys: every mistake named with its key path."""

from __future__ import annotations

import pytest

from lockerd.cli import summary
from lockerd.config import parse
from tests.test_config import problems, text

CAMERA = """
[[scanner]]
name = "cam"
type = "camera"
simulator = true
"""
DEMO_PUBLIC = "oRBizOAgXkx+ixLV6MVVcaCzMxpSI58/mDaK4azkQhw="
DEMO_PRIVATE = "mtnd2yuS0d2Wpoz9W/SX1uyK5PnaRyDhtHrByhfeZJs="


def with_scanner(tmp_path, scanner: str) -> str:
    return text(tmp_path).replace("[demo]", scanner + "\n[demo]")


def test_a_simulated_camera_is_summarised(tmp_path) -> None:
    config = parse(with_scanner(tmp_path, CAMERA), tmp_path / "bank.toml")
    assert config.scanner[0].formats == ("qr", "code128")
    assert "scan   cam: camera on simulator, zxing reading qr, code128 at 10 fps" in summary(config)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "simulator = true",
            'simulator = true\ndevice = "/dev/video0"',
            "scanner[0]: give exactly one",
        ),
        ("simulator = true", "", "scanner[0]: give exactly one"),
        ('type = "camera"', 'type = "laser"', "scanner[0].type: 'laser' is not one of"),
        (
            "simulator = true",
            'simulator = true\nformats = ["qr", "morse"]',
            "scanner[0].formats[1]: 'morse' is not one of",
        ),
        (
            "simulator = true",
            "simulator = true\nformats = []",
            "scanner[0].formats: a camera needs at least one",
        ),
        (
            "simulator = true",
            'simulator = true\nformats = ["qr", "qr"]',
            "scanner[0].formats[1]: 'qr' is listed twice",
        ),
        (
            "simulator = true",
            'simulator = true\ndecoder = "zbar"\nformats = ["datamatrix"]',
            "scanner[0].formats[0]: the zbar decoder cannot read datamatrix",
        ),
        (
            "simulator = true",
            "simulator = true\nfps = 100",
            "scanner[0].fps: 100.0 is outside 1..30",
        ),
        (
            'type = "camera"\nsimulator = true',
            'type = "wedge"\nsimulator = true',
            "scanner[0]: a wedge scanner needs its device",
        ),
        (
            'type = "camera"',
            'type = "serial"\nimages = ["a.png"]',
            "scanner[0].images: only a simulated camera shows image files",
        ),
    ],
)
def test_each_scanner_problem_names_its_key(tmp_path, old, new, expected) -> None:
    found = problems(with_scanner(tmp_path, CAMERA.replace(old, new, 1)), tmp_path)
    assert any(expected in line for line in found), found


def test_two_scanners_with_one_name(tmp_path) -> None:
    found = problems(with_scanner(tmp_path, CAMERA + CAMERA), tmp_path)
    assert any("scanner[1].name: 'cam' is defined twice" in line for line in found), found


def test_the_kiosk_language_must_have_a_catalogue(tmp_path) -> None:
    source = text(tmp_path).replace("port = 0", 'port = 0\nlanguage = "tlh"', 1)
    found = problems(source, tmp_path)
    assert any(
        "kiosk.language: 'tlh' is not one of the page's languages: de, en" in f for f in found
    )


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        ((DEMO_PUBLIC,), None),
        ((), "demo.qr_signing_key: its public key oRBiz"),
    ],
)
def test_the_demo_signer_must_be_a_listed_key(tmp_path, keys, expected) -> None:
    listed = ", ".join(f'"{k}"' for k in keys)
    source = (
        text(tmp_path)
        .replace("hold_hours = 72", f"hold_hours = 72\nqr_keys = [{listed}]", 1)
        .replace("[demo]", f'[demo]\nqr_signing_key = "{DEMO_PRIVATE}"', 1)
    )
    if expected is None:
        assert parse(source, tmp_path / "bank.toml").demo.qr_signing_key == DEMO_PRIVATE
    else:
        assert any(expected in line for line in problems(source, tmp_path))


def test_a_demo_signer_that_is_not_a_key(tmp_path) -> None:
    source = text(tmp_path).replace("[demo]", '[demo]\nqr_signing_key = "bm90IGEga2V5"', 1)
    found = problems(source, tmp_path)
    assert any("demo.qr_signing_key: not a base64 Ed25519 private key" in f for f in found)
