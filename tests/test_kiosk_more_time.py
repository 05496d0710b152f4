"""The "More time" switch in headless Chromium: the page tells the server when the visit
begins, the server gives the person longer at the door (its journal shows it), the
offers after a pickup last as long, and messages stay long enough to read without
switching the visit's settings off while the person is still there."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tests.browser import Kiosk, demo_config
from tests.daemon import Daemon
from tests.test_kiosk_resident import _drop, _open, _said_twice_it_did_not_open, _stored, _type_code

SMALL = (800, 480)


async def _more_time(kiosk: Kiosk) -> None:
    await kiosk.tap("More time")
    assert await kiosk.button("More time").get_attribute("aria-pressed") == "true"


async def _with_clock(browser: Any, daemon: Daemon) -> Kiosk:
    page = await browser.new_page(viewport={"width": SMALL[0], "height": SMALL[1]})
    await page.clock.install()
    return await Kiosk(page, daemon).open()


async def _pickup(kiosk: Kiosk, code: str) -> dict[str, Any]:
    """The code typed; the pickup as the server answered it."""
    page = kiosk.page
    async with page.expect_response(lambda r: r.url.endswith("/api/pickups")) as answer:
        await _type_code(kiosk, code)
    response = await answer.value
    assert response.request.post_data_json["more_time"] is True
    return dict(await response.json())


async def test_the_server_waits_longer_for_the_door_of_a_person_with_more_time(
    tmp_path: Path, browser: Any
) -> None:
    stored = await _stored(tmp_path, "JJD0001")
    config = demo_config(tmp_path, door_springs="false", pickup_door_open_s=2)
    async with Daemon(config, "--state-dir", str(tmp_path)) as daemon:
        events = await daemon.events(after=0)
        kiosk = await _open(browser, daemon, *SMALL)
        await _more_time(kiosk)
        comp, code = stored["JJD0001"]
        flow = await _pickup(kiosk, code)
        assert (flow["more_time"], flow["open_within_s"]) == (True, 6)
        await kiosk.page.wait_for_selector("#door-progress:not([hidden])")
        assert await kiosk.page.get_attribute("#door-progress", "aria-label") == (
            "The door has 6 seconds to open"
        )
        pulsed = await events.event("lock.pulsed", compartment=comp, attempt=1)
        ended = await events.event("door.not_opened", compartment=comp)
        assert ended["at"] - pulsed["at"] >= 6, "the journal shows the three-fold wait"
        await kiosk.shows("#message-text", re.compile("not opened in time"))
        await events.close()


async def test_offers_and_messages_last_for_a_person_with_more_time(
    tmp_path: Path, browser: Any
) -> None:
    config = demo_config(tmp_path)  # reopen_grace_s = 20, idle_s = 60
    async with Daemon(config, "--state-dir", str(tmp_path)) as daemon:
        stored = await _drop(daemon, "JJD0001")
        kiosk = await _with_clock(browser, daemon)
        page = kiosk.page
        await _more_time(kiosk)
        comp, code = stored["JJD0001"]
        flow = await _pickup(kiosk, code)
        assert flow["more_time"] is True
        await kiosk.shows("#door-title", f"Compartment {comp} is open")
        await daemon.call("POST", f"/api/demo/doors/{comp}/close")
        await kiosk.screen("message")
        await page.wait_for_selector("#message-reopen:not([hidden])")
        await page.clock.fast_forward(30_000)  # past the 20 s grace, inside three times it
        assert await page.is_visible("#message-reopen")
        assert await page.is_visible("#screen-message")
        await page.clock.fast_forward(31_000)  # the grace (60 s) is over: home
        await kiosk.screen("home")
        # Still the same person's visit: the switch stays on until the idle timeout.
        assert await kiosk.button("More time").get_attribute("aria-pressed") == "true"
        await page.clock.fast_forward(3 * 60_000 + 2_000)
        assert await kiosk.button("More time").get_attribute("aria-pressed") == "false"


async def test_a_long_message_stays_long_enough_to_read(tmp_path: Path, browser: Any) -> None:
    stored = await _stored(tmp_path, "JJD0001")
    config = demo_config(tmp_path, door_springs="false", pickup_door_open_s=30)
    async with Daemon(config, "--state-dir", str(tmp_path)) as daemon:
        kiosk = await _with_clock(browser, daemon)
        page = kiosk.page
        await _more_time(kiosk)
        comp, code = stored["JJD0001"]
        await _pickup(kiosk, code)
        await _said_twice_it_did_not_open(kiosk)
        await kiosk.shows("#message-text", re.compile(f"Compartment {comp} did not open"))
        length = len(await kiosk.text("#message-text"))
        assert length > 150
        # A tenth of a second a character, three times over: well past the old 8 s.
        await page.clock.fast_forward(3 * 100 * length - 2_000)
        assert await page.is_visible("#screen-message")
        await page.clock.fast_forward(4_000)
        await kiosk.screen("home")
        assert await kiosk.button("More time").get_attribute("aria-pressed") == "true"


async def test_the_unreadable_scan_note_stays_longer_with_more_time(
    tmp_path: Path, browser: Any
) -> None:
    """The event stream tells the page of a scan it could not use (``scan.rejected``: the
    demo's scanners only send usable text, so the stream is passed through a route that
    can add one)."""
    async with Daemon(demo_config(tmp_path), "--state-dir", str(tmp_path)) as daemon:
        page = await browser.new_page(viewport={"width": SMALL[0], "height": SMALL[1]})
        await page.clock.install()
        streams: list[Any] = []

        def through(ws: Any) -> None:
            ws.connect_to_server()
            streams.append(ws)

        await page.route_web_socket(re.compile(r".*/api/events.*"), through)
        kiosk = await Kiosk(page, daemon).open()
        await _more_time(kiosk)
        streams[-1].send('{"type": "scan.rejected", "source": "handheld", "reason": "empty"}')
        await page.wait_for_selector("#toast:not([hidden])")
        await page.clock.fast_forward(10_000)  # more than the 4 s it had
        assert await page.is_visible("#toast")
        await page.clock.fast_forward(3_000)
        await page.wait_for_selector("#toast", state="hidden")
