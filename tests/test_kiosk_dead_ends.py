"""Every refusal the kiosk can show is either one the person gets past on their own
(kiosk.js ``TRY_AGAIN``: type again, choose another size, close the door first) or a
dead end, and a dead end carries the configured support contact (``FOR_SUPPORT``). The
refusals are found in the code, not listed by hand: the daemon's error codes, the flow
errors its machines set, the page's own, and every error text in the catalogue."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

from lockerd.flows import State
from lockerd.flows.machine import MISMATCH
from tests.browser import Kiosk, demo_config
from tests.daemon import Daemon
from tests.test_catalogue import ENGLISH, ERROR, ROOT, STATIC
from tests.test_kiosk_courier import _cancel_at_open_door
from tests.test_kiosk_resident import CALL, SUPPORT, _open

#: Refusals only a technician sees (lockerctl prints them), never the kiosk.
TECHNICIAN_ONLY = {"control.py", "commands.py", "technician.py", "lockerctl.py"}
FLOW_ERROR = re.compile(r'"code": "([a-z_]+)"')
PAGE_ERROR = re.compile(r'\bcode: "([a-z_]+)"')


def _page_list(name: str) -> set[str]:
    script = (STATIC / "kiosk.js").read_text()
    found = re.search(rf"const {name} = \[(.*?)\];", script, re.S)
    assert found, f"kiosk.js has no {name}"
    return set(re.findall(r'"([a-z_]+)"', found.group(1)))


def kiosk_refusals() -> set[str]:
    """Every error code the kiosk page can be shown."""
    codes: set[str] = set()
    for source in (ROOT / "lockerd").rglob("*.py"):
        if source.name not in TECHNICIAN_ONLY:
            text = source.read_text()
            codes |= set(ERROR.findall(text)) | set(FLOW_ERROR.findall(text))
    for script in STATIC.glob("*.js"):
        codes |= set(PAGE_ERROR.findall(script.read_text()))
    codes |= {code for code, _ in MISMATCH.values()} | {State.NO_LARGER_SIZE.value}
    texts = {key.split(".")[1] for key in ENGLISH if key.startswith("error.")}
    return codes | (texts - {"title", "support"})


def test_the_refusals_are_found_in_the_code() -> None:
    codes = kiosk_refusals()
    found = {"send_code_used", "not_opened_in_time", "parcel_not_seen", "pickup_stuck"}
    assert found <= codes
    assert len(codes) > 60


def test_every_refusal_is_either_a_dead_end_with_the_contact_or_not_a_dead_end() -> None:
    dead, not_dead = _page_list("FOR_SUPPORT"), _page_list("TRY_AGAIN")
    codes = kiosk_refusals()
    assert not dead & not_dead, sorted(dead & not_dead)
    undecided = sorted(codes - dead - not_dead)
    assert not undecided, f"neither a dead end nor not: {undecided}"
    unknown = sorted((dead | not_dead) - codes)
    assert not unknown, f"listed but never given: {unknown}"


def _with_support(tmp_path: Path) -> Path:
    path = demo_config(tmp_path)
    text = re.sub(r"(?m)^#? ?support = .*$", f'support = "{SUPPORT}"', path.read_text())
    path.write_text(text)
    return path


async def _scan(daemon: Daemon, text: str, scanner: str = "camera") -> None:
    status, _ = await daemon.call("POST", f"/api/demo/scanners/{scanner}", {"text": text})
    assert status == 200


async def test_a_sender_at_a_dead_end_is_given_the_contact(tmp_path: Path, browser: Any) -> None:
    async with Daemon(_with_support(tmp_path), "--state-dir", str(tmp_path)) as daemon:
        kiosk = await _open(browser, daemon, 800, 480)
        page = kiosk.page
        _, issued = await daemon.call("POST", "/api/demo/send-codes", {"size": "L"})
        await kiosk.tap("Send or return a parcel")
        await kiosk.screen("send")
        await _scan(daemon, issued["code"])
        await page.wait_for_selector("#door-doesnt-fit:not([hidden])")
        await kiosk.tap("It does not fit")
        await kiosk.screen("message")
        await kiosk.shows("#message-title", "No larger compartment")
        text = await kiosk.text("#message-text")
        assert text.endswith(CALL), text
        await kiosk.tap("OK")
        await kiosk.screen("home")
        # Sent after all: the same code once more is used up, a dead end.
        _, issued = await daemon.call("POST", "/api/demo/send-codes", {"size": "S"})
        await kiosk.tap("Send or return a parcel")
        await _scan(daemon, issued["code"])
        comp = await kiosk.opened_door()
        await daemon.call("POST", f"/api/demo/doors/{comp}/put")
        await daemon.call("POST", f"/api/demo/doors/{comp}/close")
        await kiosk.shows("#message-title", "Thank you!")
        await kiosk.tap("OK")
        await kiosk.tap("Send or return a parcel")
        await _scan(daemon, issued["code"], "handheld")  # the camera still sees it: one read
        await kiosk.screen("message")
        text = await kiosk.text("#message-text")
        assert text == f"This send code has already been used. {CALL}"


def _compartment(state: Path, comp: str) -> tuple[str, str | None]:
    with sqlite3.connect(state / "lockerd.db") as db:
        row = db.execute("SELECT state, reason FROM compartments WHERE id = ?", (comp,)).fetchone()
    return row[0], row[1]


async def test_a_door_that_will_not_shut_has_a_way_out(tmp_path: Path, browser: Any) -> None:
    async with Daemon(_with_support(tmp_path), "--state-dir", str(tmp_path)) as daemon:
        kiosk = await _open(browser, daemon, 800, 480)
        door = await _cancel_at_open_door(kiosk)
        await kiosk.shows(
            "#door-text",
            "The drop-off is cancelled. Take the parcel out and push the door shut. If it will"
            " not shut, touch “The door will not shut”: the compartment will be checked."
            f" {CALL}",
        )
        await kiosk.fits("door-closing-leave")
        await kiosk.tap("The door will not shut")
        await kiosk.screen("message")
        await kiosk.shows(
            "#message-text",
            f"Compartment {door} was left open; it will be checked before it is used again."
            f" Please tell the service team that its door would not shut. {CALL}",
        )
        assert _compartment(tmp_path, door) == ("needs_check", "not_shut")
        await kiosk.tap("OK")
        await kiosk.screen("courier")  # the courier goes on with the next parcel


async def test_nobody_at_a_door_left_unshut_the_kiosk_goes_home(
    tmp_path: Path, browser: Any
) -> None:
    async with Daemon(_with_support(tmp_path), "--state-dir", str(tmp_path)) as daemon:
        page = await browser.new_page(viewport={"width": 800, "height": 480})
        await page.clock.install()
        kiosk = await Kiosk(page, daemon).open()
        door = await _cancel_at_open_door(kiosk)
        await page.clock.fast_forward(62_000)  # idle_s = 60
        await kiosk.screen("home")
        assert _compartment(tmp_path, door) == ("needs_check", "not_shut")
