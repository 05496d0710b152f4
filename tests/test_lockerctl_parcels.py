"""``lockerctl parcels extend`` and ``returned`` as a technician types them: by the
barcode, or by the id ``parcels list`` prints given as ``--id N`` (a barcode is never
read as an id), an expired parcel still in its compartment given more time, and each
refusal saying why; ``parcels show`` takes either, refusing a number that is both."""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any

import pytest

from lockerd.errors import Refused
from lockerd.sync.apply import apply_command
from lockerd.sync.commands import Command
from tests.ctl_rig import control
from tests.daemon import ROOT
from tests.rig import Rig

EXPIRY = 72 * 3600 + 61  # past the test bank's pickup deadline


def parcel(rig: Rig, barcode: str) -> Any:
    return next(p for p in reversed(rig.store.parcels.all()) if p.barcode == barcode)


def rows(rig: Rig) -> tuple[object, ...]:
    """What a refusal must leave as it was: parcels, compartments, journal, audit."""
    conn = rig.store.db.conn
    return tuple(
        conn.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
        for table in ("parcels", "compartments", "journal", "audit")
    )


async def test_an_expired_parcel_still_inside_is_extended_by_the_id_parcels_list_prints(
    rig,
) -> None:
    comp = await rig.stored("JJD0001", "S")
    code = rig.code_for("JJD0001")
    await rig.jump(EXPIRY)
    expired = parcel(rig, "JJD0001")
    assert (expired.state, expired.compartment_id) == ("expired", comp)
    async with control(rig) as ctl:
        _, listed, _ = await ctl("parcels", "list", "--state", "expired")
        assert listed.split()[:2] == [str(expired.id), "JJD0001"]
        got, out, err = await ctl(
            "parcels",
            "extend",
            "--id",
            str(expired.id),
            "--hours",
            "24",
            "--reason",
            "resident away",
        )
        assert (got, err) == (0, ""), err
        assert "state" in out and "stored" in out
        [entry] = await ctl.json("audit")
    extended = parcel(rig, "JJD0001")
    assert (extended.id, extended.state, extended.compartment_id) == (expired.id, "stored", comp)
    assert extended.pickup_by == rig.clock.time() + 24 * 3600
    [event] = [e for e in rig.store.journal.events() if e["type"] == "parcel.extended"]
    assert event["data"] == {
        "parcel": expired.id, "barcode": "JJD0001",
        "pickup_by": extended.pickup_by, "state": "stored",
    }  # fmt: skip
    assert (entry["action"], entry["target"], entry["reason"]) == (
        "extend", "JJD0001", "resident away",
    )  # fmt: skip
    flow = await rig.api.pickups.code(code)  # the resident's code opens it again
    assert flow.compartment == comp


async def test_the_back_office_extends_an_expired_parcel_still_inside_alike(rig) -> None:
    comp = await rig.stored("JJD0001", "S")
    await rig.jump(EXPIRY)
    pickup_by = int(rig.clock.time()) + 3600
    command = Command("c-1", "parcel.extend", int(time.time()) + 600,
                      {"barcode": "JJD0001", "pickup_by": pickup_by})  # fmt: skip
    assert apply_command(rig.store, command) == "applied"
    extended = parcel(rig, "JJD0001")
    assert (extended.state, extended.compartment_id, extended.pickup_by) == (
        "stored", comp, pickup_by,
    )  # fmt: skip


async def test_returned_takes_the_id_parcels_list_prints(rig) -> None:
    comp = await rig.stored("JJD0001", "S")
    stored = parcel(rig, "JJD0001")
    async with control(rig) as ctl:
        got, _, err = await ctl(
            "parcels", "returned", "--id", str(stored.id), "--reason", "sender asked"
        )
        assert (got, err) == (0, "")
        [entry] = await ctl.json("audit")
    assert parcel(rig, "JJD0001").state == "returned"
    assert rig.state(comp) == "needs_check"
    assert (entry["action"], entry["target"]) == ("returned", "JJD0001")


async def test_extend_and_returned_say_why_they_refuse_and_change_nothing(rig) -> None:
    comp = await rig.stored("PCL0001", "S")
    await rig.api.pickups.code(rig.code_for("PCL0001"))
    await rig.person_opens(comp, take_out=True)
    await rig.person_closes(comp)
    collected = parcel(rig, "PCL0001")
    expected = parcel(rig, "EXP0001")  # announced by the demo seed, not delivered
    before = rows(rig)
    async with control(rig) as ctl:
        for action in (("extend", "--hours", "1"), ("returned",)):
            verb, *more = action
            for name, says, code_ in (
                (["NOPE0001"], 'no parcel has barcode "NOPE0001" (unknown_parcel)', "unknown"),
                (["9999"], 'no parcel has barcode "9999"; an id is given as --id 9999'
                 " (unknown_parcel)", "unknown"),
                (["--id", "9999"], "no parcel has id 9999 (unknown_parcel)", "unknown id"),
                (["--id", str(collected.id)], "parcel PCL0001 is collected, not in the locker"
                 " (not_in_locker)", "collected"),
                (["EXP0001"], "parcel EXP0001 is expected, not in the locker yet"
                 " (not_in_locker)", "expected"),
                (["--id", str(expected.id)], "parcel EXP0001 is expected, not in the locker yet"
                 " (not_in_locker)", "expected"),
            ):  # fmt: skip
                got, out, err = await ctl("parcels", verb, *name, *more, "--reason", "x")
                assert (got, out) == (1, ""), (verb, code_)
                assert err == f"lockerctl: {says}\n", (verb, code_)
    assert rows(rig) == before


def test_the_back_offices_refusal_is_unchanged(rig) -> None:
    """Sync's rejection reason for a parcel not in the locker (docs/sync-protocol.md)."""
    with rig.store.context.change() as conn, pytest.raises(Refused) as refused:
        rig.store.parcels.extend(conn, "NOPE1", 1_900_000_000)
    assert refused.value.message == "parcel NOPE1 is not in the locker"


async def test_a_mistyped_numeric_barcode_changes_no_parcel(rig) -> None:
    """A barcode typed wrong that happens to be a stored parcel's id is not that parcel:
    extend and returned take an id only as --id N."""
    await rig.stored("JJD0001", "S")
    stored = parcel(rig, "JJD0001")
    typo = str(stored.id)  # no barcode is this number, but a stored parcel's id is
    before = rows(rig)
    async with control(rig) as ctl:
        for verb, *more in (("extend", "--hours", "1"), ("returned",)):
            got, out, err = await ctl("parcels", verb, typo, *more, "--reason", "x")
            assert (got, out) == (1, ""), verb
            assert err == (
                f'lockerctl: no parcel has barcode "{typo}"; an id is given as --id {typo}'
                " (unknown_parcel)\n"
            ), verb
    assert rows(rig) == before
    assert parcel(rig, "JJD0001").state == "stored"


def ids_from(rig: Rig, start: int) -> None:
    """The next parcel's id is ``start`` (a cancelled copy of EXP0001 just before it)."""
    cols = [row[1] for row in rig.store.db.conn.execute("PRAGMA table_info(parcels)")]
    rest = ", ".join(c for c in cols if c not in ("id", "state"))
    with rig.store.context.change() as conn:
        conn.execute(
            f"INSERT INTO parcels (id, state, {rest}) SELECT ?, 'cancelled', {rest}"
            " FROM parcels WHERE barcode = 'EXP0001'",
            (start - 1,),
        )


async def test_show_takes_the_printed_id_and_refuses_a_number_that_is_both(rig) -> None:
    ids_from(rig, 1234)  # a barcode is at least 4 characters
    await rig.stored("JJD0001", "S")
    first = parcel(rig, "JJD0001")
    await rig.stored(str(first.id), "S")  # a barcode that is the first parcel's id
    second = parcel(rig, str(first.id))
    before = rows(rig)
    async with control(rig) as ctl:
        assert (await ctl.json("parcels", "show", str(second.id)))["barcode"] == str(first.id)
        padded = f"0{first.id}"  # not an id as parcels list prints it, and no barcode
        got, out, err = await ctl("parcels", "show", padded)
        assert (got, out, err) == (1, "", f"lockerctl: no parcel '{padded}' (unknown_parcel)\n")
        got, out, err = await ctl("parcels", "show", str(first.id))
        assert (got, out) == (2, "")
        assert err == (
            f'lockerctl: "{first.id}" is both the barcode of parcel {second.id} and the id of'
            f" parcel JJD0001: give --barcode {first.id} or --id {first.id} (ambiguous_parcel)\n"
        )
        by_id = await ctl.json("parcels", "show", "--id", str(first.id))
        by_barcode = await ctl.json("parcels", "show", "--barcode", str(first.id))
        # extend takes the barcode: the second parcel, never the first by its id
        got, _, err = await ctl("parcels", "extend", str(first.id), "--hours", "1", "--reason", "x")
        assert (got, err) == (0, "")
    assert (by_id["barcode"], by_barcode["barcode"]) == ("JJD0001", str(first.id))
    assert rows(rig)[0][:-1] == before[0][:-1]  # the first parcel is as it was
    assert parcel(rig, str(first.id)).pickup_by == rig.clock.time() + 3600


@pytest.mark.parametrize(
    ("action", "says"),
    [
        ("show", "its barcode, or its id as parcels list prints it (a number that is both"),
        ("extend", "its barcode (never read as an id: give an id as --id N)"),
        ("returned", "its barcode (never read as an id: give an id as --id N)"),
    ],
)
def test_help_says_how_a_parcel_is_named(action, says) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "lockerd.lockerctl", "parcels", action, "--help"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert says in " ".join(out.split()) and "--id N" in out
