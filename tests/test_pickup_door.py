"""A resident's door that does not open: "the door did not open" re-pulses at once after
a status read, the wait is as short as the latch warrants, and a door that still will not
open leaves the parcel theirs, behind it, with the back office told (fake clock)."""

from __future__ import annotations

import pytest

from lockerd.errors import FlowError


def _stuck_events(rig) -> list[dict]:
    return [e["data"] for e in rig.store.journal.events() if e["type"] == "parcel.stuck"]


async def test_saying_the_door_did_not_open_repulses_at_once_after_a_status_read(rig) -> None:
    comp = await rig.stored("PCL1", "S")
    rig.nobody_at(comp)
    flow = await rig.api.pickup(rig.code_for("PCL1"))
    pulses, reads = rig.unlocks_of(comp), len(rig.sim.frames())
    started = rig.clock.monotonic()
    await rig.api.pickup_door_did_not_open(flow.id)
    assert (flow.state, flow.attempt, rig.unlocks_of(comp)) == ("opening", 2, pulses + 1)
    # Well before the door-open window: the re-pulse did not wait for the timeout.
    assert rig.clock.monotonic() - started < rig.config.timing.pickup_door_open_s
    frames = rig.sim.frames()[reads:]
    unlock = next(i for i, f in enumerate(frames) if f == rig.unlock_frames()[-1])
    assert any(f[2] != frames[unlock][2] for f in frames[:unlock]), "a status read came first"
    # The resident pulls now, while the latch is out: the door opens and the pickup goes on.
    await rig.person_opens(comp, take_out=True)
    await rig.person_closes(comp)
    assert flow.state == "collected"


async def test_a_resident_waits_the_pickup_window_not_the_couriers(rig) -> None:
    comp = await rig.stored("PCL1", "S")
    rig.door(comp).jammed = True
    flow = await rig.api.pickup(rig.code_for("PCL1"))
    window = rig.config.timing.pickup_door_open_s
    assert window < rig.config.timing.door_open_timeout_s
    assert flow.view()["open_within_s"] == window
    await rig.clock.advance(window + 0.5)
    assert (flow.state, flow.attempt) == ("opening", 2)
    await rig.clock.advance(window + 0.5)
    assert (flow.state, flow.error["code"]) == ("failed", "compartment_out_of_order")


async def test_saying_it_twice_gives_up_and_the_parcel_stays_the_residents(rig) -> None:
    comp = await rig.stored("PCL1", "S")
    rig.door(comp).jammed = True
    code = rig.code_for("PCL1")
    flow = await rig.api.pickup(code)
    await rig.api.pickup_door_did_not_open(flow.id)
    await rig.api.pickup_door_did_not_open(flow.id)
    assert (flow.state, flow.error["code"]) == ("failed", "compartment_out_of_order")
    assert rig.state(comp) == "out_of_service"
    parcel = rig.store.parcels.all()[-1]
    assert parcel.state == "stored", "the parcel stays in custody, behind its door"
    [stuck] = _stuck_events(rig)
    assert stuck == {
        "parcel": parcel.id,
        "barcode": "PCL1",
        "compartment": comp,
        "intent": stuck["intent"],
        "purpose": "pickup",
    }
    types = rig.event_types()
    assert types.index("door.jammed") < types.index("parcel.stuck")
    # Repaired: the same code opens the door, once.
    rig.door(comp).jammed = False
    await rig.api.return_to_service(comp, "tech")
    again = await rig.api.pickup(code)
    assert again.compartment == comp
    await rig.person_opens(comp, take_out=True)
    await rig.person_closes(comp)
    assert (again.state, rig.store.parcels.all()[-1].state) == ("collected", "collected")


async def test_the_door_did_not_open_is_refused_once_the_door_is_open(rig) -> None:
    comp = await rig.stored("PCL1", "S")
    flow = await rig.api.pickup(rig.code_for("PCL1"))
    await rig.person_opens(comp)
    before = rig.store.journal.events()
    with pytest.raises(FlowError) as info:
        await rig.api.pickup_door_did_not_open(flow.id)
    assert info.value.code == "wrong_state"
    assert rig.store.journal.events() == before
    assert not _stuck_events(rig)
