"""A resident's door that does not open: "the door did not open" re-pulses at once after
a status read, the wait is as short as the latch warrants, and a door that still will not
open leaves the parcel theirs, behind it, with the back office told; a door nobody opened
in time (nobody said it would not) is no fault: the pickup ends, the code opens it again
(fake clock)."""

from __future__ import annotations

import pytest

from lockerd.errors import FlowError, NotFound
from tests.rig import Rig, bank_config


def _stuck_events(rig) -> list[dict]:
    return [e["data"] for e in rig.store.journal.events() if e["type"] == "parcel.stuck"]


async def test_saying_the_door_did_not_open_repulses_at_once_after_a_status_read(rig) -> None:
    comp = await rig.stored("PCL1", "S")
    rig.nobody_at(comp)
    flow = await rig.api.pickups.code(rig.code_for("PCL1"))
    pulses, reads = rig.unlocks_of(comp), len(rig.sim.frames())
    started = rig.clock.monotonic()
    await rig.api.pickups.door_did_not_open(flow.id)
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
    flow = await rig.api.pickups.code(rig.code_for("PCL1"))
    window = rig.config.timing.pickup_door_open_s
    assert window < rig.config.timing.door_open_timeout_s
    assert flow.view()["open_within_s"] == window
    await rig.api.pickups.door_did_not_open(flow.id)
    assert (flow.state, flow.attempt) == ("opening", 2)
    assert flow.view()["open_within_s"] == window
    await rig.clock.advance(window - 0.5)
    assert flow.state == "opening"
    await rig.clock.advance(1)
    assert (flow.state, flow.error["code"]) == ("failed", "compartment_out_of_order")


def _faults(rig) -> list[str]:
    faults = ("parcel.stuck", "door.jammed", "compartment.out_of_service", "pickup.denied")
    return [t for t in rig.event_types() if t in faults]


async def test_a_slow_resident_is_no_fault_and_the_code_opens_the_door_again(rig) -> None:
    comp = await rig.stored("PCL1", "S")
    rig.nobody_at(comp)  # still on the way: nobody pulls while the latch is out
    code = rig.code_for("PCL1")
    failures = rig.store.access.throttle_state("pickup").failures
    pulses = rig.unlocks_of(comp)
    flow = await rig.api.pickups.code(code)
    window = rig.config.timing.pickup_door_open_s
    await rig.clock.advance(window - 0.5)
    assert flow.state == "opening"
    await rig.clock.advance(window + 1.5)  # more than two windows in all
    assert (flow.state, flow.error["code"]) == ("failed", "not_opened_in_time")
    assert rig.unlocks_of(comp) == pulses + 1, "no door pulsed again for nobody"
    assert rig.state(comp) == "occupied"
    assert rig.store.intents.live(comp) is None
    assert rig.store.parcels.all()[-1].state == "stored"
    assert _faults(rig) == [] and _stuck_events(rig) == []
    [ended] = [e["data"] for e in rig.store.journal.events() if e["type"] == "door.not_opened"]
    assert ended["compartment"] == comp
    assert rig.store.access.throttle_state("pickup").failures == failures
    # The resident arrives, hand on the handle, and types the code again.
    rig.door(comp).pull()
    again = await rig.api.pickups.code(code)
    await rig.person_opens(comp, take_out=True)
    await rig.person_closes(comp)
    assert again.state == "collected"
    assert rig.store.parcels.all()[-1].state == "collected"
    assert rig.store.access.throttle_state("pickup").failures == failures


async def test_a_courier_slow_to_an_expired_parcels_door_is_no_fault(rig) -> None:
    comp = await rig.stored("PCL1", "S")
    await rig.jump(72 * 3600 + 61)
    rig.nobody_at(comp)
    token = await rig.courier()
    [parcel] = [p for p in rig.store.parcels.all() if p.barcode == "PCL1"]
    pulses = rig.unlocks_of(comp)
    flow = await rig.api.collect(token, parcel.id)
    await rig.clock.advance(3 * rig.config.timing.door_open_timeout_s)
    assert (flow.state, flow.error["code"]) == ("failed", "not_opened_in_time")
    assert rig.unlocks_of(comp) == pulses + 1
    assert rig.state(comp) == "occupied"
    assert rig.store.parcels.all()[-1].state == "expired"
    assert _faults(rig) == []


async def test_saying_it_twice_gives_up_and_the_parcel_stays_the_residents(rig) -> None:
    comp = await rig.stored("PCL1", "S")
    rig.door(comp).jammed = True
    code = rig.code_for("PCL1")
    flow = await rig.api.pickups.code(code)
    await rig.api.pickups.door_did_not_open(flow.id)
    await rig.api.pickups.door_did_not_open(flow.id)
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
    again = await rig.api.pickups.code(code)
    assert again.compartment == comp
    await rig.person_opens(comp, take_out=True)
    await rig.person_closes(comp)
    assert (again.state, rig.store.parcels.all()[-1].state) == ("collected", "collected")


async def test_the_door_did_not_open_is_refused_once_the_door_is_open(rig) -> None:
    comp = await rig.stored("PCL1", "S")
    flow = await rig.api.pickups.code(rig.code_for("PCL1"))
    await rig.person_opens(comp)
    before = rig.store.journal.events()
    with pytest.raises(FlowError) as info:
        await rig.api.pickups.door_did_not_open(flow.id)
    assert info.value.code == "wrong_state"
    assert rig.store.journal.events() == before
    assert not _stuck_events(rig)


# -- a door shut too early: open it again within the grace period -------------------------


async def _collected(rig, barcode: str = "PCL1"):
    comp = await rig.stored(barcode, "S")
    flow = await rig.api.pickups.code(rig.code_for(barcode))
    await rig.person_opens(comp, take_out=True)
    await rig.person_closes(comp)
    assert flow.state == "collected"
    return comp, flow


async def test_a_door_shut_too_early_opens_again_once_under_its_own_intent(rig) -> None:
    comp, done = await _collected(rig)
    frames, seq = len(rig.unlock_frames()), rig.store.journal.events()[-1]["seq"]
    again = await rig.api.pickups.reopen(done.id)
    assert (again.kind, again.state, again.compartment, again.reopen) == (
        "pickup",
        "opening",
        comp,
        True,
    )
    assert rig.unlock_frames()[frames:] == [rig.unlock_frames()[frames - 1]], "the same lock"
    after = [e for e in rig.store.journal.events() if e["seq"] > seq]
    intent, reopened = after[0], after[1]
    assert intent["type"] == "unlock.intent" and intent["data"]["compartment"] == comp
    assert reopened["type"] == "pickup.reopened"
    assert reopened["data"] == {
        "parcel": done.parcel,
        "barcode": "PCL1",
        "compartment": comp,
        "intent": intent["data"]["intent"],
    }
    assert [e["type"] for e in after].index("lock.pulsed") > 1, "committed before the pulse"
    await rig.person_opens(comp)
    await rig.person_closes(comp)
    assert again.state == "closed"
    assert rig.state(comp) == "free"
    assert rig.store.parcels.get(done.parcel).state == "collected"
    assert rig.event_types().count("parcel.collected") == 1
    with pytest.raises(FlowError) as info:
        await rig.api.pickups.reopen(done.id)
    assert info.value.code == "reopen_used"
    with pytest.raises(FlowError) as info:
        await rig.api.pickups.reopen(again.id)
    assert info.value.code == "reopen_expired"


async def test_after_the_grace_period_the_door_stays_shut(rig) -> None:
    comp, done = await _collected(rig)
    pulses = rig.unlocks_of(comp)
    await rig.clock.advance(rig.config.pickup.reopen_grace_s + 1)
    before = rig.store.journal.events()
    with pytest.raises(FlowError) as info:
        await rig.api.pickups.reopen(done.id)
    assert info.value.code == "reopen_expired"
    assert (rig.unlocks_of(comp), rig.store.journal.events()) == (pulses, before)
    assert rig.state(comp) == "free"


async def test_a_compartment_given_to_a_courier_meanwhile_is_never_reopened(rig) -> None:
    comp, done = await _collected(rig)
    token = await rig.courier()
    dropoff = await rig.api.dropoff_scan(token, "PCL2", "S")
    assert dropoff.compartment == comp  # the smallest free one
    pulses = rig.unlocks_of(comp)
    with pytest.raises(FlowError) as info:
        await rig.api.pickups.reopen(done.id)
    assert info.value.code == "compartment_taken"
    assert rig.unlocks_of(comp) == pulses
    assert dropoff.state == "opening"


async def test_the_code_opens_nothing_in_the_grace_period(rig) -> None:
    comp = await rig.stored("PCL1", "S")
    code = rig.code_for("PCL1")
    await rig.api.pickups.code(code)
    await rig.person_opens(comp, take_out=True)
    await rig.person_closes(comp)
    pulses = rig.unlocks_of(comp)
    with pytest.raises(FlowError) as info:
        await rig.api.pickups.code(code)
    assert info.value.code == "wrong_code"
    assert rig.unlocks_of(comp) == pulses


async def test_a_restart_during_the_reopened_door_cycle_leaves_it_for_a_check(tmp_path) -> None:
    config = bank_config(tmp_path)
    rig = await Rig(config).start()
    comp, done = await _collected(rig)
    await rig.api.pickups.reopen(done.id)
    await rig.person_opens(comp)
    clock = rig.clock
    await rig.stop()  # the daemon is gone with the door open

    again = await Rig(config, clock).start()
    try:
        assert again.store.compartments.get(comp).state == "needs_check"
        assert again.store.parcels.get(done.parcel).state == "collected"
        with pytest.raises(NotFound):
            await again.api.pickups.reopen(done.id)
    finally:
        await again.stop()
