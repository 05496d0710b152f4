"""Several parcels for one recipient, announced by the back office as one pickup group,
collected with one code: each door opens in turn once the last one's cycle is over
(fake clock)."""

from __future__ import annotations

from typing import Any

import pytest

from lockerd.domain import Door
from lockerd.errors import FlowError
from tests import families
from tests.rig import Rig
from tests.test_qr import qr_rig, token  # noqa: F401 (qr_rig: the QR-enabled rig fixture)


def _announce(rig, *parcels: tuple[str, str], group: str | None = "flat-12") -> None:
    with rig.store.context.change() as conn:
        for barcode, size in parcels:
            rig.store.parcels.announce(conn, barcode, size, "flat-12", None, group=group)


async def _takes(rig, comp: str) -> None:
    """The resident, hand on the handle of the door that unlatches next, opens it as soon
    as it does (one coil per power group: it may wait for the last pulse to end), takes
    the parcel and shuts it."""
    rig.door(comp).hand = True
    await rig.seen(comp, Door.OPEN)
    rig.door(comp).take_out()
    await rig.person_closes(comp)


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
    assert flow.compartment == comps["G0002"]
    await rig.api.pickups.door_did_not_open(flow.id)
    await rig.api.pickups.door_did_not_open(flow.id)
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
        assert flow.compartment == comp
        await _takes(rig, comp)
    assert (flow.state, flow.view()["parcels"]) == ("collected", {"index": 2, "total": 2})


@pytest.fixture
async def slow_supply_rig(tmp_path):
    """The test bank on a power supply that needs its longest rest between pulses (1 s)."""
    data = families.bank(tmp_path)
    data["power_group"][0]["gap_ms"] = 1000
    rig = await Rig(families.config(data, tmp_path)).start()
    yield rig
    await rig.stop()


async def _shut_during_a_pulse(rig) -> tuple[Any, Any, str]:
    """A group of two: the resident takes the first parcel; a courier's drop-off pulses
    L1; the resident shuts the first door just then, so that the group's next door
    waits for the supply's rest after L1's pulse. The pickup, the drop-off, and the
    group's second compartment."""
    _announce(rig, ("G0001", "S"), ("G0002", "S"))
    first, second = [await rig.stored(b) for b in ("G0001", "G0002")]
    flow = await rig.api.pickups.code(rig.code_for("G0001"))
    rig.door(first).hand = True
    await rig.seen(first, Door.OPEN)
    rig.door(first).take_out()
    await rig.clock.advance(5)  # every lock's cooldown over
    token = await rig.courier()
    drop = await rig.api.dropoff_scan(token, "PCL1", "L")
    assert (drop.state, drop.compartment) == ("opening", "L1")
    rig.door(first).close()  # the resident shuts the first door now
    await rig.seen(first, Door.CLOSED)
    return flow, drop, second


async def test_the_next_door_s_wait_for_the_supply_holds_up_no_other_door(
    slow_supply_rig,
) -> None:
    """A courier's door is pulsed just as the resident shuts the group's first door: the
    group's next door waits for the supply's rest after that pulse (the coil's energize
    time, then a 1 s gap), and meanwhile the courier's door, pulled open, is handled at
    once."""
    rig = slow_supply_rig
    flow, drop, second = await _shut_during_a_pulse(rig)
    pulsed = rig.door("L1").pulses[-1]
    pulse_s = rig.config.safety.pulse_ms / 1000
    rest = max(pulse_s, rig.locker.bank.energize_s("L1")) + 1.0  # coil on, then the gap
    before = rig.unlocks_of(second)
    assert rig.door("L1").open(), "the courier pulls while the latch is out"
    await rig.seen("L1", Door.OPEN)
    assert rig.clock.monotonic() < pulsed + rest, "still within the supply's rest"
    assert drop.state == "open", "the courier's door was handled at once"
    assert rig.unlocks_of(second) == before, "the next door still waits for the supply"
    await rig.clock.advance(rest)
    assert (flow.state, flow.compartment) == ("opening", second)
    assert rig.unlocks_of(second) == before + 1
    assert rig.door(second).pulses[-1] >= pulsed + rest


async def test_stopping_the_locker_cancels_a_next_door_still_waiting(slow_supply_rig) -> None:
    """The locker stops while a group's next door waits for the supply: it is never
    pulsed (the wait is the locker's task, cancelled with it)."""
    rig = slow_supply_rig
    _, _, second = await _shut_during_a_pulse(rig)
    before = rig.unlocks_of(second)
    await rig.locker.stop()
    await rig.clock.advance(3)
    assert rig.unlocks_of(second) == before
