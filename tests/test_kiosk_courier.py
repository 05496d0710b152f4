"""The courier's screens in headless Chromium on the demo: the low-compartment toggle
shows what will be applied and ends with the session, the courier is asked when no low
compartment is free, and a drop-off cancelled after its door was unlocked."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.browser import Kiosk, demo_kiosk
from tests.daemon import Daemon

LOW = "I need a lower compartment"
GREEN = "rgb(11, 93, 30)"  # --ok: the pressed toggle's background


async def _low(kiosk: Kiosk) -> tuple[str | None, bool]:
    """The toggle as a person and a screen reader see it: aria-pressed, and green or not."""
    button = kiosk.button(LOW)
    background = await button.evaluate("(b) => getComputedStyle(b).backgroundColor")
    return await button.get_attribute("aria-pressed"), background == GREEN


def _intents(state: Path, barcode: str) -> list[str]:
    """The compartments unlock intents were committed on for ``barcode``, oldest first."""
    with sqlite3.connect(state / "lockerd.db") as db:
        rows = db.execute(
            "SELECT compartment_id FROM unlock_intents WHERE barcode = ? ORDER BY id", (barcode,)
        ).fetchall()
    return [row[0] for row in rows]


async def _store_low(daemon: Daemon, barcode: str) -> str:
    """A courier stores a large parcel in a low compartment over the API; which one."""
    events = await daemon.events(after=0)
    _, login = await daemon.call("POST", "/api/courier/login", {"code": "1234"})
    body = {"barcode": barcode, "size": "L", "prefer_low": True}
    _, flow = await daemon.call("POST", "/api/dropoffs", body, login["token"])
    await events.flow(flow["id"], "open")
    await daemon.call("POST", f"/api/demo/doors/{flow['compartment']}/close")
    await events.flow(flow["id"], "stored")
    await events.close()
    return str(flow["compartment"])


async def test_the_low_toggle_shows_what_is_applied_and_ends_with_the_session(
    tmp_path, browser
) -> None:
    async with demo_kiosk(tmp_path, browser, before=lambda page: page.clock.install()) as kiosk:
        await kiosk.log_in()
        assert await _low(kiosk) == ("false", False)
        await kiosk.tap(LOW)
        assert await _low(kiosk) == ("true", True)
        await kiosk.tap("Finish")
        await kiosk.screen("home")

        # The next courier's session starts with the toggle off, and one tap turns it on.
        await kiosk.log_in()
        assert await _low(kiosk) == ("false", False)
        await kiosk.tap(LOW)
        assert await _low(kiosk) == ("true", True)
        await kiosk.tap(LOW)
        assert await _low(kiosk) == ("false", False)
        await kiosk.tap(LOW)

        # Left alone for the idle time (kiosk.idle_s = 60): home, and the toggle off.
        await kiosk.page.clock.fast_forward(61_000)
        await kiosk.screen("home")
        await kiosk.log_in()
        assert await _low(kiosk) == ("false", False)

        # Pressed, it is applied: a large parcel goes low (A4), not to C1 out of reach.
        await kiosk.tap(LOW)
        await kiosk.type_on("barcode-pad", "BIG00001")
        await kiosk.tap("Drop off")
        await kiosk.screen("size")
        await kiosk.page.click("#sizes button[data-size=L]")
        assert await kiosk.opened_door() == "A4"
        assert _intents(tmp_path, "BIG00001") == ["A4"]


async def test_no_low_compartment_free_asks_the_courier(tmp_path, browser) -> None:
    async with demo_kiosk(tmp_path, browser) as kiosk:
        assert await _store_low(kiosk.daemon, "LOW00001") == "A4"
        assert await _store_low(kiosk.daemon, "LOW00002") == "B4"
        await kiosk.log_in()
        await kiosk.tap(LOW)

        # Nothing is reserved while the courier is asked; cancelling leaves nothing behind.
        await kiosk.type_on("barcode-pad", "BIG00002")
        await kiosk.tap("Drop off")
        await kiosk.screen("size")
        await kiosk.page.click("#sizes button[data-size=L]")
        await kiosk.screen("no-low")
        assert await kiosk.text("#no-low-title") == "No low compartment is free for size L"
        assert await kiosk.text("#no-low-text") == (
            "C1 is free, higher up (column 3, row 1). Use it, or cancel."
        )
        assert _intents(tmp_path, "BIG00002") == []
        await kiosk.snap("no-low")
        await kiosk.tap("Cancel")
        await kiosk.screen("courier")
        assert _intents(tmp_path, "BIG00002") == []
        assert await _low(kiosk) == ("true", True)

        # Asked again, the courier takes C1 after all.
        await kiosk.type_on("barcode-pad", "BIG00003")
        await kiosk.tap("Drop off")
        await kiosk.page.click("#sizes button[data-size=L]")
        await kiosk.screen("no-low")
        await kiosk.tap("Use C1")
        assert await kiosk.opened_door() == "C1"
        assert _intents(tmp_path, "BIG00003") == ["C1"]

        # The same over the API: the question is a state of the drop-off, not an error.
        daemon = kiosk.daemon
        _, login = await daemon.call("POST", "/api/courier/login", {"code": "1234"})
        token = login["token"]
        body = {"barcode": "BIG00004", "size": "L", "prefer_low": True}
        status, flow = await daemon.call("POST", "/api/dropoffs", body, token)
        assert (status, flow["state"], flow["compartment"]) == (201, "no_low", None)
        assert (flow["error"]["code"], flow["error"]["compartment"]) == ("no_low_compartment", "C2")
        path = f"/api/dropoffs/{flow['id']}/any-height"
        status, answer = await daemon.call("POST", path, {"size": "L"}, token)
        assert (status, answer["error"]["code"]) == (400, "unknown_field")
        assert _intents(tmp_path, "BIG00004") == []
        status, flow = await daemon.call("POST", path, {}, token)
        assert (status, flow["state"], flow["compartment"]) == (200, "opening", "C2")
        status, answer = await daemon.call("POST", path, {}, token)
        assert (status, answer["error"]["code"]) == (409, "wrong_state")
        assert _intents(tmp_path, "BIG00004") == ["C2"]


async def test_a_compartment_taken_before_the_answer_is_asked_about_again(
    tmp_path, browser
) -> None:
    """The screen named C1; another courier's parcel went into C1 before "Use C1" was
    tapped: no door opens, and the screen asks again naming C2, whose door then opens."""
    async with demo_kiosk(tmp_path, browser) as kiosk:
        daemon = kiosk.daemon
        assert await _store_low(daemon, "LOW00001") == "A4"
        assert await _store_low(daemon, "LOW00002") == "B4"
        await kiosk.log_in()
        await kiosk.tap(LOW)
        await kiosk.type_on("barcode-pad", "BIG00010")
        await kiosk.tap("Drop off")
        await kiosk.page.click("#sizes button[data-size=L]")
        await kiosk.screen("no-low")
        await kiosk.shows("#no-low-use", "Use C1")
        events = await daemon.events(after=0)
        _, login = await daemon.call("POST", "/api/courier/login", {"code": "1234"})
        body = {"barcode": "OTHER0001", "size": "L"}
        _, other = await daemon.call("POST", "/api/dropoffs", body, login["token"])
        assert other["compartment"] == "C1"
        await events.flow(other["id"], "open")
        await daemon.call("POST", "/api/demo/doors/C1/close")
        await events.flow(other["id"], "stored")
        await events.close()
        await kiosk.tap("Use C1")
        await kiosk.shows("#no-low-use", "Use C2")
        await kiosk.shows(
            "#no-low-text", "C2 is free, higher up (column 3, row 2). Use it, or cancel."
        )
        assert await kiosk.page.is_visible("#screen-no-low")
        assert _intents(tmp_path, "BIG00010") == []
        await kiosk.tap("Use C2")
        assert await kiosk.opened_door() == "C2"
        assert _intents(tmp_path, "BIG00010") == ["C2"]


def _compartment(state: Path, comp_id: str) -> tuple[str, str | None]:
    with sqlite3.connect(state / "lockerd.db") as db:
        row = db.execute(
            "SELECT state, reason FROM compartments WHERE id = ?", (comp_id,)
        ).fetchone()
    return row[0], row[1]


async def _cancel_at_open_door(kiosk: Kiosk) -> str:
    """A courier cancels a drop-off at its open door (the demo's doors spring ajar): the
    "Close the door" screen; the compartment."""
    await kiosk.log_in()
    await kiosk.type_on("barcode-pad", "JJD0001")
    await kiosk.tap("Drop off")
    door = await kiosk.opened_door()
    await kiosk.shows("#door-title", f"Compartment {door} is open")
    await kiosk.tap("Cancel")
    await kiosk.shows("#door-title", f"Close the door of {door}")
    return door


async def test_cancelled_at_an_open_door_the_courier_is_asked_to_shut_it(tmp_path, browser) -> None:
    """The doors spring ajar as their latch releases: cancelled then, the page asks for
    the door to be shut, and the compartment is free only once it is."""
    async with demo_kiosk(tmp_path, browser) as kiosk:
        door = await _cancel_at_open_door(kiosk)
        await kiosk.shows(
            "#door-text",
            "The drop-off is cancelled. Take the parcel out and push the door shut. If it will"
            " not shut, touch “The door will not shut”: the compartment will be checked."
            " If you need help, call +49 30 1234567 (demo).",
        )
        for button in ("#door-cancel", "#door-doesnt-fit", "#door-not-open"):
            assert not await kiosk.page.locator(button).is_visible()
        await kiosk.snap("door-closing")
        assert _compartment(tmp_path, door) == ("open", None)
        await kiosk.person(door, "close")
        await kiosk.screen("courier")
        assert _compartment(tmp_path, door) == ("free", None)
        # Shut, the latch catches (once the pulse is over, if it was shut that fast).
        await kiosk.daemon.sim_bank(
            lambda cells: next(c for c in cells if c["id"] == door)["sim"]["latched"]
        )
