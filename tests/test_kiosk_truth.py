"""What the kiosk says is true of this locker: the QR code is offered to a locked-out
resident only where a camera reads one, never to a sender; a stuck parcel's message says
the service team was told only where a back office is configured (headless Chromium)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from tests.browser import Kiosk, demo_config
from tests.daemon import Daemon
from tests.test_kiosk_resident import _open, _said_twice_it_did_not_open, _stored, _type_code

LOCKED = re.compile(
    r"^Too many wrong codes have been typed here, so the keypad takes codes again at"
    r" \d\d:\d\d( [AP]M)?\. If you need help, call \+49 30 1234567 \(demo\)\.$"
)
QR = "The QR code from your pickup notice still works"


def _without_camera(tmp_path: Path, **values: Any) -> Path:
    path = demo_config(tmp_path, **values)
    text, count = re.subn(r'(?s)\[\[scanner\]\]\nname = "camera".*?\n\n', "", path.read_text())
    assert count == 1
    path.write_text(text)
    return path


async def _lock_out(kiosk: Kiosk, pad: str, go: str, ok: str) -> str:
    """Wrong codes typed until the keypad locks (lockout_after = 3); the last message."""
    for _ in range(3):
        await kiosk.page.click(go)
        await kiosk.type_on(pad, "00000000")
        await kiosk.page.click(ok)
        await kiosk.screen("message")
        text = await kiosk.text("#message-text")
        await kiosk.tap("OK")
        await kiosk.page.click("#pin-back, #send-back >> visible=true")
    return text


async def test_no_qr_code_is_offered_without_a_camera(tmp_path: Path, browser: Any) -> None:
    config = _without_camera(tmp_path, lockout_after=3)
    async with Daemon(config, "--state-dir", str(tmp_path)) as daemon:
        kiosk = await _open(browser, daemon, 800, 480)
        text = await _lock_out(kiosk, "pin-pad", "#go-collect", "#pin-ok")
        assert LOCKED.match(text), text
        assert QR not in text


async def test_a_resident_is_offered_the_qr_code_where_a_camera_reads_it(
    tmp_path: Path, browser: Any
) -> None:
    async with Daemon(demo_config(tmp_path, lockout_after=3), "--state-dir", str(tmp_path)) as d:
        kiosk = await _open(browser, d, 800, 480)
        text = await _lock_out(kiosk, "pin-pad", "#go-collect", "#pin-ok")
        assert f"{QR}: show it to the camera." in text


async def test_a_sender_locked_out_is_not_told_of_pickup_notices(
    tmp_path: Path, browser: Any
) -> None:
    async with Daemon(demo_config(tmp_path, lockout_after=3), "--state-dir", str(tmp_path)) as d:
        kiosk = await _open(browser, d, 800, 480)
        text = await _lock_out(kiosk, "send-pad", "#go-send", "#send-ok")
        assert LOCKED.match(text), text


async def test_the_service_team_is_said_to_be_told_only_with_a_back_office(
    tmp_path: Path, browser: Any
) -> None:
    """The page's choice, with /api/status saying a back office is configured (the
    daemon's own status says so only with ``sync.url``: tests/test_kiosk.py); without
    one, tests/test_kiosk_resident.py asks the resident to report it."""
    stored = await _stored(tmp_path, "JJD0001")
    config = demo_config(tmp_path, door_springs="false", pickup_door_open_s=30)
    async with Daemon(config, "--state-dir", str(tmp_path)) as daemon:
        page = await browser.new_page(viewport={"width": 800, "height": 480})

        async def with_back_office(route: Any) -> None:
            response = await route.fetch()
            status = await response.json()
            assert status["back_office"] is False
            await route.fulfill(response=response, body=json.dumps(status | {"back_office": True}))

        await page.route("**/api/status", with_back_office)
        kiosk = await Kiosk(page, daemon).open()
        comp, code = stored["JJD0001"]
        await _type_code(kiosk, code)
        assert await kiosk.opened_door() == comp
        await _said_twice_it_did_not_open(kiosk)
        await kiosk.shows(
            "#message-text",
            f"Compartment {comp} did not open. Your parcel stays locked inside, safe, and it"
            " stays yours: the service team has been told, and once the compartment is"
            " repaired your code opens it. If you need help, call +49 30 1234567 (demo).",
        )
