"""Every kiosk screen fits the displays lockers have without scrolling: 800x480 (the
7-inch Pi display), 1024x600, 1280x800 and a portrait 1080x1920, as a locker shows it and
as the demo does (its panel beside or below the kiosk), in plain and larger text and high
contrast. Each screen, in each language, is checked by ``Kiosk.fits`` in every mode at
every display and kept as a screenshot
(``test-artifacts/kiosk/fit-<lang>-<mode>-<screen>-<size>.png``)."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.browser import DEFAULT_MODES, MODES, PRODUCTION, Kiosk, demo_config
from tests.daemon import ROOT, Daemon

SIZES = [(800, 480), (1024, 600), (1280, 800), (1080, 1920)]
LANGUAGES = ["en", "de"]

#: The screens each test checks, in order, each at every size in every mode in each
#: language; docs/code-overview.md lists them all (a test below holds it to that).
WALKS = {
    "walk": [
        "home", "send", "send-error", "send-door-opening", "send-door-open", "send-stored",
        "pin", "message", "login", "courier", "size", "door-opening", "door-open",
        "door-left-open", "courier-stored", "collections",
    ],
    "pickup": [
        "pickup-door-opening", "pickup-door", "thanks", "pickup-reopened",
        "pickup-door-retrying", "pickup-stuck",
    ],
    "questions": ["no-low", "door-closing"],
    "courier": ["door-retrying", "size-did-not-open", "size-larger", "no-larger-size"],
    "resident": ["toast", "expired", "pickup-between", "pickup-group", "lockout", "offline"],
    "full-courier": ["courier-full"],
    "full-collections": ["collections-full"],
}  # fmt: skip
SCREENS = [screen for walk in WALKS.values() for screen in walk]


@pytest.fixture(
    params=[
        pytest.param(DEFAULT_MODES, id="modes-default"),
        pytest.param(
            [mode for mode in MODES if mode not in DEFAULT_MODES],
            id="modes-rest",
            marks=pytest.mark.slow,
        ),
    ]
)
def modes(request) -> list[str]:  # type: ignore[no-untyped-def]
    return list(request.param)


def _walked(kiosk: Kiosk, walk: str) -> None:
    """The test checked the screens of ``walk`` (and only those), in order."""
    assert list(dict.fromkeys(kiosk.walked)) == WALKS[walk]
    kiosk.walked.clear()


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
    """JJD0001 stored, and its pickup deadline passed while the locker was off."""
    async with Daemon(_config(tmp_path), "--state-dir", str(tmp_path)) as daemon:
        await daemon.drop_off("JJD0001")
    with sqlite3.connect(tmp_path / "lockerd.db") as db:
        db.execute("UPDATE parcels SET pickup_by = 1 WHERE barcode = 'JJD0001'")


async def _walk(kiosk: Kiosk, barcode: str, size: str, language: str) -> None:
    """Every screen in turn, each checked as it is shown (taps by id: any language)."""
    page = kiosk.page
    await _language(kiosk, language)
    await kiosk.fits("home")
    await page.click("#go-send")
    await kiosk.screen("send")
    await kiosk.type_on("send-pad", "1234")
    await kiosk.fits("send")
    await page.click("#send-ok")  # no send code: the sender is told so
    await kiosk.screen("message")
    await kiosk.fits("send-error")
    await page.click("#message-ok")
    await kiosk.screen("send")
    await _send(kiosk)
    await _language(kiosk, language)  # the visit ended: the default language again
    await page.click("#go-collect")
    await kiosk.screen("pin")
    await kiosk.type_on("pin-pad", "123")
    await kiosk.fits("pin")
    await page.click("#pin-ok")  # too short: a message, nothing counted
    await kiosk.screen("message")
    await kiosk.fits("message")
    await page.click("#message-ok")
    await page.click("#pin-back")
    await page.click("#go-courier")
    await kiosk.screen("login")
    await kiosk.type_on("login-pad", "1234")
    await kiosk.fits("login")
    await page.click("#login-ok")
    await kiosk.screen("courier")
    await kiosk.fits("courier")
    await _drop_off(kiosk, barcode, size)
    await page.click("#go-collections")
    await kiosk.screen("collections")
    await page.wait_for_selector("#collections button")
    await kiosk.fits("collections")
    await page.click("#collections-back")
    await page.click("#courier-finish")
    await kiosk.screen("home")


async def _send(kiosk: Kiosk) -> None:
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
    await kiosk.fits("send-door-opening")

    def caught(cells: list[dict[str, Any]]) -> bool:  # the pulse is over, nobody pulled
        sim = next(c["sim"] for c in cells if c["id"] == compartment)
        return bool(sim["pulses"] == pulses[compartment] + 1 and sim["latched"] and not sim["open"])

    await daemon.sim_bank(caught)
    await daemon.call("POST", f"/api/demo/doors/{compartment}/open")
    await page.click("#door-not-open")
    await page.wait_for_selector("#door-doesnt-fit:not([hidden])")
    await kiosk.fits("send-door-open")
    await daemon.call("POST", f"/api/demo/doors/{compartment}/put")
    await daemon.call("POST", f"/api/demo/doors/{compartment}/close")
    await kiosk.screen("message")
    await kiosk.shows("#message-text", re.compile(compartment))
    await kiosk.fits("send-stored")
    await page.click("#message-ok")
    await kiosk.screen("home")


async def _language(kiosk: Kiosk, language: str) -> None:
    await kiosk.screen("home")
    await kiosk.page.click(f"#languages button[data-lang={language}]")
    await kiosk.page.wait_for_selector(f"html[lang={language}]")


async def _drop_off(kiosk: Kiosk, barcode: str, size: str) -> str:
    """An unknown parcel: the size chooser; the door, which does not open until the
    courier, hand on the handle, says so; then the courier's list. Its compartment."""
    page, daemon = kiosk.page, kiosk.daemon
    await kiosk.type_on("barcode-pad", barcode)
    await page.click("#barcode-ok")
    await kiosk.screen("size")
    await kiosk.fits("size")
    _, bank = await daemon.call("GET", "/api/demo/bank")
    pulses = {c["id"]: c["sim"]["pulses"] for c in bank["compartments"]}
    await page.click(f"#sizes button[data-size={size}]")
    compartment = await kiosk.opened_door()
    await page.wait_for_selector("#door-not-open:not([hidden])")
    await kiosk.fits("door-opening")

    def caught(cells: list[dict[str, Any]]) -> bool:  # the pulse is over, nobody pulled
        sim = next(c["sim"] for c in cells if c["id"] == compartment)
        return bool(sim["pulses"] == pulses[compartment] + 1 and sim["latched"] and not sim["open"])

    await daemon.sim_bank(caught)
    await daemon.call("POST", f"/api/demo/doors/{compartment}/open")
    await page.click("#door-not-open")
    await page.wait_for_selector("#door-doesnt-fit:not([hidden])")
    await kiosk.fits("door-open")
    await page.wait_for_selector("#door-alarm:not([hidden])")  # door_left_open_s has passed
    await kiosk.fits("door-left-open")
    await daemon.call("POST", f"/api/demo/doors/{compartment}/close")
    await kiosk.screen("courier")
    await page.wait_for_selector("#delivered li")
    await kiosk.fits("courier-stored")
    return compartment


async def _code(daemon: Daemon, barcode: str) -> str:
    """The pickup code of ``barcode``, from the recipient's message."""
    _, answer = await daemon.call("GET", "/api/demo/messages")
    return str(next(m["code"] for m in answer["messages"] if m["barcode"] == barcode))


async def _pick_up(kiosk: Kiosk, barcode: str, compartment: str) -> None:
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
    await kiosk.fits("pickup-door-opening")

    def caught(cells: list[dict[str, Any]]) -> bool:  # the pulse is over, nobody pulled
        sim = next(c["sim"] for c in cells if c["id"] == compartment)
        return bool(sim["pulses"] == pulses + 1 and sim["latched"] and not sim["open"])

    await daemon.sim_bank(caught)
    await daemon.call("POST", f"/api/demo/doors/{compartment}/open")
    await page.click("#door-not-open")
    await kiosk.shows("#door-title", re.compile(f"{compartment} (is open|ist offen)$"))
    await kiosk.fits("pickup-door")
    await daemon.call("POST", f"/api/demo/doors/{compartment}/close")
    await kiosk.screen("message")
    await page.wait_for_selector("#message-reopen:not([hidden])")
    await kiosk.fits("thanks")
    await daemon.call("POST", f"/api/demo/doors/{compartment}/open")  # a hand on the handle
    await page.click("#message-reopen")
    assert await kiosk.opened_door() == compartment
    await kiosk.shows("#door-title", re.compile(f"{compartment} (is open|ist offen)$"))
    await kiosk.fits("pickup-reopened")
    await daemon.call("POST", f"/api/demo/doors/{compartment}/close")
    await kiosk.screen("message")
    await page.click("#message-ok")
    await kiosk.screen("home")


async def _stuck(kiosk: Kiosk, barcode: str) -> None:
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
    await kiosk.fits("pickup-door-retrying")
    await page.click("#door-not-open")
    await kiosk.screen("message")
    await kiosk.shows("#message-text", re.compile(f"^(Compartment|Fach) {compartment} "))
    await kiosk.fits("pickup-stuck")
    await page.click("#message-ok")
    await kiosk.screen("home")


@pytest.mark.parametrize(("language", "size"), [("en", "S"), ("de", "L")])
async def test_every_screen_fits_every_display(tmp_path, browser, language, size, modes) -> None:
    """The sender's and the courier's screens, one walk per language (each its own test,
    so that the two run side by side)."""
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
        kiosk.sizes, kiosk.modes = SIZES, modes
        await _walk(kiosk, f"FIT{language.upper()}", size, language)
        _walked(kiosk, "walk")


@pytest.mark.parametrize("language", ["en", "de"])
async def test_the_resident_s_pickups_fit_every_display(tmp_path, browser, language, modes) -> None:
    """A pickup whose door opens when pulled, the thanks and the door opened again; then
    a door that will not open to the stuck parcel's message."""
    async with Daemon(_config(tmp_path), "--state-dir", str(tmp_path)) as daemon:
        compartment = await daemon.drop_off("JJD0001")
        await daemon.drop_off(STUCK[language])
    # Doors without push-out springs: each opens only when somebody pulls it.
    config = _config(tmp_path, door_springs="false", pickup_door_open_s=30)
    async with Daemon(config, "--state-dir", str(tmp_path)) as daemon:
        page = await browser.new_page(viewport={"width": 800, "height": 480})
        kiosk = await Kiosk(page, daemon).open()
        kiosk.sizes, kiosk.modes = SIZES, modes
        await _language(kiosk, language)
        await _pick_up(kiosk, "JJD0001", compartment)
        await _language(kiosk, language)  # the visit ended: the default language again
        await _stuck(kiosk, STUCK[language])
        _walked(kiosk, "pickup")


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


async def test_the_courier_s_questions_fit_every_display(tmp_path, browser, modes) -> None:
    """No low compartment free: the question; a drop-off cancelled at an open door: shut
    it. Each in each language at every size."""
    async with Daemon(demo_config(tmp_path), "--state-dir", str(tmp_path)) as daemon:
        await _fill_low(daemon)
        page = await browser.new_page(viewport={"width": 800, "height": 480})
        kiosk = await Kiosk(page, daemon).open()
        kiosk.sizes, kiosk.modes = SIZES, modes
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
        _walked(kiosk, "questions")


async def _every_display(kiosk: Kiosk, screen: str) -> None:
    """The screen shown, checked in each language at every size."""
    for language in LANGUAGES:
        await kiosk.page.click(f"#languages button[data-lang={language}]")
        await kiosk.page.wait_for_selector(f"html[lang={language}]")
        await kiosk.fits(screen)


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


#: The demo bank's sizes, one per compartment (three S, three M, four L): every one used.
FULL_BANK = "SSSMMMLLLL"


async def _drop_off_on_the_page(kiosk: Kiosk, barcode: str, size: str) -> None:
    """The courier types ``barcode``, chooses ``size``; the door springs ajar and is shut."""
    await kiosk.type_on("barcode-pad", barcode)
    await kiosk.page.click("#barcode-ok")
    await kiosk.screen("size")
    await kiosk.page.click(f"#sizes button[data-size={size}]")
    compartment = await kiosk.opened_door()
    await kiosk.page.wait_for_selector("#door-doesnt-fit:not([hidden])")
    await kiosk.daemon.call("POST", f"/api/demo/doors/{compartment}/close")
    await kiosk.screen("courier")
    await kiosk.shows("#courier-note", re.compile(f"^{barcode} "))


async def _laid_out(page: Any) -> None:
    """The page laid out for its viewport: two frames on, its resize observers (a list's
    pages) have run."""
    await page.evaluate("new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))")


async def _pages(kiosk: Kiosk, items: str) -> list[str]:
    """Every item of the list ``items`` (a selector), page by page with "Next" (by id:
    any language), at the display shown; each page checked as it is shown."""
    page = kiosk.page
    pager = page.locator(f"{items} + .pager")
    seen = await page.locator(f"{items} > li").all_inner_texts()
    while await pager.is_visible() and await pager.locator("[data-page=next]").is_enabled():
        await pager.locator("[data-page=next]").click()
        await kiosk.fits(f"{items[1:]}-next")
        seen += await page.locator(f"{items} > li").all_inner_texts()
    return seen


async def test_full_lists_are_paged_on_every_display(tmp_path, browser, modes) -> None:
    """Every compartment used: the courier's ten drop-offs of this visit, then the ten
    parcels expired, each list a page at a time ("Previous", "3-6 of 10", "Next") at every
    display, never scrolled; paging through shows every item once."""
    barcodes = [f"FULL{n:02}" for n in range(len(FULL_BANK))]
    async with Daemon(demo_config(tmp_path), "--state-dir", str(tmp_path)) as daemon:
        page = await browser.new_page(viewport={"width": 800, "height": 480})
        kiosk = await Kiosk(page, daemon).open()
        await kiosk.log_in()
        for barcode, size in zip(barcodes, FULL_BANK, strict=True):
            await _drop_off_on_the_page(kiosk, barcode, size)
        kiosk.sizes, kiosk.modes = SIZES, modes
        await _every_display(kiosk, "courier-full")
        _walked(kiosk, "full-courier")
        kiosk.sizes, kiosk.modes = [], ["plain"]
        await page.set_viewport_size({"width": 800, "height": 480})
        await page.add_style_tag(content=PRODUCTION)
        await _laid_out(page)
        # The newest first shown; "Previous" back to the oldest.
        newest = await page.locator("#delivered > li").all_inner_texts()
        assert newest[-1].startswith(barcodes[-1]) and len(newest) < len(barcodes)
        while await page.locator("#delivered + .pager [data-page=previous]").is_enabled():
            await page.click("#delivered + .pager [data-page=previous]")
        assert [item.split()[0] for item in await _pages(kiosk, "#delivered")] == barcodes
    with sqlite3.connect(tmp_path / "lockerd.db") as db:
        db.execute("UPDATE parcels SET pickup_by = 1")
    config = demo_config(tmp_path, expiry_sweep_s=1)
    async with Daemon(config, "--state-dir", str(tmp_path)) as daemon:
        events = await daemon.events(after=0)
        for _ in barcodes:
            await events.event("parcel.expired")
        await events.close()
        page = await browser.new_page(viewport={"width": 800, "height": 480})
        kiosk = await Kiosk(page, daemon).open()
        await kiosk.log_in()
        await page.click("#go-collections")
        await kiosk.screen("collections")
        await page.wait_for_selector("#collections button")
        kiosk.sizes, kiosk.modes = SIZES, modes
        await _every_display(kiosk, "collections-full")
        _walked(kiosk, "full-collections")
        kiosk.sizes, kiosk.modes = [], ["plain"]
        await page.set_viewport_size({"width": 800, "height": 480})
        await page.add_style_tag(content=PRODUCTION)
        await _laid_out(page)
        listed = await _pages(kiosk, "#collections")
        assert sorted(item.rsplit(" ", 1)[1] for item in listed) == barcodes


async def _caught(daemon: Daemon, compartment: str, pulses: int) -> None:
    """Wait until ``compartment``'s lock has had ``pulses`` pulses and its latch caught."""

    def caught(cells: list[dict[str, Any]]) -> bool:
        sim = next(c["sim"] for c in cells if c["id"] == compartment)
        return bool(sim["pulses"] == pulses and sim["latched"] and not sim["open"])

    await daemon.sim_bank(caught)


@pytest.mark.parametrize("language", ["en", "de"])
async def test_the_courier_s_other_screens_fit_every_display(
    tmp_path, browser, language, modes
) -> None:
    """A door that did not open: "trying again", then (nobody pulled) the size chooser
    saying so; a parcel that did not fit: the larger sizes; one that fits none: the
    message. Each in ``language`` at every display in every mode."""
    config = demo_config(tmp_path, door_springs="false", door_open_timeout_s=10)
    async with Daemon(config, "--state-dir", str(tmp_path)) as daemon:
        page = await browser.new_page(viewport={"width": 800, "height": 480})
        kiosk = await Kiosk(page, daemon).open()
        await _language(kiosk, language)
        await page.click("#go-courier")
        await kiosk.type_on("login-pad", "1234")
        await page.click("#login-ok")
        await kiosk.screen("courier")
        kiosk.sizes, kiosk.modes = SIZES, modes
        await kiosk.type_on("barcode-pad", "JJD0001")  # announced: M
        await page.click("#barcode-ok")
        medium = await kiosk.opened_door()
        await _caught(daemon, medium, 1)
        await page.click("#door-not-open")  # nobody at the handle: it re-pulses, in vain
        await kiosk.shows("#door-text", re.compile("Trying again|Neuer Versuch"))
        await kiosk.fits("door-retrying")
        await kiosk.screen("size")  # door_open_timeout_s after the re-pulse
        await kiosk.shows("#size-title", re.compile(medium))
        await kiosk.fits("size-did-not-open")
        await page.set_viewport_size({"width": 800, "height": 480})
        await page.click("#sizes button[data-size=M]")
        other = await kiosk.opened_door()
        await _caught(daemon, other, 1)
        await daemon.call("POST", f"/api/demo/doors/{other}/open")  # a hand on the handle
        await page.click("#door-not-open")
        await page.wait_for_selector("#door-doesnt-fit:not([hidden])")
        await page.click("#door-doesnt-fit")
        await kiosk.screen("size")
        await kiosk.fits("size-larger")
        await page.set_viewport_size({"width": 800, "height": 480})
        await daemon.call("POST", f"/api/demo/doors/{other}/close")
        large = "C1"  # the first L that is not low reach; the courier pulls as it opens
        await daemon.call("POST", f"/api/demo/doors/{large}/open")
        await page.click("#sizes button[data-size=L]")
        assert await kiosk.opened_door() == large
        await page.wait_for_selector("#door-doesnt-fit:not([hidden])")
        await page.click("#door-doesnt-fit")
        await daemon.call("POST", f"/api/demo/doors/{large}/close")
        await kiosk.screen("message")
        await kiosk.fits("no-larger-size")
        _walked(kiosk, "courier")


async def _coded(tmp_path: Path, *barcodes: str) -> dict[str, str]:
    """``barcodes`` (announced) stored by a first run of the locker; each one's code."""
    async with Daemon(_config(tmp_path), "--state-dir", str(tmp_path)) as daemon:
        for barcode in barcodes:
            await daemon.drop_off(barcode)
        return {barcode: await _code(daemon, barcode) for barcode in barcodes}


@pytest.mark.parametrize("language", ["en", "de"])
async def test_the_resident_s_other_screens_fit_every_display(
    tmp_path, browser, language, modes
) -> None:
    """A code that could not be read (the message over the bar, over nothing to touch); a
    code for an expired parcel; a pickup group's between-doors message and its "Parcel 2
    of 2"; wrong codes until the keypad locks; the connection lost. Each in ``language``
    at every display in every mode."""
    codes = await _coded(tmp_path, "JJD0001", "JJD0101", "JJD0102")
    with sqlite3.connect(tmp_path / "lockerd.db") as db:
        db.execute("UPDATE parcels SET pickup_by = 1 WHERE barcode = 'JJD0001'")
    config = _config(tmp_path, expiry_sweep_s=1, lockout_after=3)
    async with Daemon(config, "--state-dir", str(tmp_path)) as daemon:
        events = await daemon.events(after=0)
        await events.event("parcel.expired")
        await events.close()
        page = await browser.new_page(viewport={"width": 800, "height": 480})
        kiosk = await Kiosk(page, daemon).open()
        await _language(kiosk, language)
        kiosk.sizes, kiosk.modes = SIZES, modes
        await page.click("#go-collect")
        await kiosk.screen("pin")

        async def unread() -> bool:  # shown for 4 s: scanned again when it has gone
            if await page.is_visible("#toast"):
                return True
            await daemon.call("POST", "/api/demo/scanners/handheld", {"text": " "})  # empty
            await page.wait_for_selector("#toast:not([hidden])")
            return False

        await kiosk.fits("toast", unread)
        await page.set_viewport_size({"width": 800, "height": 480})
        await page.wait_for_selector("#toast", state="hidden")
        await kiosk.type_on("pin-pad", codes["JJD0001"])
        await page.click("#pin-ok")
        await kiosk.screen("message")
        await kiosk.fits("expired")
        await page.set_viewport_size({"width": 800, "height": 480})
        await page.click("#message-ok")
        await kiosk.screen("pin")  # back at the keypad
        await kiosk.type_on("pin-pad", codes["JJD0101"])
        await page.click("#pin-ok")
        for index in (1, 2):
            door = await kiosk.opened_door()  # its door springs ajar
            await kiosk.shows("#door-title", re.compile(f"{door} (is open|ist offen)$"))
            if index == 2:
                await kiosk.fits("pickup-group")
            await daemon.call("POST", f"/api/demo/doors/{door}/close")
            await kiosk.screen("message")
            if index == 1:
                await page.wait_for_selector("#message-next:not([hidden])")
                await kiosk.fits("pickup-between")
                await page.set_viewport_size({"width": 800, "height": 480})
                await page.click("#message-next")
        await page.click("#message-ok")
        await _language(kiosk, language)
        await page.click("#go-collect")
        for _ in range(3):  # wrong codes until the keypad locks (lockout_after)
            await kiosk.screen("pin")
            await kiosk.type_on("pin-pad", "00000000")
            await page.click("#pin-ok")
            await kiosk.screen("message")
            if re.search(r"\d:\d\d", await kiosk.text("#message-text")):  # locked until then
                break
            await page.click("#message-ok")
        await kiosk.fits("lockout")
        await daemon.stop()  # the locker gone: the page says it has no connection
        await page.wait_for_selector("#conn:not([hidden])")
        await kiosk.fits("offline")
        _walked(kiosk, "resident")


def test_the_code_overview_lists_what_the_walk_covers() -> None:
    """docs/code-overview.md names every screen, mode, size and language the fit tests
    check, and no other."""
    text = (ROOT / "docs" / "code-overview.md").read_text()
    listed = {}
    for name in ("screens", "modes", "sizes", "languages"):
        found = re.search(rf"^  - {name}: (.*?)\.$", text, re.MULTILINE | re.DOTALL)
        assert found, f"code-overview.md lists no {name}"
        listed[name] = " ".join(found.group(1).split()).split(", ")
    assert listed == {
        "screens": SCREENS,
        "modes": list(MODES),
        "sizes": [f"{width}x{height}" for width, height in SIZES],
        "languages": LANGUAGES,
    }
