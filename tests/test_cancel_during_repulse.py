"""The courier says "the door did not open" (the status-checked re-pulse under way) and
cancels before its answer: the cancel wins, the late answer changes nothing, and the
"did not open" request answers with the cancelled flow (no 500 from a released intent)."""

from __future__ import annotations

import asyncio


async def test_cancel_while_the_repulse_is_in_flight(rig) -> None:
    token = await rig.courier()
    rig.nobody_at("S1")
    flow = await rig.api.dropoff_scan(token, "PCL1", "S")
    assert flow.compartment == "S1"
    said = asyncio.ensure_future(rig.locker.dropoff_door_did_not_open(token, flow.id))
    await asyncio.sleep(0)
    cancel = asyncio.ensure_future(rig.locker.dropoff_cancel(token, flow.id))
    for _ in range(400):
        if said.done() and cancel.done():
            break
        await rig.clock.advance(0.05)
    for _ in range(600):
        await rig.clock.advance(0.1)
    assert said.exception() is None, f"did-not-open request failed: {said.exception()!r}"
    assert cancel.exception() is None
    assert said.result() is flow and cancel.result() is flow
    assert flow.state == "cancelled" and rig.state("S1") == "free"
    assert rig.unlocks_of("S1") == 1, "no re-pulse under a released intent"
    assert not rig.store.intents.live("S1")
    events = rig.event_types()
    assert "compartment.out_of_service" not in events and "parcel.stuck" not in events
