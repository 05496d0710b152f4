"""A technician and the parcels the public sends: a deposit cut short by a crash or a
power cut holds its send code and its compartment until a technician says whether the
parcel is inside (``lockerctl found`` / ``empty``, the same for a courier's drop-off in
tests/test_crash.py); a parcel awaiting collection can be taken out by hand. Each action
is audited, and a refused one changes nothing."""

from __future__ import annotations

import pytest

from lockerd.desk import Desk
from lockerd.domain import Comp, Outbound
from lockerd.errors import FlowError, NotFound, Refused
from tests.rig import Rig
from tests.test_send import code, courier_of, dump, sending, sent

WHO = ("tech", "ssh 10.0.0.9", "checked the compartment")


@pytest.fixture
async def rig(tmp_path):
    async with sending(tmp_path) as rig:
        yield rig


async def cut_short(rig: Rig, put_in: bool) -> Rig:
    """A send whose door opened (and took the parcel, or not) when the locker stopped
    before the door closed; the locker started again on the same database."""
    flow = await rig.run(rig.locker.sends.start(code(rig)))
    comp = flow.compartment
    assert comp == "S1", flow.view()
    await rig.person_opens(comp, put_in=put_in)
    await rig.stop()
    again = Rig(rig.config, clock=rig.clock)
    again.door(comp).item = put_in  # and shut by hand
    await again.start()
    assert again.state(comp) == "needs_check"
    return again


async def cut_short_at_two_doors(rig: Rig) -> Rig:
    """A send whose parcel did not fit S1 (its door still open) and whose M1 was opening
    when the locker stopped: both S1 and M1 may hold the parcel after the restart."""
    flow = await rig.run(rig.locker.sends.start(code(rig)))
    await rig.person_opens("S1")
    await rig.run(rig.locker.sends.doesnt_fit(flow.id))
    await rig.run(rig.locker.sends.size(flow.id, "M"))
    assert flow.compartment == "M1", flow.view()
    await rig.stop()
    again = await Rig(rig.config, clock=rig.clock).start()
    assert (again.state("S1"), again.state("M1")) == ("needs_check", "needs_check")
    return again


def outbound(rig: Rig) -> tuple[int, str]:
    rows = rig.store.outbound.all()
    assert len(rows) == 1
    return rows[0].id, str(rows[0].state)


def audit_actions(rig: Rig) -> list[str]:
    return [e["action"] for e in rig.store.audit.entries(50)]


async def test_a_deposit_cut_short_holds_its_code_and_its_compartment(rig) -> None:
    rig = await cut_short(rig, put_in=True)
    try:
        before = dump(rig)
        with pytest.raises(FlowError) as info:
            await rig.run(rig.locker.sends.start(code(rig)))
        assert info.value.code == "send_code_in_check"
        assert "being checked" in info.value.message
        for _ in range(rig.config.pickup.throttle.lockout_after):  # the locker's doing: a
            with pytest.raises(FlowError) as held:  # sender trying again is no attacker
                await rig.run(rig.locker.sends.start(code(rig)))
            assert held.value.code == "send_code_in_check"
        assert "send.denied" not in rig.event_types()
        with pytest.raises(FlowError) as info:
            await rig.run(Desk(rig.locker).enable("S1", WHO))
        assert info.value.code == "deposit_unresolved"
        assert (
            "parcel SHIP0001" in info.value.message and "lockerctl found S1" in info.value.message
        )
        with pytest.raises(Refused, match="may hold parcel SHIP0001"):
            rig.store.custody.return_to_service("S1", "back office")  # compartment.enable
        assert dump(rig) == before
    finally:
        await rig.stop()


async def test_a_technician_finds_the_parcel_and_its_carrier_collects_it(rig) -> None:
    rig = await cut_short(rig, put_in=True)
    try:
        outbound_id, state = outbound(rig)
        assert state == "depositing"
        assert rig.store.service.found("S1", *WHO) == "SHIP0001"
        parcel = rig.store.outbound.get(outbound_id)
        assert parcel is not None
        assert (parcel.state, parcel.compartment_id) == (Outbound.AWAITING_COLLECTION, "S1")
        deposited = [e for e in rig.store.journal.events() if e["type"] == "outbound.deposited"]
        assert [(e["data"]["compartment"], e["data"]["reference"]) for e in deposited] == [
            ("S1", "SHIP0001")
        ]
        assert rig.state("S1") == "needs_check"  # still to be checked shut and latched
        await rig.run(Desk(rig.locker).enable("S1", WHO))
        assert rig.state("S1") == "occupied"
        with pytest.raises(FlowError) as info:
            await rig.run(rig.locker.sends.start(code(rig)))
        assert info.value.code == "send_code_used"
        token = await courier_of(rig, "dhl-1", "9999", "DHL")
        assert [p.id for p in await rig.run(rig.locker.sends.collectable(token))] == [outbound_id]
        assert audit_actions(rig)[-2:] == ["found", "enable"]
        with pytest.raises(FlowError, match="S1 is occupied: no deposit cut short waits"):
            rig.store.service.empty("S1", *WHO)  # said once
    finally:
        await rig.stop()


async def test_a_technician_opening_the_door_first_still_has_to_say(rig) -> None:
    """A service open of the compartment (to look inside) is no answer: the deposit cut
    short still holds the compartment and the code until found or empty is said."""
    rig = await cut_short(rig, put_in=True)
    try:
        flow = await rig.run(Desk(rig.locker).open("S1", WHO))
        await rig.person_opens("S1")
        await rig.person_closes("S1")
        assert flow.state == "closed" and rig.state("S1") == "needs_check"
        with pytest.raises(FlowError) as info:
            await rig.run(Desk(rig.locker).enable("S1", WHO))
        assert info.value.code == "deposit_unresolved"
        with pytest.raises(FlowError) as info:
            await rig.run(rig.locker.sends.start(code(rig)))
        assert info.value.code == "send_code_in_check"
        assert rig.store.service.found("S1", *WHO) == "SHIP0001"
        await rig.run(Desk(rig.locker).enable("S1", WHO))
        assert rig.state("S1") == "occupied"
    finally:
        await rig.stop()


async def test_a_send_cut_short_at_two_doors_is_found_once(rig) -> None:
    rig = await cut_short_at_two_doors(rig)
    try:
        outbound_id, _ = outbound(rig)
        assert rig.store.service.found("S1", *WHO) == "SHIP0001"
        before = dump(rig)
        with pytest.raises(FlowError) as info:
            rig.store.service.found("M1", *WHO)
        assert info.value.code == "already_stored"
        assert "found in S1 already" in info.value.message
        assert "lockerctl empty M1" in info.value.message
        assert dump(rig) == before
        rig.store.service.empty("M1", *WHO)
        parcel = rig.store.outbound.get(outbound_id)
        assert parcel is not None
        assert (parcel.state, parcel.compartment_id) == (Outbound.AWAITING_COLLECTION, "S1")
    finally:
        await rig.stop()


async def test_a_send_cut_short_at_two_doors_holds_its_code_until_both_are_said(rig) -> None:
    rig = await cut_short_at_two_doors(rig)
    try:
        rig.store.service.empty("S1", *WHO)
        assert outbound(rig)[1] == "depositing"
        with pytest.raises(FlowError) as info:
            await rig.run(rig.locker.sends.start(code(rig)))
        assert info.value.code == "send_code_in_check"  # M1 is still to be looked into
        rig.store.service.found("M1", *WHO)
        parcel = rig.store.outbound.get(outbound(rig)[0])
        assert parcel is not None
        assert (parcel.state, parcel.compartment_id) == (Outbound.AWAITING_COLLECTION, "M1")
    finally:
        await rig.stop()


async def test_found_or_empty_needs_a_compartment_waiting_for_its_check(rig) -> None:
    rig = await cut_short(rig, put_in=True)
    try:
        with rig.store.context.change() as conn:  # as a locker from before the rule left it
            rig.store.compartments.set(conn, "S1", Comp.FREE)
        before = dump(rig)
        for action in ("found", "empty"):
            with pytest.raises(FlowError) as info:
                getattr(rig.store.service, action)("S1", *WHO)
            assert info.value.code == "not_cut_short" and "S1 is free" in info.value.message
        assert dump(rig) == before
    finally:
        await rig.stop()


async def test_a_compartment_found_empty_frees_the_code(rig) -> None:
    rig = await cut_short(rig, put_in=False)
    try:
        outbound_id, _ = outbound(rig)
        assert rig.store.service.empty("S1", *WHO) == "SHIP0001"
        assert outbound(rig) == (outbound_id, "cancelled")
        await rig.run(Desk(rig.locker).enable("S1", WHO))
        assert rig.state("S1") == "free"
        await sent(rig, code(rig))  # the sender, back with the parcel, sends it after all
        assert [str(p.state) for p in rig.store.outbound.all()] == [
            "cancelled", "awaiting_collection"
        ]  # fmt: skip
    finally:
        await rig.stop()


async def test_a_technician_takes_out_a_parcel_awaiting_collection(rig) -> None:
    comp = await sent(rig, code(rig))
    outbound_id, _ = outbound(rig)
    rig.store.service.outbound_removed(outbound_id, *WHO)
    parcel = rig.store.outbound.get(outbound_id)
    assert parcel is not None and parcel.state == Outbound.REMOVED
    assert parcel.collected_by == "technician:tech"
    removed = [e for e in rig.store.journal.events() if e["type"] == "outbound.removed"]
    assert [e["data"] for e in removed] == [
        {"outbound": outbound_id, "kind": "send", "reference": "SHIP0001", "carrier": "DHL",
         "compartment": comp, "actor": "technician:tech"}
    ]  # fmt: skip
    assert rig.state(comp) == "needs_check"
    token = await courier_of(rig, "dhl-1", "9999", "DHL")
    assert await rig.run(rig.locker.sends.collectable(token)) == []
    with pytest.raises(FlowError) as info:
        await rig.run(rig.locker.sends.start(code(rig)))
    assert info.value.code == "send_code_used"
    await rig.run(Desk(rig.locker).enable(comp, WHO))
    assert rig.state(comp) == "free"


@pytest.mark.parametrize("state", ["depositing", "awaiting_collection"])
@pytest.mark.parametrize("action", ["found", "empty"])
async def test_found_or_empty_only_after_a_deposit_cut_short(rig, action, state) -> None:
    if state == "awaiting_collection":
        await sent(rig, code(rig))
    else:  # a deposit under way
        await rig.run(rig.locker.sends.start(code(rig)))
    before = dump(rig)
    with pytest.raises(FlowError) as info:
        getattr(rig.store.service, action)("S1", *WHO)
    comp = "reserved" if state == "depositing" else "occupied"
    assert (info.value.code, info.value.message) == (
        "not_cut_short", f"S1 is {comp}: no deposit cut short waits there"
    )  # fmt: skip
    assert dump(rig) == before and audit_actions(rig) == []


async def test_only_a_parcel_awaiting_collection_is_taken_out(rig) -> None:
    await rig.run(rig.locker.sends.start(code(rig)))
    outbound_id, _ = outbound(rig)
    before = dump(rig)
    with pytest.raises(FlowError) as info:
        rig.store.service.outbound_removed(outbound_id, *WHO)
    assert info.value.code == "not_in_locker"
    assert dump(rig) == before and audit_actions(rig) == []


async def test_an_unknown_parcel_or_no_reason_is_refused(rig) -> None:
    await sent(rig, code(rig))
    outbound_id, _ = outbound(rig)
    with pytest.raises(NotFound, match="no outbound parcel 99"):
        rig.store.service.outbound_removed(99, *WHO)
    with pytest.raises(FlowError) as info:
        rig.store.service.outbound_removed(outbound_id, "tech", "local", "  ")
    assert info.value.code == "reason_required"
    assert outbound(rig) == (outbound_id, "awaiting_collection")


async def test_a_parcel_whose_door_is_opening_is_not_taken_out(rig) -> None:
    await sent(rig, code(rig))
    outbound_id, _ = outbound(rig)
    token = await courier_of(rig, "dhl-1", "9999", "DHL")
    rig.nobody_at("S1")
    await rig.run(rig.locker.sends.collect(token, outbound_id))
    with pytest.raises(FlowError) as info:
        rig.store.service.outbound_removed(outbound_id, *WHO)
    assert info.value.code == "door_in_progress"
