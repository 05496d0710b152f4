"""Someone says "the door did not open" while the door's own story moves on: the status-checked
re-pulse it starts is in flight when the first pulse turns out to have worked and the
person opens the door, fills or empties the compartment and shuts it. The late answer
of the re-pulse changes nothing, and the request answers with the flow as it is, the
way the kiosk sees it over HTTP (never a 500 from an intent already done)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable
from typing import Any

import aiohttp
import pytest

from lockerd import qrtoken
from lockerd.domain import Door
from lockerd.flows import Flow
from lockerd.kiosk.server import KioskServer
from tests.rig import Rig, bank_config
from tests.test_send import KEY, code

#: What a door said stuck leaves in the journal; a door that opened leaves none of it.
STUCK = {"door.jammed", "compartment.out_of_service", "parcel.stuck"}


@pytest.fixture
async def rig(tmp_path):
    config = bank_config(tmp_path)
    pickup = dataclasses.replace(config.pickup, qr_keys=(qrtoken.public_text(KEY),))
    rig = await Rig(dataclasses.replace(config, pickup=pickup)).start()
    yield rig
    await rig.stop()


async def _answer(http: aiohttp.ClientSession, path: str) -> tuple[int, Any]:
    """POST ``path`` as the kiosk page does (``api`` in kiosk.js: no body)."""
    async with http.post(path, headers={"Content-Type": "application/json"}) as response:
        return response.status, await response.json()


async def settled(rig: Rig, call: Awaitable[tuple[int, Any]]) -> tuple[int, Any]:
    """The answer to ``call``, with the fake clock moving while it is awaited."""
    task = asyncio.ensure_future(call)
    for _ in range(2000):
        if task.done():
            break
        await rig.clock.advance(0.05)
    return task.result()


async def settled_all(rig: Rig, *calls: Awaitable[tuple[int, Any]]) -> list[tuple[int, Any]]:
    """The answers to ``calls`` sent at once, in the order sent."""
    gathered = asyncio.gather(*calls)
    for _ in range(2000):
        if gathered.done():
            break
        await rig.clock.advance(0.05)
    return list(gathered.result())


async def said_while_the_door_cycles(
    rig: Rig, http: aiohttp.ClientSession, path: str, flow: Flow, put_in: bool
) -> tuple[int, Any]:
    """POST ``path`` ("did not open"); once its re-pulse is under way, the door (whose
    first pulse released it) is opened, filled or emptied, and shut."""
    task = asyncio.ensure_future(_answer(http, path))
    while not flow.retrying:
        assert not task.done(), task.result()
        await rig.clock.advance(0.01)
    assert flow.compartment is not None
    await rig.person_opens(flow.compartment, put_in=put_in, take_out=not put_in)
    await rig.person_closes(flow.compartment)
    return await settled(rig, task)


async def test_a_send_said_not_open_as_its_door_cycles_is_stored(rig, kiosk) -> None:
    flow = await rig.run(rig.locker.sends.start(code(rig)))
    path = f"/api/sends/{flow.id}/door-did-not-open"
    status, body = await said_while_the_door_cycles(rig, kiosk, path, flow, put_in=True)
    assert status == 200, body
    assert (body["state"], body["compartment"], body["error"]) == ("stored", "S1", None)
    assert rig.state("S1") == "occupied"
    assert [(p.state, p.compartment_id) for p in rig.store.outbound.all()] == [
        ("awaiting_collection", "S1")
    ]
    assert not STUCK & set(rig.event_types())
    await rig.clock.advance(rig.config.timing.door_open_timeout_s * 3)
    assert (flow.state, flow.compartment, rig.state("S1")) == ("stored", "S1", "occupied")


async def test_a_drop_off_said_not_open_as_its_door_cycles_is_stored(rig, kiosk) -> None:
    token = await rig.courier()
    flow = await rig.api.dropoff_scan(token, "PCL1", "S")
    path = f"/api/dropoffs/{flow.id}/door-did-not-open"
    kiosk.headers["Authorization"] = f"Bearer {token}"
    status, body = await said_while_the_door_cycles(rig, kiosk, path, flow, put_in=True)
    assert status == 200, body
    assert (body["state"], body["compartment"], body["error"]) == ("stored", "S1", None)
    assert rig.state("S1") == "occupied"
    assert not STUCK & set(rig.event_types())


async def test_a_pickup_said_not_open_as_its_door_cycles_is_collected(rig, kiosk) -> None:
    comp = await rig.stored("PCL1", "S")
    flow = await rig.api.pickups.code(rig.code_for("PCL1"))
    path = f"/api/pickups/{flow.id}/door-did-not-open"
    status, body = await said_while_the_door_cycles(rig, kiosk, path, flow, put_in=False)
    assert status == 200, body
    assert (body["state"], body["compartment"], body["stuck"]) == ("collected", comp, [])
    assert rig.state(comp) == "free"
    assert not STUCK & set(rig.event_types())


async def test_a_late_repulse_answer_leaves_the_next_door_alone(rig, kiosk) -> None:
    """Said not open; the door opens all the same, the parcel does not fit and a larger
    door is chosen, all before the re-pulse of the first door answers. That answer (its
    pulse refused: the first door's intent was given back) is not the new door's: M1
    stays in service, opening on its own first window and timer."""
    flow = await rig.run(rig.locker.sends.start(code(rig)))
    said = asyncio.ensure_future(_answer(kiosk, f"/api/sends/{flow.id}/door-did-not-open"))
    while not flow.retrying:
        await rig.clock.advance(0.01)
    await rig.person_opens("S1")
    await rig.locker.sends.doesnt_fit(flow.id)
    await rig.person_closes("S1")
    sized = asyncio.ensure_future(rig.locker.sends.size(flow.id, "M"))
    while flow.compartment is None:
        await rig.clock.advance(0.01)
    assert not said.done(), "the re-pulse answered before the new door was reserved"
    status, body = await settled(rig, said)
    await settled(rig, sized)  # type: ignore[arg-type]
    assert status == 200, body
    assert (body["state"], body["compartment"], body["attempt"]) == ("opening", "M1", 1)
    assert (rig.state("S1"), rig.state("M1")) == ("free", "reserved")
    assert not STUCK & set(rig.event_types())
    await rig.clock.advance(rig.config.timing.door_open_timeout_s + 1)
    assert (flow.state, flow.compartment, flow.attempt) == ("opening", "M1", 2)


# -- "did not open" in every state of a send ----------------------------------------


async def _opening(rig: Rig) -> Flow:
    rig.nobody_at("S1")
    return await rig.run(rig.locker.sends.start(code(rig)))


async def _retried(rig: Rig) -> Flow:
    """Its door jammed, said not open once: the re-pulse went, the second window runs."""
    rig.door("S1").jammed = True
    flow = await rig.run(rig.locker.sends.start(code(rig)))
    await rig.api.sends.door_did_not_open(flow.id)
    return flow


async def _open(rig: Rig) -> Flow:
    flow = await rig.run(rig.locker.sends.start(code(rig)))
    await rig.person_opens("S1")
    return flow


async def _offer_size(rig: Rig) -> Flow:
    flow = await _open(rig)
    await rig.api.sends.doesnt_fit(flow.id)
    return flow


async def _no_low(rig: Rig) -> Flow:
    """A low send in M2 (the only low door) that did not fit, asked to go larger: L1 is
    out of reach, the sender is asked."""
    flow = await rig.run(rig.locker.sends.start(code(rig), prefer_low=True))
    await rig.person_opens("M2")
    await rig.api.sends.doesnt_fit(flow.id)
    await rig.person_closes("M2")
    await rig.api.sends.size(flow.id, "L")
    return flow


async def _did_not_open(rig: Rig) -> Flow:
    """Jammed, and nobody said so: both windows run out, another door is offered."""
    rig.door("S1").jammed = True
    flow = await rig.run(rig.locker.sends.start(code(rig)))
    await rig.clock.advance(rig.config.timing.door_open_timeout_s * 2 + 5)
    return flow


async def _closing(rig: Rig) -> Flow:
    flow = await _open(rig)
    await rig.api.sends.cancel(flow.id)
    return flow


async def _cancelled(rig: Rig) -> Flow:
    flow = await rig.run(rig.locker.sends.start(code(rig)))
    await rig.api.sends.cancel(flow.id)
    return flow


async def _stored(rig: Rig) -> Flow:
    flow = await _open(rig)
    rig.door("S1").put_in()
    await rig.person_closes("S1")
    return flow


async def _failed(rig: Rig) -> Flow:
    """Every other door taken: S1 would not open and no compartment is left."""
    for barcode, size in (("PCL1", "S"), ("PCL2", "M"), ("PCL3", "M"), ("PCL4", "L")):
        await rig.stored(barcode, size)
    rig.door("S1").jammed = True
    flow = await rig.run(rig.locker.sends.start(code(rig)))
    await rig.api.sends.door_did_not_open(flow.id)
    await rig.api.sends.door_did_not_open(flow.id)
    assert flow.error is not None and flow.error["code"] == "locker_full", flow.view()
    return flow


#: Each state a send can be in when "did not open" comes; the answer the kiosk gets:
#: the HTTP status, and the flow's new state (200) or the error's code.
STATES = {
    "opening": (_opening, 200, "opening"),
    "retried": (_retried, 200, "opening"),
    "open": (_open, 409, "wrong_state"),
    "offer_size": (_offer_size, 409, "wrong_state"),
    "no_low": (_no_low, 409, "wrong_state"),
    "did_not_open": (_did_not_open, 409, "wrong_state"),
    "closing": (_closing, 409, "wrong_state"),
    "cancelled": (_cancelled, 409, "wrong_state"),
    "stored": (_stored, 409, "wrong_state"),
    "failed": (_failed, 409, "wrong_state"),
}


@pytest.mark.parametrize("name", list(STATES))
async def test_did_not_open_in_every_state_of_a_send_is_answered(rig, kiosk, name) -> None:
    """Said once, and again at once: each time a flow or a refusal by name; a refusal
    leaves the flow as it was."""
    setup, status, outcome = STATES[name]
    flow = await setup(rig)
    assert flow.state == name.replace("retried", "opening"), flow.view()
    path = f"/api/sends/{flow.id}/door-did-not-open"
    before = flow.view()
    answer = await settled(rig, _answer(kiosk, path))
    assert answer[0] == status, answer
    if status == 200:
        assert answer[1]["state"] == outcome, answer
    else:
        assert answer[1]["error"]["code"] == outcome
        assert flow.view() == before
    again = await settled(rig, _answer(kiosk, path))
    assert again[0] in (200, 409), again


async def test_did_not_open_of_a_send_there_is_not_is_not_found(kiosk, rig) -> None:
    status, body = await settled(rig, _answer(kiosk, "/api/sends/nope/door-did-not-open"))
    assert (status, body["error"]["code"]) == (404, "unknown_flow")


async def test_a_send_on_a_hook_read_bank_said_not_open_while_open_moves_on(tmp_path) -> None:
    """Each door read from its lock's own switch: S1's latch, released, stays out while
    its door is jammed shut, so the switch reads open though the door did not move.
    Said not open (twice at once, as a double tap), the first takes S1 out of service
    as jammed and opens S2; the second finds S2 opening and runs its re-pulse."""
    config = bank_config(tmp_path, family="kerong-cu16-hook")
    pickup = dataclasses.replace(config.pickup, qr_keys=(qrtoken.public_text(KEY),))
    rig = await Rig(dataclasses.replace(config, pickup=pickup)).start()
    server = KioskServer(rig.config, rig.locker, rig.hw)
    url = await server.start()
    try:
        rig.door("S1").jammed = True
        flow = await rig.run(rig.locker.sends.start(code(rig)))
        rig.door("S1").latch_broken = True
        await rig.seen("S1", Door.OPEN)
        assert flow.state == "open"
        async with aiohttp.ClientSession(base_url=url) as http:
            path = f"/api/sends/{flow.id}/door-did-not-open"
            first, second = await settled_all(rig, _answer(http, path), _answer(http, path))
        assert first[0] == 200, first
        assert (first[1]["state"], first[1]["compartment"]) == ("opening", "S2")
        assert second[0] == 200, second
        assert (second[1]["state"], second[1]["compartment"]) == ("opening", "S2")
        assert (rig.state("S1"), rig.state("S2")) == ("out_of_service", "reserved")
    finally:
        await server.stop()
        await rig.stop()
