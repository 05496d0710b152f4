"""Every time lockerctl prints: local time for people, ISO 8601 with its offset in JSON.

The daemon keeps and sends Unix seconds (docs/sync-protocol.md); lockerctl converts
them at its output only, wherever they are: a parcel's deadline and its ``*_at``
fields, an event's ``at`` and the times inside its data, the sync link's last
success. A populated locker (parcels expected, stored, expired, collected, returned,
one sent, a lockout, audited actions) is read with every command that prints data,
as a person (TZ=Europe/Berlin) and as a script (``--json``).
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from lockerd.ctltext import as_json, local_time
from lockerd.errors import FlowError
from tests.ctl_rig import control
from tests.rig import Rig
from tests.test_lockerctl import Ctl
from tests.test_send import code, sending, sent

BERLIN = ZoneInfo("Europe/Berlin")
#: A number that reads as Unix seconds (2001-09-09 to 2286-11-20), alone in the text.
EPOCH = re.compile(r"(?<![\w.])\d{10}(?:\.\d+)?(?![\w.])")
#: Anything that starts like a date ...
DATE = re.compile(r"\d{4}-\d\d-\d\d")
#: ... must be a whole ISO 8601 time with its offset.
ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?[+-]\d\d:\d\d")


def berlin(at: float) -> str:
    return datetime.fromtimestamp(at, BERLIN).isoformat(timespec="seconds")


async def populated(rig: Rig) -> None:
    """Parcels in every state a locker shows, a send, a lockout and audited actions."""
    await rig.stored("OLD0001", "S")
    await rig.jump(72 * 3600 + 61)  # OLD0001 expires in S1
    await rig.stored("NEW0001", "S")
    comp = await rig.stored("PCL0001", "M")
    await rig.api.pickups.code(rig.code_for("PCL0001"))
    await rig.person_opens(comp, take_out=True)
    await rig.person_closes(comp)
    await sent(rig, code(rig))
    throttle = rig.config.pickup.throttle
    for _ in range(throttle.lockout_after):
        await rig.jump(throttle.backoff_max_s)
        with pytest.raises(FlowError):  # wrong codes, then the lockout
            await rig.api.pickups.code("0" * rig.config.pickup.code_length)
    assert "pickup.locked_out" in rig.event_types()


async def technician(ctl: Ctl, rig: Rig) -> list[str]:
    """Audited actions; the ids of the parcels, as ``parcels list`` prints them."""
    ids = [str(p.id) for p in rig.store.parcels.all()]
    for args in (
        ("disable", "L1", "--reason", "hinge loose"),
        ("parcels", "extend", "NEW0001", "--hours", "24", "--reason", "on holiday"),
        ("parcels", "returned", "NEW0001", "--reason", "sender asked"),
    ):
        code_, _, err = await ctl(*args)
        assert code_ == 0, (args, err)
    return ids


def _every_command(ids: list[str]) -> list[tuple[str, ...]]:
    return [
        ("status",),
        ("events", "--limit", "1000"),
        ("parcels", "list"),
        ("parcels",),
        *[("parcels", "show", pid) for pid in ids],
        ("outbound", "list"),
        ("outbound", "show", "1"),
        ("diag",),
        ("sync",),
        ("config",),
        ("audit",),
        ("audit", "--verify"),
    ]


def _no_raw_times(value: Any, where: str) -> None:
    """No number in JSON that reads as Unix seconds, no date string but ISO 8601 with offset."""
    if isinstance(value, dict):
        for key, item in value.items():
            _no_raw_times(item, f"{where}.{key}")
    elif isinstance(value, list):
        for n, item in enumerate(value):
            _no_raw_times(item, f"{where}[{n}]")
    elif isinstance(value, int | float) and not isinstance(value, bool):
        assert not 1e9 <= value < 1e10, f"{where} is Unix seconds: {value}"
    elif isinstance(value, str) and DATE.match(value):
        assert ISO.fullmatch(value), f"{where} is not ISO 8601 with an offset: {value!r}"


def _no_raw_times_in_text(out: str, args: tuple[str, ...]) -> None:
    assert not EPOCH.findall(out), f"lockerctl {' '.join(args)} prints Unix seconds:\n{out}"
    for found in DATE.finditer(out):
        assert ISO.match(out, found.start()), f"{args}: a time without its offset:\n{out}"


@pytest.fixture
async def ctl(tmp_path, monkeypatch):
    monkeypatch.setenv("TZ", "Europe/Berlin")  # the technician's lockerctl runs in Berlin
    async with sending(tmp_path) as rig, control(rig) as ctl:
        await populated(rig)
        ids = await technician(ctl, rig)
        yield ctl, rig, ids


async def test_no_command_prints_unix_seconds_as_text_or_as_json(ctl) -> None:
    ctl, _, ids = ctl
    for args in _every_command(ids):
        got, out, err = await ctl(*args)
        assert got == 0, (args, err)
        with pytest.raises(ValueError):  # people read text, not JSON
            json.loads(out)
        _no_raw_times_in_text(out, args)
        _no_raw_times(await ctl.json(*args), " ".join(args))


async def test_followed_events_and_the_answers_to_actions_carry_no_unix_seconds(ctl) -> None:
    ctl, rig, _ = ctl
    seqs = len(rig.store.journal.events())
    for wants_json in (False, True):
        args = ("events", "--follow", "--after", "0", "--limit", str(seqs))
        got, out, err = await ctl(*args, *(("--json",) if wants_json else ()))
        assert got == 0 and len(out.splitlines()) == seqs, err
        _no_raw_times_in_text(out, args)
        for line in out.splitlines() if wants_json else []:
            _no_raw_times(json.loads(line), "followed event")
    extend = ("parcels", "extend", "OLD0001", "--hours", "1", "--reason", "more time")
    for args in (extend, ("parcels", "returned", "OLD0001", "--reason", "taken out")):
        got, out, err = await ctl(*args)
        assert got == 0, err
        _no_raw_times_in_text(out, args)
        with pytest.raises(ValueError):
            json.loads(out)
    got, out, err = await ctl("outbound", "removed", "1", "--reason", "carrier at the desk")
    assert got == 0, err
    _no_raw_times_in_text(out, ("outbound", "removed"))
    _no_raw_times(await ctl.json("outbound", "show", "1"), "outbound show")


async def test_people_read_the_times_in_their_own_zone(ctl) -> None:
    ctl, rig, _ = ctl
    parcels = {p.barcode: p for p in rig.store.parcels.all()}
    old = parcels["OLD0001"]
    assert old.pickup_by is not None and berlin(old.pickup_by).endswith("+01:00")
    code_, out, _ = await ctl("parcels", "list")
    line = next(row for row in out.splitlines() if "OLD0001" in row)
    assert code_ == 0 and berlin(old.pickup_by) in line, out  # the deadline, in the list
    code_, out, _ = await ctl("parcels", "show", str(old.id))
    assert code_ == 0 and re.search(rf"(?m)^pickup_by +{re.escape(berlin(old.pickup_by))}$", out)
    assert re.search(rf"(?m)^stored_at +{re.escape(berlin(old.stored_at or 0))}$", out), out
    shown = await ctl.json("parcels", "show", str(old.id))
    assert shown["pickup_by"] == berlin(old.pickup_by)
    stored = next(e for e in rig.store.journal.events() if e["type"] == "parcel.stored")
    code_, out, _ = await ctl("events", "--limit", "1000")
    line = next(row for row in out.splitlines() if row.startswith(f"#{stored['seq']} "))
    assert line.startswith(f"#{stored['seq']} {berlin(stored['at'])} parcel.stored ")
    assert f'"pickup_by": "{berlin(stored["data"]["pickup_by"])}"' in line
    events = await ctl.json("events", "--limit", "1000")
    [event] = [e for e in events if e["seq"] == stored["seq"]]
    assert event["data"]["pickup_by"] == berlin(stored["data"]["pickup_by"])
    [locked] = [e for e in events if e["type"] == "pickup.locked_out"]
    assert ISO.fullmatch(locked["data"]["until"])


def test_the_sync_links_last_success_is_local_iso_in_json() -> None:
    status = {"url": "https://office.example/", "ok": True, "last_error": None,
              "last_ok": 1_800_000_000.5, "failures": 0, "unsent": 0, "rounds": 3}  # fmt: skip
    shown = json.loads(as_json(status))
    assert shown == status | {"last_ok": local_time(1_800_000_000.5)}
    assert ISO.fullmatch(shown["last_ok"])
    assert json.loads(as_json({"sync": status}))["sync"]["last_ok"] == shown["last_ok"]


async def test_text_lines_end_without_padding(ctl) -> None:
    """Columns are padded between fields, never after the last (a copied line, a diff)."""
    ctl, _, ids = ctl
    for args in _every_command(ids):
        _, out, _ = await ctl(*args)
        assert [line.rstrip() for line in out.splitlines()] == out.splitlines(), args
