"""Several parcels for one recipient, announced by the back office as one pickup group,
collected with one code: after each door's cycle the next door is offered, and it opens
only when the resident at the kiosk asks for it (fake clock)."""

from __future__ import annotations

import pytest

from lockerd.domain import Door
from lockerd.errors import FlowError
from tests.test_qr import qr_rig, token  # noqa: F401 (qr_rig: the QR-enabled rig fixture)


def _announce(rig, *parcels: tuple[str, str], group: str | None = "flat-12") -> None:
    with rig.store.context.change() as conn:
        for barcode, size in parcels:
            rig.store.parcels.announce(conn, barcode, size, "flat-12", None, group=group)


async def _takes(rig, comp: str) -> None:
    """The resident, hand on the handle of the door that unlatches next, opens it as soon
    as it does (one coil per power group: it may wait for the last pulse to end), takes
    the parcel and shuts it."""
    rig.door(comp).pull()
    await rig.seen(comp, Door.OPEN)
    rig.door(comp).take_out()
    await rig.person_closes(comp)


async def _asks_next(rig, flow, comp: str) -> None:
    """The kiosk offers ``comp``'s door next; the resident asks for it."""
    assert flow.view()["next_door"] == comp
    await rig.api.pickups.next_door(flow.id)


async def _group_of_three(rig) -> dict[str, str]:
    _announce(rig, ("G0001", "S"), ("G0002", "S"), ("G0003", "M"))
    return {b: await rig.stored(b) for b in ("G0001", "G0002", "G0003")}


def _collected(rig) -> list[str]:
    events = rig.store.journal.events()
    return [e["data"]["compartment"] for e in events if e["type"] == "parcel.collected"]


async def test_one_code_opens_each_of_the_recipients_parcels_in_turn(rig) -> None:
    comps = await _group_of_three(rig)
    failures = rig.store.access.throttle_state("pickup").failures
    flow = await rig.api.pickups.code(rig.code_for("G0002"))
    # The parcel the code was issued for first; the others after, one door at a time.
    order = [comps["G0002"], comps["G0001"], comps["G0003"]]
    for index, comp in enumerate(order, start=1):
        if index > 1:
            await _asks_next(rig, flow, comp)
        assert (flow.state, flow.compartment) == ("opening", comp)
        assert flow.view()["parcels"] == {"index": index, "total": 3}
        assert [c for c in comps.values() if rig.store.intents.live(c)] == [comp]
        await _takes(rig, comp)
    assert flow.state == "collected"
    assert flow.view()["parcels"] == {"index": 3, "total": 3}
    assert _collected(rig) == order
    assert {p.state for p in rig.store.parcels.all() if p.barcode in comps} == {"collected"}
    assert rig.store.access.throttle_state("pickup").failures == failures
    denied = [e for e in rig.store.journal.events() if e["type"] == "pickup.denied"]
    assert denied == [], "the code was checked once, and not counted again per door"


async def test_a_door_that_will_not_open_does_not_stop_the_others(rig) -> None:
    comps = await _group_of_three(rig)
    code_two = rig.code_for("G0002")
    rig.door(comps["G0002"]).jammed = True
    flow = await rig.api.pickups.code(rig.code_for("G0001"))
    await _takes(rig, comps["G0001"])
    await _asks_next(rig, flow, comps["G0002"])
    assert flow.compartment == comps["G0002"]
    await rig.api.pickups.door_did_not_open(flow.id)
    await rig.api.pickups.door_did_not_open(flow.id)
    await _asks_next(rig, flow, comps["G0003"])
    assert (flow.state, flow.compartment, flow.error) == ("opening", comps["G0003"], None)
    await _takes(rig, comps["G0003"])
    assert flow.state == "collected"
    assert flow.view()["stuck"] == [comps["G0002"]]
    states = {p.barcode: p.state for p in rig.store.parcels.all() if p.barcode in comps}
    assert states == {"G0001": "collected", "G0002": "stored", "G0003": "collected"}
    # The stuck parcel's own code is untouched: after the repair it opens that door.
    rig.door(comps["G0002"]).jammed = False
    await rig.api.return_to_service(comps["G0002"], "tech")
    again = await rig.api.pickups.code(code_two)
    assert (again.compartment, again.view()["parcels"]) == (
        comps["G0002"],
        {"index": 1, "total": 1},
    )


async def test_a_collected_parcels_code_opens_nothing_of_its_group_any_more(rig) -> None:
    comps = await _group_of_three(rig)
    code_one = rig.code_for("G0001")
    await rig.api.pickups.code(code_one)
    await _takes(rig, comps["G0001"])
    with pytest.raises(FlowError) as info:
        await rig.api.pickups.code(code_one)
    assert info.value.code == "wrong_code"


async def test_parcels_of_no_group_or_another_group_stay_shut(rig) -> None:
    _announce(rig, ("G0001", "S"))
    _announce(rig, ("G0002", "S"), group="flat-7")
    _announce(rig, ("G0003", "M"), group=None)
    comps = {b: await rig.stored(b) for b in ("G0001", "G0002", "G0003")}
    pulses = {c: rig.unlocks_of(c) for c in comps.values()}
    flow = await rig.api.pickups.code(rig.code_for("G0001"))
    await _takes(rig, comps["G0001"])
    assert (flow.state, flow.view()["parcels"]) == ("collected", {"index": 1, "total": 1})
    assert rig.unlocks_of(comps["G0002"]) == pulses[comps["G0002"]]
    assert rig.unlocks_of(comps["G0003"]) == pulses[comps["G0003"]]


async def test_the_back_office_announces_a_group_and_hears_of_each_parcel(synced) -> None:
    s = synced
    s.office.announce_group("test-locker", "flat-12", [("G0001", "S"), ("G0002", "M")], "flat-12")
    await s.drain()
    comps = {b: await s.rig.stored(b) for b in ("G0001", "G0002")}
    await s.drain()
    sent = {e["data"]["barcode"]: e["data"]["pickup_code"] for e in s.record.in_order()
            if e["type"] == "parcel.stored"}  # fmt: skip
    flow = await s.rig.api.pickups.code(sent["G0002"])
    for comp in (comps["G0002"], comps["G0001"]):
        if comp != comps["G0002"]:
            await _asks_next(s.rig, flow, comp)
        assert flow.compartment == comp
        await _takes(s.rig, comp)
    assert flow.state == "collected"
    await s.drain()
    collected = [e["data"]["compartment"] for e in s.record.in_order()
                 if e["type"] == "parcel.collected"]  # fmt: skip
    assert collected == [comps["G0002"], comps["G0001"]]
    s.assert_every_event_arrived_once_in_order()


async def test_a_qr_code_of_one_parcel_opens_the_whole_group(qr_rig) -> None:  # noqa: F811
    rig = qr_rig
    _announce(rig, ("G0001", "S"), ("G0002", "M"))
    comps = {b: await rig.stored(b) for b in ("G0001", "G0002")}
    flow = await rig.api.pickups.token(token(rig, "G0002"))
    for comp in (comps["G0002"], comps["G0001"]):
        if comp != comps["G0002"]:
            await _asks_next(rig, flow, comp)
        assert flow.compartment == comp
        await _takes(rig, comp)
    assert (flow.state, flow.view()["parcels"]) == ("collected", {"index": 2, "total": 2})


async def test_a_resident_who_walks_away_leaves_the_other_doors_shut(rig) -> None:
    comps = await _group_of_three(rig)
    for barcode in ("G0002", "G0003"):
        rig.nobody_at(comps[barcode])
    pulses = {c: rig.unlocks_of(c) for c in comps.values()}
    flow = await rig.api.pickups.code(rig.code_for("G0001"))
    await _takes(rig, comps["G0001"])  # took the parcel they came for, and left
    assert (flow.state, flow.view()["next_door"]) == ("collected", comps["G0002"])
    await rig.clock.advance(rig.config.pickup.next_door_s + 1)
    assert (flow.state, flow.view()["next_door"], flow.group) == ("collected", None, None)
    for _ in range(6):
        await rig.clock.advance(rig.config.timing.pickup_door_open_s + 0.5)
    for barcode in ("G0002", "G0003"):
        assert rig.unlocks_of(comps[barcode]) == pulses[comps[barcode]], "no pulse for nobody"
        assert rig.state(comps[barcode]) == "occupied"
        assert rig.store.intents.live(comps[barcode]) is None
    states = {p.barcode: p.state for p in rig.store.parcels.all() if p.barcode in comps}
    assert states == {"G0001": "collected", "G0002": "stored", "G0003": "stored"}
    assert "parcel.stuck" not in rig.event_types()
    with pytest.raises(FlowError) as info:
        await rig.api.pickups.next_door(flow.id)
    assert info.value.code == "no_next_door"
    # Back another day: the group's code still opens the rest, one door at a time.
    later = await rig.api.pickups.code(rig.code_for("G0002"))
    assert later.compartment == comps["G0002"]
    assert later.view()["parcels"] == {"index": 1, "total": 2}


async def test_the_reopen_after_a_groups_door_opens_that_door(rig) -> None:
    _announce(rig, ("G0001", "S"), ("G0002", "S"))
    comps = {b: await rig.stored(b) for b in ("G0001", "G0002")}
    flow = await rig.api.pickups.code(rig.code_for("G0001"))
    await rig.person_opens(comps["G0001"])  # opens, does not take the parcel
    await rig.person_closes(comps["G0001"])  # shut too early
    assert (flow.state, flow.view()["next_door"]) == ("collected", comps["G0002"])
    again = await rig.api.pickups.reopen(flow.id)
    assert again.compartment == comps["G0001"], "the door shut too early is the one reopened"
    with pytest.raises(FlowError):
        await rig.api.pickups.next_door(flow.id)  # the group goes on from the reopened door
    await rig.person_opens(comps["G0001"], take_out=True)
    await rig.person_closes(comps["G0001"])
    assert (again.state, again.view()["next_door"]) == ("closed", comps["G0002"])
    assert rig.unlocks_of(comps["G0002"]) == 1, "only the drop-off's pulse so far"
    await _asks_next(rig, again, comps["G0002"])
    await _takes(rig, comps["G0002"])
    assert (again.state, again.view()["parcels"]) == ("collected", {"index": 2, "total": 2})
    with pytest.raises(FlowError) as info:
        await rig.api.pickups.reopen(flow.id)
    assert info.value.code in ("reopen_expired", "reopen_used")
    last = await rig.api.pickups.reopen(again.id)  # G0002's own reopen, once
    assert last.compartment == comps["G0002"]
    states = {p.barcode: p.state for p in rig.store.parcels.all() if p.barcode in comps}
    assert states == {"G0001": "collected", "G0002": "collected"}
