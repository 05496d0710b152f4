"""Every kiosk screen fits the displays lockers have, as a real locker shows it (no demo
panel), without scrolling: 800x480 (the 7-inch Pi display), 1024x600, 1280x800 and a
portrait 1080x1920. Each screen, in each language, is checked by ``Kiosk.fits`` at every
display and kept as a screenshot (``test-artifacts/kiosk/fit-<lang>-<screen>-<size>.png``)."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.browser import PRODUCTION, Kiosk, demo_config
from tests.daemon import Daemon

SIZES = [(800, 480), (1024, 600), (1280, 800), (1080, 1920)]


#: Per language, an announced parcel whose door will not open for its resident.
STUCK = {"en": "1Z999AA10123456784", "de": "JJD0301"}


def _config(tmp_path: Path, **values: Any) -> Path:
    """The demo's config (``values`` changed), JJD0301 announced besides its parcels."""
    path = demo_config(tmp_path, **values)
    announced = '  { barcode = "JJD0001", size = "M", recipient = "flat-12" },\n'
    text = path.read_text()
    assert announced in text
    more = '  { barcode = "JJD0301", size = "S", recipient = "flat-30" },\n'
    path.write_text(text.replace(announced, announced + more))
    return path


async def _expired_parcel(tmp_path: Path) -> None:
    """JJD0001 stored, and its pickup deadline passed while the locker was off; the
    parcels whose doors will not open stored."""
    async with Daemon(_config(tmp_path), "--state-dir", str(tmp_path)) as daemon:
        for barcode in ("JJD0001", *STUCK.values()):
            await daemon.drop_off(barcode)
    with sqlite3.connect(tmp_path / "lockerd.db") as db:
        db.execute("UPDATE parcels SET pickup_by = 1 WHERE barcode = 'JJD0001'")


async def _walk(kiosk: Kiosk, shot: str, barcode: str, size: str, language: str) -> None:
    """Every screen in turn, each checked as it is shown (taps by id: any language)."""
    page = kiosk.page
    await _language(kiosk, language)
    await kiosk.fits(f"{shot}-home")
    await page.click("#go-send")
    await kiosk.screen("send")
    await kiosk.type_on("send-pad", "1234")
    await kiosk.fits(f"{shot}-send")
    await _send(kiosk, shot)
    await _language(kiosk, language)  # the visit ended: the default language again
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
    compartment = await _drop_off(kiosk, shot, barcode, size)
    await page.click("#go-collections")
    await kiosk.screen("collections")
    await page.wait_for_selector("#collections button")
    await kiosk.fits(f"{shot}-collections")
    await page.click("#collections-back")
    await page.click("#courier-finish")
    await _language(kiosk, language)  # the visit ended: the default language again
    await _pick_up(kiosk, shot, barcode, compartment)
    await _language(kiosk, language)
    await _stuck(kiosk, shot, STUCK[language])


async def _send(kiosk: Kiosk, shot: str) -> None:
    """On the send screen, the send code scanned (the handheld: one scan, where a camera
    keeps seeing it): the door, which does not open until the sender, hand on the
    handle, says so; the door open; the parcel in, the door shut: the message that it
    waits for its courier."""
    page, daemon = kiosk.page, kiosk.daemon
    _, issued = await daemon.call("POST", "/api/demo/send-codes", {"size": "S"})
    _, bank = await daemon.call("GET", "/api/demo/bank")
    pulses = {c["id"]: c["sim"]["pulses"] for c in bank["compartments"]}
    await daemon.call("POST", "/api/demo/scanners/handheld", {"text": issued["code"]})
    compartment = await kiosk.opened_door()
    await page.wait_for_selector("#door-not-open:not([hidden])")
    await kiosk.fits(f"{shot}-send-door-opening")

    def caught(cells: list[dict[str, Any]]) -> bool:  # the pulse is over, nobody pulled
        sim = next(c["sim"] for c in cells if c["id"] == compartment)
        return bool(sim["pulses"] == pulses[compartment] + 1 and sim["latched"] and not sim["open"])

    await daemon.sim_bank(caught)
    await daemon.call("POST", f"/api/demo/doors/{compartment}/open")
    await page.click("#door-not-open")
    await page.wait_for_selector("#door-doesnt-fit:not([hidden])")
    await kiosk.fits(f"{shot}-send-door-open")
    await daemon.call("POST", f"/api/demo/doors/{compartment}/put")
    await daemon.call("POST", f"/api/demo/doors/{compartment}/close")
    await kiosk.screen("message")
    await kiosk.shows("#message-text", re.compile(compartment))
    await kiosk.fits(f"{shot}-send-stored")
    await page.click("#message-ok")
    await kiosk.screen("home")


async def _language(kiosk: Kiosk, language: str) -> None:
    await kiosk.screen("home")
    await kiosk.page.click(f"#languages button[data-lang={language}]")
    await kiosk.page.wait_for_selector(f"html[lang={language}]")


async def _drop_off(kiosk: Kiosk, shot: str, barcode: str, size: str) -> str:
    """An unknown parcel: the size chooser; the door, which does not open until the
    courier, hand on the handle, says so; then the courier's list. Its compartment."""
    page, daemon = kiosk.page, kiosk.daemon
    await kiosk.type_on("barcode-pad", barcode)
    await page.click("#barcode-ok")
    await kiosk.screen("size")
    await kiosk.fits(f"{shot}-size")
    _, bank = await daemon.call("GET", "/api/demo/bank")
    pulses = {c["id"]: c["sim"]["pulses"] for c in bank["compartments"]}
    await page.click(f"#sizes button[data-size={size}]")
    compartment = await kiosk.opened_door()
    await page.wait_for_selector("#door-not-open:not([hidden])")
    await kiosk.fits(f"{shot}-door-opening")

    def caught(cells: list[dict[str, Any]]) -> bool:  # the pulse is over, nobody pulled
        sim = next(c["sim"] for c in cells if c["id"] == compartment)
        return bool(sim["pulses"] == pulses[compartment] + 1 and sim["latched"] and not sim["open"])

    await daemon.sim_bank(caught)
    await daemon.call("POST", f"/api/demo/doors/{compartment}/open")
    await page.click("#door-not-open")
    await page.wait_for_selector("#door-doesnt-fit:not([hidden])")
    await kiosk.fits(f"{shot}-door-open")
    await page.wait_for_selector("#door-alarm:not([hidden])")  # door_left_open_s has passed
    await kiosk.fits(f"{shot}-door-left-open")
    await daemon.call("POST", f"/api/demo/doors/{compartment}/close")
    await kiosk.screen("courier")
    await page.wait_for_selector("#delivered li")
    await kiosk.fits(f"{shot}-courier-stored")
    return compartment


async def _code(daemon: Daemon, barcode: str) -> str:
    """The pickup code of ``barcode``, from the recipient's message."""
    _, answer = await daemon.call("GET", "/api/demo/messages")
    return str(next(m["code"] for m in answer["messages"] if m["barcode"] == barcode))


async def _pick_up(kiosk: Kiosk, shot: str, barcode: str, compartment: str) -> None:
    """The resident types the code: the door, which does not open until the resident,
    hand on the handle, says so (with the wait's progress bar); then the thanks, with
    "Open the door again": the door opens once more, and shut, the thanks again."""
    page, daemon = kiosk.page, kiosk.daemon
    code = await _code(daemon, barcode)
    _, bank = await daemon.call("GET", "/api/demo/bank")
    pulses = next(c["sim"]["pulses"] for c in bank["compartments"] if c["id"] == compartment)
    await page.click("#go-collect")
    await kiosk.type_on("pin-pad", code)
    await page.click("#pin-ok")
    assert await kiosk.opened_door() == compartment
    await page.wait_for_selector("#door-progress:not([hidden])")
    await kiosk.fits(f"{shot}-pickup-door-opening")

    def caught(cells: list[dict[str, Any]]) -> bool:  # the pulse is over, nobody pulled
        sim = next(c["sim"] for c in cells if c["id"] == compartment)
        return bool(sim["pulses"] == pulses + 1 and sim["latched"] and not sim["open"])

    await daemon.sim_bank(caught)
    await daemon.call("POST", f"/api/demo/doors/{compartment}/open")
    await page.click("#door-not-open")
    await kiosk.shows("#door-title", re.compile(f"{compartment} (is open|ist offen)$"))
    await kiosk.fits(f"{shot}-pickup-door")
    await daemon.call("POST", f"/api/demo/doors/{compartment}/close")
    await kiosk.screen("message")
    await page.wait_for_selector("#message-reopen:not([hidden])")
    await kiosk.fits(f"{shot}-thanks")
    await daemon.call("POST", f"/api/demo/doors/{compartment}/open")  # a hand on the handle
    await page.click("#message-reopen")
    assert await kiosk.opened_door() == compartment
    await kiosk.shows("#door-title", re.compile(f"{compartment} (is open|ist offen)$"))
    await kiosk.fits(f"{shot}-pickup-reopened")
    await daemon.call("POST", f"/api/demo/doors/{compartment}/close")
    await kiosk.screen("message")
    await page.click("#message-ok")
    await kiosk.screen("home")


async def _stuck(kiosk: Kiosk, shot: str, barcode: str) -> None:
    """Nobody can open the door: "The door did not open" re-pulses it ("trying again");
    said again, the parcel stays behind the door and the resident is told so."""
    page = kiosk.page
    code = await _code(kiosk.daemon, barcode)
    await page.click("#go-collect")
    await kiosk.type_on("pin-pad", code)
    await page.click("#pin-ok")
    compartment = await kiosk.opened_door()
    await page.click("#door-not-open")
    await kiosk.shows("#door-text", re.compile("Trying again|Neuer Versuch"))
    await kiosk.fits(f"{shot}-pickup-door-retrying")
    await page.click("#door-not-open")
    await kiosk.screen("message")
    await kiosk.shows("#message-text", re.compile(f"^(Compartment|Fach) {compartment} "))
    await kiosk.fits(f"{shot}-pickup-stuck")
    await page.click("#message-ok")
    await kiosk.screen("home")


@pytest.mark.parametrize(("language", "size"), [("en", "S"), ("de", "L")])
async def test_every_screen_fits_every_display(tmp_path, browser, language, size) -> None:
    """One walk per language (each its own test, so that the two run side by side)."""
    # Doors without push-out springs: each opens only when somebody pulls it.
    await _expired_parcel(tmp_path)
    config = _config(
        tmp_path, expiry_sweep_s=1, door_springs="false", door_left_open_s=5, pickup_door_open_s=30
    )
    async with Daemon(config, "--state-dir", str(tmp_path)) as daemon:
        events = await daemon.events(after=0)
        await events.event("parcel.expired")
        await events.close()
        page = await browser.new_page(viewport={"width": 800, "height": 480})
        kiosk = await Kiosk(page, daemon).open()
        await page.add_style_tag(content=PRODUCTION)
        kiosk.sizes = SIZES
        await _walk(kiosk, f"fit-{language}", f"FIT{language.upper()}", size, language)


async def _fill_low(daemon: Daemon) -> None:
    """Every low compartment (A3, A4, B3, B4) holds a parcel."""
    events = await daemon.events(after=0)
    _, login = await daemon.call("POST", "/api/courier/login", {"code": "1234"})
    for turn, size in enumerate("MLML"):
        body = {"barcode": f"LOW{turn:04}", "size": size, "prefer_low": True}
        _, flow = await daemon.call("POST", "/api/dropoffs", body, login["token"])
        await events.flow(flow["id"], "open")
        await daemon.call("POST", f"/api/demo/doors/{flow['compartment']}/close")
        await events.flow(flow["id"], "stored")
    await events.close()


async def test_the_courier_s_questions_fit_every_display(tmp_path, browser) -> None:
    """No low compartment free: the question; a drop-off cancelled at an open door: shut
    it. Each in each language at every size."""
    async with Daemon(demo_config(tmp_path), "--state-dir", str(tmp_path)) as daemon:
        await _fill_low(daemon)
        page = await browser.new_page(viewport={"width": 800, "height": 480})
        kiosk = await Kiosk(page, daemon).open()
        await page.add_style_tag(content=PRODUCTION)
        kiosk.sizes = SIZES
        await kiosk.log_in()
        await page.click("#low")
        await kiosk.type_on("barcode-pad", "JJD0001")
        await page.click("#barcode-ok")
        await kiosk.screen("no-low")
        await _every_display(kiosk, "no-low")
        # Taken after all, the door springs ajar, and the courier cancels: shut it.
        await page.click("#no-low-use")
        door = await kiosk.opened_door()
        await page.wait_for_selector("#door-doesnt-fit:not([hidden])")
        await page.click("#door-cancel")
        await page.wait_for_selector("#door-cancel[hidden]", state="attached")
        await kiosk.shows("#door-title", re.compile(f"(Close the door of|Tür von Fach) {door}"))
        await _every_display(kiosk, "door-closing")


async def _every_display(kiosk: Kiosk, screen: str) -> None:
    """The screen shown, checked in each language at every size."""
    for language in ("en", "de"):
        await kiosk.page.click(f"#languages button[data-lang={language}]")
        await kiosk.page.wait_for_selector(f"html[lang={language}]")
        await kiosk.fits(f"fit-{language}-{screen}")


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
