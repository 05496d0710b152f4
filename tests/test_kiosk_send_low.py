"""A sender who needs a lower compartment asks for one on the send screen, as a courier
does: the same toggle, the same look, off again once the visit ends (headless Chromium)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from tests.browser import Kiosk, demo_config
from tests.daemon import Daemon
from tests.test_kiosk_courier import GREEN
from tests.test_kiosk_dead_ends import _scan
from tests.test_kiosk_resident import _open

LOW = "I need a lower compartment"


async def _look(kiosk: Kiosk) -> tuple[str | None, bool]:
    button = kiosk.button(LOW, "#screen-send")
    background = await button.evaluate("(b) => getComputedStyle(b).backgroundColor")
    return await button.get_attribute("aria-pressed"), background == GREEN


#: The demo's low-reach compartments (config/demo.toml ``low_reach = true``).
LOW_REACH = {"A3", "A4", "B3", "B4"}


def _stored_in(state: Path, reference: str) -> str:
    """Where the database says the outbound parcel ``reference`` waits for its carrier."""
    with sqlite3.connect(state / "lockerd.db") as db:
        (comp,) = db.execute(
            "SELECT compartment_id FROM outbound WHERE reference = ?"
            " AND state = 'awaiting_collection'",
            (reference,),
        ).fetchone()
    return str(comp)


async def _send(kiosk: Kiosk, state: Path, size: str) -> tuple[str, bool]:
    """A send code of ``size`` shown to the camera on the send screen: its parcel put in
    and the door shut; the compartment the database has it in, and whether the page
    asked for a low one."""
    daemon = kiosk.daemon
    _, issued = await daemon.call("POST", "/api/demo/send-codes", {"size": size})
    async with kiosk.page.expect_request(lambda r: r.url.endswith("/api/sends")) as sent:
        await _scan(daemon, issued["code"])
    comp = await kiosk.opened_door()
    body = (await sent.value).post_data_json
    await kiosk.shows("#door-title", f"Compartment {comp} is open")
    await daemon.call("POST", f"/api/demo/doors/{comp}/put")
    await daemon.call("POST", f"/api/demo/doors/{comp}/close")
    await kiosk.screen("message")
    await kiosk.shows(
        "#message-text", f"Your parcel is in compartment {comp}. A courier will collect it."
    )
    assert _stored_in(state, issued["reference"]) == comp
    return comp, body["prefer_low"]


async def test_a_sender_who_asks_gets_a_low_compartment(tmp_path: Path, browser: Any) -> None:
    async with Daemon(demo_config(tmp_path), "--state-dir", str(tmp_path)) as daemon:
        kiosk = await _open(browser, daemon, 800, 480)
        await kiosk.tap("Send or return a parcel")
        await kiosk.screen("send")
        assert await _look(kiosk) == ("false", False)
        await kiosk.tap(LOW, "#screen-send")
        assert await _look(kiosk) == ("true", True)
        await kiosk.fits("send-low-800x480")
        # Size S: no S compartment is low, so the smallest low one that fits (an M).
        comp, asked = await _send(kiosk, tmp_path, "S")
        assert asked and comp in LOW_REACH, comp
        await kiosk.tap("OK")  # the visit is over: the next sender starts with it off
        await kiosk.screen("home")
        await kiosk.tap("Send or return a parcel")
        assert await _look(kiosk) == ("false", False)
        comp, asked = await _send(kiosk, tmp_path, "S")
        assert not asked and comp not in LOW_REACH, comp
