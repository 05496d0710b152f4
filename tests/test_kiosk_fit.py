"""Every kiosk screen fits the displays lockers have, as a real locker shows it (no demo
panel), without scrolling: 800x480 (the 7-inch Pi display), 1024x600, 1280x800 and a
portrait 1080x1920. Each screen is checked by ``Kiosk.fits`` and kept as a screenshot."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from tests.browser import PRODUCTION, Kiosk, demo_config
from tests.daemon import Daemon

SIZES = [(800, 480), (1024, 600), (1280, 800), (1080, 1920)]


async def _expired_parcel(tmp_path: Path, config: Path) -> None:
    """JJD0001 stored, and its pickup deadline passed while the locker was off."""
    async with Daemon(config, "--state-dir", str(tmp_path)) as daemon:
        await daemon.drop_off("JJD0001")
    with sqlite3.connect(tmp_path / "lockerd.db") as db:
        db.execute("UPDATE parcels SET pickup_by = 1 WHERE barcode = 'JJD0001'")


async def _walk(kiosk: Kiosk, shot: str, barcode: str, size: str) -> None:
    """Every screen in turn, each checked as it is shown (taps by id: any language)."""
    page = kiosk.page
    await kiosk.screen("home")
    await kiosk.fits(f"{shot}-home")
    await page.click("#go-collect")
    await kiosk.screen("pin")
    await kiosk.type_on("pin-pad", "123")
    await kiosk.fits(f"{shot}-pin")
    await page.click("#pin-ok")  # too short: a message, nothing counted
    await kiosk.screen("message")
    await kiosk.fits(f"{shot}-message")
    await page.click("#message-ok")
    await page.click("#pin-back")
    await page.click("#go-courier")
    await kiosk.screen("login")
    await kiosk.type_on("login-pad", "1234")
    await kiosk.fits(f"{shot}-login")
    await page.click("#login-ok")
    await kiosk.screen("courier")
    await kiosk.fits(f"{shot}-courier")
    await _drop_off(kiosk, shot, barcode, size)
    await page.click("#go-collections")
    await kiosk.screen("collections")
    await page.wait_for_selector("#collections button")
    await kiosk.fits(f"{shot}-collections")
    await page.click("#collections-back")
    await page.click("#courier-finish")
    await kiosk.screen("home")


async def _drop_off(kiosk: Kiosk, shot: str, barcode: str, size: str) -> None:
    """An unknown parcel: the size chooser, the door, then the courier's list."""
    await kiosk.type_on("barcode-pad", barcode)
    await kiosk.page.click("#barcode-ok")
    await kiosk.screen("size")
    await kiosk.fits(f"{shot}-size")
    await kiosk.page.click(f"#sizes button[data-size={size}]")
    compartment = await kiosk.opened_door()
    await kiosk.page.wait_for_selector("#door-doesnt-fit:not([hidden])")
    await kiosk.fits(f"{shot}-door")
    await kiosk.daemon.call("POST", f"/api/demo/doors/{compartment}/close")
    await kiosk.screen("courier")
    await kiosk.page.wait_for_selector("#delivered li")
    await kiosk.fits(f"{shot}-courier-stored")


async def test_every_screen_fits_every_display(tmp_path, browser) -> None:
    config = demo_config(tmp_path, expiry_sweep_s=1)
    await _expired_parcel(tmp_path, config)
    async with Daemon(config, "--state-dir", str(tmp_path)) as daemon:
        events = await daemon.events(after=0)
        await events.event("parcel.expired")
        await events.close()
        page = await browser.new_page(viewport={"width": 800, "height": 480})
        kiosk = await Kiosk(page, daemon).open()
        await page.add_style_tag(content=PRODUCTION)
        walks: list[tuple[Any, ...]] = [(w, h, "en") for w, h in SIZES] + [(800, 480, "de")]
        for turn, (width, height, language) in enumerate(walks):
            await page.set_viewport_size({"width": width, "height": height})
            if language != "en":
                await page.click(f"#languages button[data-lang={language}]")
            shot = f"fit-{width}x{height}" + ("" if language == "en" else f"-{language}")
            await _walk(kiosk, shot, f"FIT{turn}{width}", "SSSLL"[turn])


async def test_a_screen_change_leaves_the_page_unscrolled(tmp_path, browser) -> None:
    """Beside the demo panel the page is longer than the display; scrolled down to the
    panel, a screen change brings the kiosk back to the top."""
    async with Daemon(demo_config(tmp_path), "--state-dir", str(tmp_path)) as daemon:
        page = await browser.new_page(viewport={"width": 800, "height": 480})
        kiosk = await Kiosk(page, daemon).open()
        await page.evaluate("window.scrollTo(0, document.scrollingElement.scrollHeight)")
        assert await page.evaluate("window.scrollY") > 0
        await page.evaluate("document.getElementById('go-courier').click()")
        await kiosk.screen("login")
        assert await page.evaluate("[window.scrollX, window.scrollY]") == [0, 0]
