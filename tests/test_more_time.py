"""The "More time" switch is a property of the visit, known to the server: the request
that starts it carries it, and every limit put on the person is MORE_TIME times as long:
the door-open wait of a pickup, a drop-off and a send, the reopen grace and a group's next
door. The pulse and the door-left-open alarm stay as configured (fake clock)."""

from __future__ import annotations

import pytest

from lockerd.errors import FlowError
from lockerd.flows import MORE_TIME
from tests.test_pickup_group import _group_of_three, _takes
from tests.test_send import code, sending


def _not_opened(rig) -> list[dict]:
    return [e["data"] for e in rig.store.journal.events() if e["type"] == "door.not_opened"]


async def test_a_resident_with_more_time_has_longer_to_open_the_door(rig) -> None:
    comp = await rig.stored("PCL1", "S")
    rig.nobody_at(comp)
    flow = await rig.api.pickups.code(rig.code_for("PCL1"), more_time=True)
    window = rig.config.timing.pickup_door_open_s
    assert flow.view()["open_within_s"] == MORE_TIME * window
    assert flow.view()["more_time"] is True
    await rig.clock.advance(MORE_TIME * window - 0.5)
    assert flow.state == "opening" and _not_opened(rig) == []
    await rig.clock.advance(1)
    assert (flow.state, flow.error["code"]) == ("failed", "not_opened_in_time")
    assert [e["compartment"] for e in _not_opened(rig)] == [comp]


async def test_without_more_time_the_wait_is_as_configured(rig) -> None:
    comp = await rig.stored("PCL1", "S")
    rig.nobody_at(comp)
    flow = await rig.api.pickups.code(rig.code_for("PCL1"))
    window = rig.config.timing.pickup_door_open_s
    assert (flow.view()["open_within_s"], flow.view()["more_time"]) == (window, False)
    await rig.clock.advance(window + 0.5)
    assert [e["compartment"] for e in _not_opened(rig)] == [comp]


async def test_a_courier_with_more_time_is_not_blamed_for_a_slow_pull(rig) -> None:
    for comp in rig.config.compartment:
        rig.nobody_at(comp.id)
    token, _ = await rig.api.courier_login("4321", True)
    flow = await rig.api.dropoff_scan(token, "PCL1", "S")
    comp = flow.compartment
    await rig.clock.advance(MORE_TIME * rig.config.timing.door_open_timeout_s - 0.5)
    assert (flow.state, flow.attempt, rig.unlocks_of(comp)) == ("opening", 1, 1)
    assert rig.state(comp) == "reserved"
    # The courier pulls now: the re-pulse (after the wait) lets it open.
    rig.door(comp).pull()
    await rig.clock.advance(1)
    await rig.person_opens(comp, put_in=True)
    await rig.person_closes(comp)
    assert flow.state == "stored"
    assert "compartment.out_of_service" not in rig.event_types()


async def test_the_reopen_grace_is_longer_with_more_time(rig) -> None:
    comp = await rig.stored("PCL1", "S")
    flow = await rig.api.pickups.code(rig.code_for("PCL1"), more_time=True)
    await rig.person_opens(comp, take_out=True)
    await rig.person_closes(comp)
    await rig.clock.advance(rig.config.pickup.reopen_grace_s + 1)
    again = await rig.api.pickups.reopen(flow.id)
    assert (again.compartment, again.more_time) == (comp, True)
    assert "pickup.reopened" in rig.event_types()


async def test_the_reopen_grace_without_more_time_is_as_configured(rig) -> None:
    comp = await rig.stored("PCL1", "S")
    flow = await rig.api.pickups.code(rig.code_for("PCL1"))
    await rig.person_opens(comp, take_out=True)
    await rig.person_closes(comp)
    await rig.clock.advance(rig.config.pickup.reopen_grace_s + 1)
    with pytest.raises(FlowError) as info:
        await rig.api.pickups.reopen(flow.id)
    assert info.value.code == "reopen_expired"


async def test_the_next_door_is_offered_longer_with_more_time(rig) -> None:
    comps = await _group_of_three(rig)
    flow = await rig.api.pickups.code(rig.code_for("G0001"), more_time=True)
    await _takes(rig, comps["G0001"])
    await rig.clock.advance(rig.config.pickup.next_door_s + 1)
    assert flow.view()["next_door"] == comps["G0002"]
    await rig.clock.advance((MORE_TIME - 1) * rig.config.pickup.next_door_s)
    assert flow.view()["next_door"] is None


async def test_the_kiosk_api_takes_more_time_with_the_code(rig, kiosk) -> None:
    async with kiosk.get("/api/status") as response:
        assert (await response.json())["kiosk"]["more_time"] == MORE_TIME
    await rig.stored("PCL1", "S")

    async def post() -> tuple[int, dict]:
        body = {"code": rig.code_for("PCL1"), "more_time": True}
        async with kiosk.post("/api/pickups", json=body) as response:
            return response.status, await response.json()

    status, view = await rig.run(post())
    assert (status, view["more_time"]) == (201, True)
    assert view["open_within_s"] == MORE_TIME * rig.config.timing.pickup_door_open_s


@pytest.mark.parametrize("path", ["/api/pickups", "/api/sends", "/api/courier/login"])
async def test_more_time_must_be_true_or_false(rig, kiosk, path) -> None:
    before = rig.store.journal.events()
    async with kiosk.post(path, json={"code": "12345678", "more_time": "yes"}) as response:
        error = (await response.json())["error"]
    assert (response.status, error["code"], error["field"]) == (400, "invalid_field", "more_time")
    assert "more_time" in error["message"]
    assert rig.store.journal.events() == before


async def test_a_sender_with_more_time_has_longer_to_open_the_door(tmp_path) -> None:
    async with sending(tmp_path) as rig:
        for comp in rig.config.compartment:
            rig.nobody_at(comp.id)
        flow = await rig.run(rig.locker.sends.start(code(rig), False, True))
        comp = flow.compartment
        assert flow.view()["more_time"] is True
        await rig.clock.advance(MORE_TIME * rig.config.timing.door_open_timeout_s - 0.5)
        assert (flow.state, flow.attempt, rig.unlocks_of(comp)) == ("opening", 1, 1)


async def test_more_time_never_stretches_the_door_left_open_alarm(rig) -> None:
    comp = await rig.stored("PCL1", "S")
    flow = await rig.api.pickups.code(rig.code_for("PCL1"), more_time=True)
    await rig.person_opens(comp, take_out=True)
    await rig.clock.advance(rig.config.timing.door_left_open_s + 1)
    assert (flow.state, flow.alarm) == ("open", "left_open")
    assert "door.left_open" in rig.event_types()
