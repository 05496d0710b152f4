"""The kiosk's status is rebuilt from the store only when what it shows of the bank
changed (issue 16: the kiosk under load). A wrong pickup code commits a refusal and
its event but moves no compartment or parcel: neither it nor the next status reads
the bank's rows or the parcels' code lengths, and the status still gives the newest
event's number."""

from __future__ import annotations

import pytest

from lockerd.errors import LockerError


async def test_a_wrong_code_does_not_rebuild_the_bank_view(rig) -> None:
    reads = rig.locker.reads
    await reads.snapshot()
    statements: list[str] = []
    rig.store.db.conn.set_trace_callback(statements.append)
    try:
        with pytest.raises(LockerError):
            await rig.locker.pickups.code("00000000")
        # The code lengths the keypad takes are the status's, not read per code typed.
        assert not [s for s in statements if "code_length" in s]
        newest = rig.store.journal.last_seq()
        statements.clear()
        snap = await reads.snapshot()
    finally:
        rig.store.db.conn.set_trace_callback(None)
    assert not [s for s in statements if "compartments" in s]
    assert snap.last_seq == newest
    assert rig.store.journal.events(newest - 1)[-1]["type"] == "pickup.denied"


async def test_a_door_change_of_the_store_rebuilds_it(rig) -> None:
    reads = rig.locker.reads
    before = await reads.snapshot()
    with rig.store.context.change() as conn:
        rig.store.compartments.set(conn, "S1", "out_of_service", "test")
    after = await reads.snapshot()
    assert before.compartments[0]["state"] == "free"
    assert after.compartments[0]["state"] == "out_of_service"
