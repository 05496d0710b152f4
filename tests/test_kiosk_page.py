"""The kiosk page in headless Chromium: every flow by touch, scans, failures, languages, idle."""

from __future__ import annotations

import re
import sqlite3
from typing import Any

from tests.browser import Kiosk, demo_config
from tests.daemon import Daemon

PAGE = {"viewport": {"width": 1280, "height": 900}}


async def _message_for(kiosk: Kiosk, barcode: str) -> str:
    """The recipient message the demo shows for ``barcode``."""
    item = kiosk.page.locator("#messages li", has_text=barcode)
    return str(await item.locator("p").inner_text())


# The demo's doors spring ajar as their latch releases (demo.door_springs): a person
# at the bank only has to shut them.


async def _store(kiosk: Kiosk, shot: str) -> str:
    """The door springs open: put the parcel in, close it. The compartment used."""
    compartment = await kiosk.opened_door()
    await kiosk.snap(f"{shot}-opening")
    await kiosk.page.wait_for_selector("#door-title:text-matches(' is open$')")
    await kiosk.snap(f"{shot}-open")
    await kiosk.person(compartment, "close")
    await kiosk.screen("courier")
    return compartment


async def _collect(kiosk: Kiosk, shot: str) -> str:
    compartment = await kiosk.opened_door()
    await kiosk.page.wait_for_selector("#door-title:text-matches(' is open$')")
    await kiosk.snap(f"{shot}-open")
    await kiosk.person(compartment, "close")
    await kiosk.screen("message")
    assert await kiosk.text("#message-title") == "Thank you!"
    await kiosk.snap(f"{shot}-thanks")
    return compartment


async def test_two_parcels_dropped_off_by_touch_and_collected_by_pin_and_qr(
    tmp_path,
    browser,
) -> None:
    async with Daemon(demo_config(tmp_path), "--state-dir", str(tmp_path)) as daemon:
        kiosk = await Kiosk(await browser.new_page(**PAGE), daemon).open()
        await kiosk.snap("home")

        # The courier logs in on the keypad.
        await kiosk.tap("Courier")
        await kiosk.screen("login")
        await kiosk.type_on("login-pad", "1234")
        await kiosk.snap("courier-login")
        await kiosk.tap("Log in")
        await kiosk.screen("courier")
        assert await kiosk.text("#courier-title") == "Hello, Demo Courier"
        await kiosk.snap("courier")

        # An announced parcel, typed on the keypad: it knows its size (M).
        await kiosk.type_on("barcode-pad", "JJD0001")
        await kiosk.tap("Drop off")
        first = await _store(kiosk, "dropoff-1")
        assert first == "B2"
        assert "JJD0001 is stored in B2" in await kiosk.text("#courier-note")

        # An unknown parcel, scanned by the handheld scanner: the courier picks a size.
        await kiosk.page.fill("#demo-label", "PKG00002")
        await kiosk.tap("Scan this label with handheld")
        await kiosk.screen("size")
        await kiosk.snap("size")
        await kiosk.page.click("#sizes button[data-size=S]")
        second = await _store(kiosk, "dropoff-2")
        assert await kiosk.page.locator("#delivered li").all_inner_texts() == [
            f"JJD0001 in {first}",
            f"PKG00002 in {second}",
        ]
        await kiosk.snap("courier-two-stored")
        await kiosk.tap("Finish")
        await kiosk.screen("home")

        # A resident types the code from the message on the PIN pad.
        message = await _message_for(kiosk, "JJD0001")
        code = re.search(r"Pickup code: (\d+)", message).group(1)
        await kiosk.tap("Collect a parcel")
        await kiosk.screen("pin")
        await kiosk.type_on("pin-pad", code)
        await kiosk.snap("pin")
        await kiosk.tap("Open my compartment")
        assert await _collect(kiosk, "pickup-pin") == first
        await kiosk.tap("OK")
        await kiosk.screen("home")

        # Another shows the QR code of their message to the camera on the home screen.
        qr = kiosk.page.locator("#messages li", has_text="PKG00002")
        await qr.get_by_role("button", name="Show this QR code to the camera").click()
        assert await _collect(kiosk, "pickup-qr") == second

        _, bank = await daemon.call("GET", "/api/demo/bank")
        states = {c["id"]: c["state"] for c in bank["compartments"]}
        assert states[first] == states[second] == "free"
        _, events = await daemon.call("GET", "/api/status")
        assert all(c["door"] == "closed" for c in events["compartments"])


async def test_wrong_codes_then_the_lock_out_screen(tmp_path, browser) -> None:
    config = demo_config(tmp_path, lockout_after=3)  # two free failures, then the lock-out
    async with Daemon(config, "--state-dir", str(tmp_path)) as daemon:
        kiosk = await Kiosk(await browser.new_page(**PAGE), daemon).open()
        await kiosk.tap("Collect a parcel")
        for attempt, left in ((1, 2), (2, 1)):
            await kiosk.type_on("pin-pad", "00000000")
            await kiosk.tap("Open my compartment")
            await kiosk.screen("message")
            attempts = "attempt" if left == 1 else "attempts"
            await kiosk.shows("#message-text", f"That code is not right. {left} {attempts} left.")
            await kiosk.snap(f"wrong-code-{attempt}")
            await kiosk.tap("OK")
            await kiosk.screen("pin")
            assert await kiosk.text("#pin-display") == ""
        await kiosk.type_on("pin-pad", "00000000")
        await kiosk.tap("Open my compartment")
        # Nobody is blamed; the page says when codes are taken again and that QR codes work.
        await kiosk.shows(
            "#message-text",
            re.compile(
                r"^Too many wrong codes have been typed here, so the keypad takes codes again"
                r" at \d\d:\d\d( [AP]M)?\. The QR code from your pickup notice still works:"
                r" show it to the camera\. If you need help, call \+49 30 1234567 \(demo\)\.$"
            ),
        )
        await kiosk.snap("locked-out")
        # A short code is refused as such, without counting.
        await kiosk.tap("OK")
        await kiosk.type_on("pin-pad", "123")
        await kiosk.tap("Open my compartment")
        await kiosk.shows("#message-text", re.compile("A pickup code has 8 digits"))
        # The residents' lock-out never keeps a courier out.
        await kiosk.tap("OK")
        await kiosk.tap("Back")
        await kiosk.tap("Courier")
        await kiosk.type_on("login-pad", "1234")
        await kiosk.tap("Log in")
        await kiosk.screen("courier")
        # Counts take the language's singular: "1 Sekunde", "1 Versuch".
        texts = await kiosk.page.evaluate(
            """async () => {
                const i18n = await import("/static/i18n.js");
                await i18n.setLanguage("de");
                return [1, 2].flatMap((n) => [
                    i18n.t("error.too_fast", { retry_after: n, count: n }),
                    i18n.t("error.wrong_code", { attempts_left: n, count: n }),
                ]);
            }"""
        )
        assert texts == [
            "Bitte warten Sie 1 Sekunde bis zum nächsten Versuch.",
            "Dieser Code stimmt nicht. Noch 1 Versuch.",
            "Bitte warten Sie 2 Sekunden bis zum nächsten Versuch.",
            "Dieser Code stimmt nicht. Noch 2 Versuche.",
        ]


async def test_language_switch_and_the_idle_timeout(tmp_path, browser) -> None:
    async with Daemon(demo_config(tmp_path), "--state-dir", str(tmp_path)) as daemon:
        page = await browser.new_page(**PAGE)
        await page.clock.install()
        kiosk = await Kiosk(page, daemon).open()
        await kiosk.tap("Deutsch")
        assert await page.get_attribute("html", "lang") == "de"
        assert await kiosk.button("Paket abholen").is_visible()
        await kiosk.snap("home-de")
        await kiosk.tap("Zusteller")
        await kiosk.type_on("login-pad", "1234")
        async with page.expect_response("**/api/courier/login") as login:
            await kiosk.tap("Anmelden")
        token = (await (await login.value).json())["token"]
        await kiosk.screen("courier")
        assert await kiosk.text("#courier-title") == "Hallo, Demo Courier"
        await kiosk.tap("Ein Fach weiter unten")
        assert await kiosk.button("Ein Fach weiter unten").get_attribute("aria-pressed") == ("true")
        await kiosk.snap("courier-de")

        # Left alone for the idle time: home, in the default language, and logged out.
        await page.clock.fast_forward(61_000)
        await kiosk.screen("home")
        assert await page.get_attribute("html", "lang") == "en"
        status, answer = await daemon.call("GET", "/api/collections", token=token)
        assert (status, answer["error"]["code"]) == (401, "session_expired")
        await kiosk.tap("Courier")
        await kiosk.screen("login")


async def test_a_lower_compartment_for_a_courier_who_asks(tmp_path, browser) -> None:
    async with Daemon(demo_config(tmp_path), "--state-dir", str(tmp_path)) as daemon:
        kiosk = await Kiosk(await browser.new_page(**PAGE), daemon).open()
        await kiosk.tap("Courier")
        await kiosk.type_on("login-pad", "1234")
        await kiosk.tap("Log in")
        await kiosk.tap("I need a lower compartment")
        await kiosk.type_on("barcode-pad", "JJD0001")
        await kiosk.tap("Drop off")
        # JJD0001 is M: B2 is the first M, A3 the first low-reach M.
        assert await kiosk.opened_door() == "A3"
        assert await kiosk.text("#door-where") == "Column 1, row 3"
        await kiosk.shows("#door-title", "Compartment A3 is open")  # it sprang ajar
        await kiosk.tap("Cancel")
        # Cancelled at an open door: the courier shuts it before the next parcel.
        await kiosk.shows("#door-title", "Close the door of A3")
        await kiosk.person("A3", "close")
        await kiosk.screen("courier")


async def test_doesnt_fit_door_did_not_open_and_door_left_open(tmp_path, browser) -> None:
    # Doors without push-out springs: a door opens only if somebody pulls it while its
    # latch is out, and a pulse nobody follows up ends with the latch caught again.
    config = demo_config(tmp_path, door_left_open_s=5, door_springs="false")
    async with Daemon(config, "--state-dir", str(tmp_path)) as daemon:
        events = await daemon.events(after=0)
        kiosk = await Kiosk(await browser.new_page(**PAGE), daemon).open()
        await kiosk.tap("Courier")
        await kiosk.type_on("login-pad", "1234")
        await kiosk.tap("Log in")
        await kiosk.type_on("barcode-pad", "JJD0001")
        await kiosk.tap("Drop off")
        medium = await kiosk.opened_door()
        await kiosk.snap("door-opening")

        # Nobody was at the door: its pulse ended and the latch caught it again.
        def caught(cells: list[dict]) -> bool:
            sim = next(c["sim"] for c in cells if c["id"] == medium)
            return bool(sim["pulses"] == 1 and sim["latched"] and not sim["open"])

        await daemon.sim_bank(caught)
        assert await kiosk.text("#door-title") == f"Compartment {medium} is opening…"

        # The courier takes the handle and says the door did not open: a status read, then
        # one more pulse, which opens the door under their hand.
        assert (await kiosk.person(medium, "open"))["pulling"]
        await kiosk.keep_texts("#door-text")
        await kiosk.tap("The door did not open")
        await events.event("lock.pulsed", compartment=medium, attempt=2)
        await kiosk.shows("#door-title", f"Compartment {medium} is open")
        # The page said it was trying again (only until the door opened under the hand).
        assert "Trying again to open it…" in await kiosk.texts_kept("#door-text")
        await kiosk.snap("door-retried-open")

        # It does not fit: only larger sizes are offered, and a large door opens.
        await kiosk.tap("It does not fit")
        await kiosk.screen("size")
        assert await kiosk.text("#size-title") == "It did not fit: choose a larger compartment"
        assert await kiosk.page.locator("#sizes button").evaluate_all(
            "(buttons) => buttons.map((b) => b.dataset.size)"
        ) == ["L"]
        await kiosk.snap("size-larger")
        await kiosk.person(medium, "close")  # the courier shuts the medium door again
        # The courier stands at the large door the locker gives (C1, the first L that is not
        # low reach) with a hand on its handle before choosing: it opens with the pulse.
        assert (await kiosk.person("C1", "open"))["pulling"]
        await kiosk.page.click("#sizes button[data-size=L]")
        large = await kiosk.opened_door()
        assert large == "C1" != medium
        await kiosk.shows("#door-title", f"Compartment {large} is open")

        # Left open past door_left_open_s: the screen asks for the door to be closed.
        await kiosk.page.wait_for_selector("#door-alarm:not([hidden])")
        await kiosk.shows("#door-alarm", "The door has been open a long time. Please close it.")
        await kiosk.snap("door-left-open")
        await kiosk.person(large, "close")
        await kiosk.screen("courier")
        assert f"JJD0001 is stored in {large}" in await kiosk.text("#courier-note")
        await events.close()


async def test_a_door_nobody_opened_waits_for_the_courier(tmp_path, browser) -> None:
    """The courier walked away from a door that did not open: one compartment goes out
    of use, and the page asks before another door is pulsed."""
    config = demo_config(tmp_path, door_open_timeout_s=2, door_springs="false")
    async with Daemon(config, "--state-dir", str(tmp_path)) as daemon:
        events = await daemon.events(after=0)
        kiosk = await Kiosk(await browser.new_page(**PAGE), daemon).open()
        await kiosk.tap("Courier")
        await kiosk.type_on("login-pad", "1234")
        await kiosk.tap("Log in")
        await kiosk.type_on("barcode-pad", "JJD0001")
        await kiosk.tap("Drop off")
        medium = await kiosk.opened_door()
        await events.event("compartment.out_of_service", compartment=medium)
        await kiosk.screen("size")
        await kiosk.shows(
            "#size-title",
            f"Compartment {medium} did not open and is out of use."
            " Choose a size to try another compartment",
        )
        assert await kiosk.page.locator("#sizes button").evaluate_all(
            "(buttons) => buttons.map((b) => b.dataset.size)"
        ) == ["M", "L"]
        await kiosk.snap("size-did-not-open")
        pulses = [e for e in events.seen if e.get("type") == "lock.pulsed"]
        assert {p["data"]["compartment"] for p in pulses} == {medium}
        await kiosk.page.click("#sizes button[data-size=M]")
        other = await kiosk.opened_door()
        assert other != medium
        await kiosk.tap("Cancel")
        await kiosk.screen("courier")
        await events.close()


async def test_a_late_answer_never_shows_an_older_state(tmp_path, browser) -> None:
    """The drop-off's POST answer ("opening") is held back until the event stream has
    said the door is open (the doors spring ajar): the page shows the newer view."""
    async with Daemon(demo_config(tmp_path), "--state-dir", str(tmp_path)) as daemon:
        events = await daemon.events(after=0)
        kiosk = await Kiosk(await browser.new_page(**PAGE), daemon).open()

        async def late(route: Any) -> None:
            answer = await route.fetch()
            flow = (await answer.json())["id"]
            await events.flow(flow, "open")
            await route.fulfill(response=answer)

        await kiosk.page.route("**/api/dropoffs", late)
        await kiosk.tap("Courier")
        await kiosk.type_on("login-pad", "1234")
        await kiosk.tap("Log in")
        await kiosk.type_on("barcode-pad", "JJD0001")
        await kiosk.tap("Drop off")
        door = await kiosk.opened_door()
        await kiosk.shows("#door-title", f"Compartment {door} is open")
        assert await kiosk.page.locator("#door-doesnt-fit").is_visible()
        await events.close()


async def test_a_courier_collects_an_expired_parcel(tmp_path, browser) -> None:
    config = demo_config(tmp_path, expiry_sweep_s=1)
    async with Daemon(config, "--state-dir", str(tmp_path)) as daemon:
        stored_in = await daemon.drop_off("JJD0001")
    # The pickup deadline passes while the locker is off.
    with sqlite3.connect(tmp_path / "lockerd.db") as db:
        db.execute("UPDATE parcels SET pickup_by = 1 WHERE barcode = 'JJD0001'")

    async with Daemon(config, "--state-dir", str(tmp_path)) as daemon:
        events = await daemon.events(after=0)
        await events.event("parcel.expired")
        kiosk = await Kiosk(await browser.new_page(**PAGE), daemon).open()
        await kiosk.tap("Courier")
        await kiosk.type_on("login-pad", "1234")
        await kiosk.tap("Log in")
        await kiosk.tap("Collect expired parcels and returns")
        await kiosk.screen("collections")
        await kiosk.snap("collections")
        await kiosk.tap(f"Open {stored_in}: JJD0001")
        compartment = await kiosk.opened_door()
        assert await kiosk.text("#door-text") == "Take the parcel out and close the door."
        await kiosk.shows("#door-title", f"Compartment {compartment} is open")
        await kiosk.person(compartment, "close")
        await kiosk.shows("#collections-note", f"JJD0001 is collected from {compartment}.")
        await kiosk.shows("#collections", "There is nothing to collect.")
        await events.close()


async def test_a_code_of_the_old_length_is_typed_after_the_length_grew(tmp_path, browser) -> None:
    # Stored with 8-digit codes; then the locker's code length becomes 9 (an upgrade
    # that derives it, a grown bank): the resident's 8-digit code still opens the door.
    async with Daemon(demo_config(tmp_path), "--state-dir", str(tmp_path)) as daemon:
        kiosk = await Kiosk(await browser.new_page(**PAGE), daemon).open()
        await kiosk.tap("Courier")
        await kiosk.type_on("login-pad", "1234")
        await kiosk.tap("Log in")
        await kiosk.screen("courier")
        await kiosk.type_on("barcode-pad", "JJD0001")
        await kiosk.tap("Drop off")
        stored = await _store(kiosk, "old-length-dropoff")
        await kiosk.tap("Finish")
        await kiosk.screen("home")
        message = await _message_for(kiosk, "JJD0001")
        code = re.search(r"Pickup code: (\d+)", message).group(1)
        assert len(code) == 8
    async with Daemon(demo_config(tmp_path, code_length=9), "--state-dir", str(tmp_path)) as daemon:
        kiosk = await Kiosk(await browser.new_page(**PAGE), daemon).open()
        await kiosk.tap("Collect a parcel")
        await kiosk.screen("pin")
        await kiosk.shows("#pin-hint", re.compile(r"^The code has 8 or 9 digits\."))
        await kiosk.type_on("pin-pad", code)
        await kiosk.tap("Open my compartment")
        assert await _collect(kiosk, "old-length-pickup") == stored
        await kiosk.tap("OK")
        await kiosk.tap("Collect a parcel")
        await kiosk.shows("#pin-hint", re.compile(r"^The code has 9 digits\."))
        assert not kiosk.errors


async def test_a_parcel_sent_at_the_kiosk_is_collected_by_its_carriers_courier(
    tmp_path, browser
) -> None:
    from playwright.async_api import expect

    async with Daemon(demo_config(tmp_path), "--state-dir", str(tmp_path)) as daemon:
        kiosk = await Kiosk(await browser.new_page(**PAGE), daemon).open()
        page = kiosk.page
        await kiosk.tap("Send or return a parcel")
        await kiosk.screen("send")
        await kiosk.type_on("send-pad", "12345678")
        await kiosk.snap("send")
        await kiosk.tap("Open a compartment")  # no such code was announced: counted
        await kiosk.screen("message")
        await kiosk.shows("#message-text", re.compile("attempts left"))
        await kiosk.tap("OK")
        await kiosk.screen("send")
        assert await kiosk.text("#send-display") == ""
        # The back office's send code (the demo panel issues one) shown to the camera.
        await kiosk.tap("Issue a send code for size M", "#demo-send")
        issued = page.locator("#demo-send-codes li")
        reference = re.search(r"DEMO\d{8}", await issued.locator("p").inner_text())
        assert reference is not None
        await kiosk.tap("Show this QR code to the camera", "#demo-send-codes")
        compartment = await kiosk.opened_door()
        assert await kiosk.text("#door-text") == "Put the parcel in and close the door."
        await page.wait_for_selector("#door-doesnt-fit:not([hidden])")
        await kiosk.snap("send-door")
        await daemon.call("POST", f"/api/demo/doors/{compartment}/put")
        await kiosk.person(compartment, "close")
        await kiosk.screen("message")
        await kiosk.shows(
            "#message-text",
            f"Your parcel is in compartment {compartment}. A courier will collect it.",
        )
        # The demo panel's bank names the parcel waiting for its carrier.
        cell = page.locator(f"#grid .cell[data-id={compartment}] > div")
        await expect(cell).to_have_text(re.compile(f" · to send: {reference[0]} \\(DHL\\)$"))
        await kiosk.tap("OK")
        await kiosk.log_in()
        await kiosk.tap("Collect expired parcels and returns")
        await kiosk.screen("collections")
        await kiosk.tap(f"Open {compartment}: send {reference[0]}")
        assert await kiosk.opened_door() == compartment
        await daemon.call("POST", f"/api/demo/doors/{compartment}/take")
        await kiosk.person(compartment, "close")
        await kiosk.shows("#collections-note", f"{reference[0]} is collected from {compartment}.")
        await kiosk.shows("#collections", "There is nothing to collect.")
        await expect(cell).to_have_text(re.compile(f"^{compartment} M · free · door closed"))
        await expect(cell).not_to_contain_text("to send")
