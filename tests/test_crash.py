"""Kill the process between the steps of a drop-off (or of a member of the public's
send); after restart the invariants hold.

Each case runs a real process that dies (``os._exit``) at one step, then
restarts the locker on the same database with the physical world as a
person left it, and checks DESIGN.md invariants 1-3: no live intent is left
to pulse on, the journal has no gaps, and a compartment that may hold a
parcel is not offered as free.
"""

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from lockerd.domain import Outbound
from lockerd.errors import FlowError
from tests import crash_drill
from tests.rig import Rig

ROOT = Path(__file__).resolve().parent.parent
#: The technician who looks inside S1 after the restart (actor, origin, reason).
WHO = ("tech", "local", "looked inside S1")

# point, what the person did after the crash, expected compartment state
CASES = [
    ("after_intent", "nothing", "needs_check"),
    ("after_pulse", "nothing", "needs_check"),
    ("after_pulse", "put the parcel in and closed", "needs_check"),
    ("after_door_opened", "left it open", "needs_check"),
    ("after_door_opened", "put the parcel in and closed", "needs_check"),
    ("inside_store_transaction", "closed", "needs_check"),
    ("after_stored", "closed", "occupied"),
]


@pytest.mark.parametrize("kind", ["dropoff", "send"])
@pytest.mark.parametrize(("point", "person", "expected"), CASES)
async def test_restart_after_crash(tmp_path, point, person, expected, kind) -> None:
    run = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "tests.crash_drill", str(tmp_path), point, kind],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 17, run.stdout + run.stderr

    rig = Rig(crash_drill.config(tmp_path))
    door = rig.door("S1")
    if person != "nothing":
        door.is_open = True  # pulled open under the pulse before the crash
    if person in ("put the parcel in and closed", "closed"):
        door.close()
    await rig.start()
    try:
        assert rig.state("S1") == expected
        intents = rig.store.db.conn.execute("SELECT state FROM unlock_intents").fetchall()
        assert {row[0] for row in intents} <= {"interrupted", "done"}
        seqs = [e["seq"] for e in rig.store.journal.events()]
        assert seqs == list(range(1, len(seqs) + 1))
        assert rig.store.db.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert rig.store.db.conn.execute("PRAGMA foreign_key_check").fetchall() == []
        if kind == "send":
            await _send_after_restart(rig, expected, found="closed" in person)
        else:
            _dropoff_after_restart(rig, expected, found="closed" in person)
        flow = await rig.api.dropoff_scan(await rig.courier(), "AFTER001", "S")
        assert flow.compartment == "S2", "S1 may hold a parcel: never offered as free"
        assert rig.unlocks_of("S1") == 0
    finally:
        await rig.stop()


def _dropoff_after_restart(rig: Rig, expected: str, found: bool) -> None:
    """A parcel is stored only by a completed door cycle. After one cut short, S1 is not
    put back in use until a technician has looked inside: the parcel is there (``found``:
    stored in S1 with a pickup code, as the door closing would have), or not."""
    stored = [p for p in rig.store.parcels.all() if p.barcode == "CRASH001"]
    if expected == "occupied":
        assert stored[0].state == "stored" and stored[0].compartment_id == "S1"
        return
    assert not stored, "a parcel is stored only by a completed door cycle"
    with pytest.raises(FlowError) as info:
        rig.store.service.enable("S1", *WHO)
    assert info.value.code == "deposit_unresolved" and "parcel CRASH001" in info.value.message
    if found:
        assert rig.store.service.found("S1", *WHO) == "CRASH001"
        (parcel,) = [p for p in rig.store.parcels.all() if p.barcode == "CRASH001"]
        assert (parcel.state, parcel.compartment_id) == ("stored", "S1")
        assert parcel.courier_id == "c1" and "parcel.stored" in rig.event_types()
    else:
        assert rig.store.service.empty("S1", *WHO) == "CRASH001"
        assert all(p.state == "expected" for p in rig.store.parcels.all())
    assert rig.store.intents.cut_short_at(rig.store.db.conn, "S1") is None


async def _send_after_restart(rig: Rig, expected: str, found: bool) -> None:
    """A deposit is awaiting collection only after a completed door cycle. One cut short
    holds its code until a technician has looked inside S1: the parcel is there
    (``found``: it awaits collection in S1), or not (the code deposits again, at another
    door: S1 is still to be checked)."""
    waiting = rig.store.outbound.all(Outbound.AWAITING_COLLECTION)
    if expected == "occupied":
        assert [(p.reference, p.compartment_id) for p in waiting] == [("SEND0001", "S1")]
        with pytest.raises(FlowError) as info:
            await rig.run(rig.locker.sends.start(crash_drill.send_code(rig)))
        assert info.value.code == "send_code_used"
        return
    assert waiting == []
    barcode = rig.store.db.conn.execute(
        "SELECT barcode FROM unlock_intents WHERE compartment_id = 'S1'"
    ).fetchone()[0]
    assert barcode == "SEND0001"
    with pytest.raises(FlowError) as info:
        await rig.run(rig.locker.sends.start(crash_drill.send_code(rig)))
    assert info.value.code == "send_code_in_check"
    if found:
        assert rig.store.service.found("S1", *WHO) == "SEND0001"
        waiting = rig.store.outbound.all(Outbound.AWAITING_COLLECTION)
        assert [(p.reference, p.compartment_id) for p in waiting] == [("SEND0001", "S1")]
        return
    assert rig.store.service.empty("S1", *WHO) == "SEND0001"
    again = await rig.run(rig.locker.sends.start(crash_drill.send_code(rig)))
    assert again.compartment == "S2"
    await rig.run(rig.locker.sends.cancel(again.id))
