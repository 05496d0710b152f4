"""Sending and returning at the locker: a signed send code opens the smallest free
compartment of its size, the closed door leaves the parcel awaiting collection, and a
courier of its carrier (only) collects it. Refused codes change nothing but the
wrong-code count they share with pickup codes."""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from lockerd import qrtoken, sendcode
from lockerd.clock import FakeClock
from lockerd.errors import BadRequest, FlowError, StoreError
from lockerd.sendcode import SendClaims
from lockerd.store import Store
from tests.rig import Rig, bank_config

KEY = Ed25519PrivateKey.generate()
#: The tables a refused code must leave as they were (the throttle and journal count it).
UNTOUCHED = ("compartments", "parcels", "unlock_intents", "outbound", "couriers")


@asynccontextmanager
async def sending(tmp_path: Path) -> AsyncIterator[Rig]:
    """The test bank, trusting :data:`KEY` to sign send codes."""
    config = bank_config(tmp_path)
    pickup = dataclasses.replace(config.pickup, qr_keys=(qrtoken.public_text(KEY),))
    rig = await Rig(dataclasses.replace(config, pickup=pickup)).start()
    try:
        yield rig
    finally:
        await rig.stop()


@pytest.fixture
async def rig(tmp_path):
    async with sending(tmp_path) as rig:
        yield rig


def code(
    rig: Rig,
    ref: str = "SHIP0001",
    size: str = "S",
    *,
    kind: str = "send",
    carrier: str = "DHL",
    key: Ed25519PrivateKey = KEY,
    locker: str | None = None,
    ttl: float = 3600,
    jti: str = "s-1",
) -> str:
    claims = SendClaims(
        locker or rig.config.locker.id, kind, ref, size, carrier, rig.clock.time() + ttl, jti
    )
    return sendcode.issue(claims, key)


def dump(rig: Rig) -> dict[str, list[tuple[object, ...]]]:
    conn = rig.store.db.conn
    return {t: [tuple(r) for r in conn.execute(f"SELECT * FROM {t} ORDER BY 1")] for t in UNTOUCHED}


async def sent(rig: Rig, text: str) -> str:
    """A member of the public sends a parcel all the way; its compartment."""
    flow = await rig.run(rig.locker.sends.start(text))
    assert flow.compartment is not None, flow.view()
    await rig.person_opens(flow.compartment, put_in=True)
    await rig.person_closes(flow.compartment)
    assert flow.state == "stored", flow.view()
    return flow.compartment


async def courier_of(rig: Rig, courier_id: str, code_text: str, carrier: str) -> str:
    with rig.store.context.change() as conn:
        rig.store.couriers.upsert(conn, courier_id, "", code_text, ["collect"], carrier)
    return await rig.courier(code_text)


async def test_a_send_code_opens_the_smallest_fitting_door_and_the_parcel_awaits_collection(
    rig,
) -> None:
    flow = await rig.run(rig.locker.sends.start(code(rig, size="M")))
    assert flow.compartment == "M1" and flow.state == "opening"
    assert rig.unlocks_of("M1") == 1
    await rig.person_opens("M1", put_in=True)
    await rig.person_closes("M1")
    assert flow.state == "stored"
    [parcel] = rig.store.outbound.all()
    assert (parcel.state, parcel.compartment_id, parcel.carrier) == (
        "awaiting_collection",
        "M1",
        "DHL",
    )
    assert rig.state("M1") == "occupied"
    [event] = [e for e in rig.store.journal.events() if e["type"] == "outbound.deposited"]
    assert event["data"] == {
        "outbound": parcel.id,
        "kind": "send",
        "reference": "SHIP0001",
        "carrier": "DHL",
        "compartment": "M1",
        "size": "M",
    }


@pytest.mark.parametrize(
    ("make", "error"),
    [
        (lambda rig: code(rig, key=Ed25519PrivateKey.generate()), "send_code_invalid"),
        (lambda rig: code(rig, locker="another-locker"), "send_code_wrong_locker"),
        (lambda rig: code(rig, ttl=-1), "send_code_expired"),
        (lambda rig: code(rig, size="XXL"), "invalid_send_code"),
        (lambda rig: "LKS1.not-a-code", "invalid_send_code"),
        (lambda rig: 12345678, "invalid_send_code"),
    ],
)
async def test_bad_codes_are_refused_by_name_counted_and_change_nothing(rig, make, error) -> None:
    before = dump(rig)
    with pytest.raises(FlowError) as info:
        await rig.run(rig.locker.sends.start(make(rig)))
    assert info.value.code == error
    assert info.value.details["attempts_left"] == rig.config.pickup.throttle.lockout_after - 1
    assert rig.store.access.throttle_state("pickup").failures == 1
    assert dump(rig) == before
    assert sum(rig.unlocks_of(c) for c in rig.config.compartment_ids) == 0


async def test_a_used_code_is_refused_and_counted(rig) -> None:
    await sent(rig, code(rig))
    before = dump(rig)
    with pytest.raises(FlowError) as info:
        await rig.run(rig.locker.sends.start(code(rig)))
    assert info.value.code == "send_code_used"
    assert rig.store.access.throttle_state("pickup").failures == 1
    assert dump(rig) == before


async def test_a_code_cannot_open_two_doors_at_once(rig) -> None:
    await rig.run(rig.locker.sends.start(code(rig)))
    with pytest.raises(FlowError) as info:
        await rig.run(rig.locker.sends.start(code(rig)))
    assert info.value.code == "send_code_used"
    assert rig.unlocks_of("S2") == 0


async def test_send_codes_spend_the_pickup_codes_budget(rig) -> None:
    limits = rig.config.pickup.throttle
    for n in range(limits.lockout_after):
        await rig.jump(limits.backoff_max_s)
        with pytest.raises(FlowError):
            await rig.run(rig.locker.sends.start(code(rig, ttl=-1, jti=f"x{n}")))
    with pytest.raises(FlowError) as info:
        await rig.api.pickups.code("12345678")
    assert info.value.code == "locked_out"
    with pytest.raises(FlowError) as info:
        await rig.run(rig.locker.sends.start(code(rig)))
    assert info.value.code == "locked_out"
    assert rig.store.outbound.all() == []


async def test_a_parcel_that_does_not_fit_gets_a_larger_door(rig) -> None:
    flow = await rig.run(rig.locker.sends.start(code(rig)))
    await rig.person_opens("S1")
    await rig.run(rig.locker.sends.doesnt_fit(flow.id))
    assert (flow.state, flow.offered_size) == ("offer_size", "M")
    await rig.person_closes("S1")
    await rig.run(rig.locker.sends.size(flow.id, "M"))
    assert flow.compartment == "M1"
    await rig.person_opens("M1", put_in=True)
    await rig.person_closes("M1")
    assert flow.state == "stored"
    assert [p.compartment_id for p in rig.store.outbound.all()] == ["M1"]
    assert rig.state("S1") == "free"


async def test_a_sender_who_needs_a_low_door_is_told_when_none_fits(rig) -> None:
    """Only M2 is low: an L parcel has no low door. Refused by name, naming the door that
    would fit; the code is not spent and nothing else changes."""
    before = dump(rig)
    text = code(rig, size="L")
    with pytest.raises(FlowError) as info:
        await rig.run(rig.locker.sends.start(text, prefer_low=True))
    assert info.value.code == "no_low_compartment"
    assert info.value.details["compartment"] == "L1"
    assert dump(rig) == before
    flow = await rig.run(rig.locker.sends.start(text))  # still usable
    assert flow.compartment == "L1"


async def test_a_low_send_that_does_not_fit_asks_before_a_high_door(rig) -> None:
    flow = await rig.run(rig.locker.sends.start(code(rig), prefer_low=True))
    assert flow.compartment == "M2"  # the only low one: larger than S, within reach
    await rig.person_opens("M2")
    await rig.run(rig.locker.sends.doesnt_fit(flow.id))
    await rig.person_closes("M2")
    await rig.run(rig.locker.sends.size(flow.id, "L"))
    assert flow.state == "no_low" and rig.unlocks_of("L1") == 0
    await rig.run(rig.locker.sends.any_height(flow.id))
    assert (flow.compartment, flow.state) == ("L1", "opening")
    assert rig.unlocks_of("L1") == 1


async def test_a_sender_taking_any_height_gets_only_the_door_named(rig) -> None:
    """The only low door (M2) did not open; asked again for S, no low one is free and S1
    is named. S1 taken before the answer: no door opens, and the question comes again
    naming S2; only then does S2 open."""
    rig.door("M2").jammed = True
    flow = await rig.run(rig.locker.sends.start(code(rig), prefer_low=True))
    await rig.clock.advance(40)
    assert (flow.state, rig.state("M2")) == ("did_not_open", "out_of_service")
    await rig.run(rig.locker.sends.size(flow.id, "S"))
    assert flow.state == "no_low" and flow.error and flow.error["compartment"] == "S1"
    assert await rig.stored("PCL1", "S") == "S1"
    await rig.run(rig.locker.sends.any_height(flow.id))
    assert (flow.state, flow.compartment, flow.offered_size) == ("no_low", None, "S")
    assert flow.error and flow.error["compartment"] == "S2"
    assert rig.unlocks_of("S2") == 0 and rig.state("S2") == "free"
    await rig.run(rig.locker.sends.any_height(flow.id))
    assert (flow.state, flow.compartment) == ("opening", "S2")
    assert rig.unlocks_of("S2") == 1


async def test_a_cancelled_send_leaves_the_code_usable(rig) -> None:
    flow = await rig.run(rig.locker.sends.start(code(rig)))
    await rig.run(rig.locker.sends.cancel(flow.id))
    assert rig.state("S1") == "free"
    await sent(rig, code(rig))
    assert [p.state for p in rig.store.outbound.all()] == ["cancelled", "awaiting_collection"]


async def test_a_cancelled_send_whose_door_will_not_shut_is_left_for_a_check(rig) -> None:
    flow = await rig.run(rig.locker.sends.start(code(rig)))
    await rig.person_opens("S1")
    await rig.run(rig.locker.sends.cancel(flow.id))
    assert flow.state == "closing"
    await rig.run(rig.locker.sends.leave_unshut(flow.id))
    assert (flow.state, flow.error["code"]) == ("failed", "door_not_shut")
    assert (rig.state("S1"), rig.store.intents.live("S1")) == ("needs_check", None)
    checks = [
        e["data"] for e in rig.store.journal.events() if e["type"] == "compartment.needs_check"
    ]
    assert checks == [{"compartment": "S1", "reason": "not_shut"}]


async def test_a_return_needs_the_parcel_collected_first(rig) -> None:
    comp = await rig.stored("PCL1", "S")
    returning = code(rig, "PCL1", kind="return", jti="r-1")
    with pytest.raises(FlowError) as info:
        await rig.run(rig.locker.sends.start(returning))
    assert info.value.code == "not_collected"
    await rig.api.pickups.code(rig.code_for("PCL1"))
    await rig.person_opens(comp, take_out=True)
    await rig.person_closes(comp)
    await rig.jump(rig.config.pickup.throttle.backoff_max_s)
    await sent(rig, returning)
    [parcel] = rig.store.outbound.all()
    assert parcel.kind == "return"
    assert parcel.returned_parcel_id == rig.store.parcels.newest_id("PCL1")


async def test_only_a_courier_of_the_carrier_sees_and_collects_it(rig) -> None:
    comp = await sent(rig, code(rig))
    [parcel] = rig.store.outbound.all()
    other = await courier_of(rig, "ups-1", "8888", "UPS")
    assert await rig.run(rig.locker.sends.collectable(other)) == []
    with pytest.raises(FlowError) as info:
        await rig.run(rig.locker.sends.collect(other, parcel.id))
    assert info.value.code == "other_carrier"
    assert rig.unlocks_of(comp) == 1
    dhl = await courier_of(rig, "dhl-1", "9999", "DHL")
    assert [p.id for p in await rig.run(rig.locker.sends.collectable(dhl))] == [parcel.id]
    flow = await rig.run(rig.locker.sends.collect(dhl, parcel.id))
    await rig.person_opens(comp, take_out=True)
    await rig.person_closes(comp)
    assert flow.state == "collected"
    collected = rig.store.outbound.get(parcel.id)
    assert collected is not None and (collected.state, collected.collected_by) == (
        "collected",
        "dhl-1",
    )
    assert rig.state(comp) == "free"
    assert "outbound.collected" in rig.event_types()


async def test_a_collect_request_names_a_parcel_by_its_id(rig) -> None:
    dhl = await courier_of(rig, "dhl-1", "9999", "DHL")
    with pytest.raises(BadRequest):
        await rig.run(rig.locker.sends.collect(dhl, "1"))
    with pytest.raises(FlowError) as info:
        await rig.run(rig.locker.sends.collect(dhl, 42))
    assert info.value.code == "not_collectable"


async def test_a_drop_off_records_the_couriers_carrier(rig) -> None:
    with rig.store.context.change() as conn:
        rig.store.couriers.upsert(conn, "dhl-2", "", "6666", ["deliver"], "DHL")
    token = await rig.courier("6666")
    flow = await rig.api.dropoff_scan(token, "INB0001", "S")
    assert flow.compartment is not None
    await rig.person_opens(flow.compartment, put_in=True)
    await rig.person_closes(flow.compartment)
    row = rig.store.db.conn.execute("SELECT carrier FROM parcels WHERE barcode = 'INB0001'")
    assert row.fetchone()[0] == "DHL"


def test_couriers_from_before_carriers_have_none(tmp_path) -> None:
    from lockerd.store._db import Database
    from lockerd.store.migrations import MIGRATIONS

    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    for statement in [s for m in MIGRATIONS[:8] for s in m]:
        conn.execute(statement)
    conn.execute("INSERT INTO couriers (id, code_hmac) VALUES ('c1', x'00')")
    conn.execute("PRAGMA user_version = 8")
    conn.commit()
    conn.close()
    db = Database(path)
    assert [tuple(r) for r in db.conn.execute("SELECT carrier FROM couriers")] == [("",)]
    db.close()


async def test_an_expired_parcel_goes_back_only_with_a_courier_of_its_carrier(rig) -> None:
    with rig.store.context.change() as conn:
        rig.store.couriers.upsert(conn, "dhl-3", "", "6767", ["deliver", "collect"], "DHL")
    token = await rig.courier("6767")
    flow = await rig.api.dropoff_scan(token, "EXPD0001", "S")
    assert flow.compartment is not None
    await rig.person_opens(flow.compartment, put_in=True)
    await rig.person_closes(flow.compartment)
    await rig.jump(rig.config.pickup.hold_hours * 3600 + rig.config.timing.expiry_sweep_s)
    [parcel] = [p for p in rig.store.parcels.all() if p.barcode == "EXPD0001"]
    assert parcel.state == "expired"
    ups = await courier_of(rig, "ups-2", "5656", "UPS")
    assert await rig.api.collectable(ups) == []
    with pytest.raises(FlowError) as info:
        await rig.api.collect(ups, parcel.id)
    assert info.value.code == "other_carrier"
    anyone = await rig.courier("5555")  # the demo's courier of no carrier
    assert await rig.api.collectable(anyone) == []
    dhl = await rig.courier("6767")
    assert [p.id for p in await rig.api.collectable(dhl)] == [parcel.id]
    collect = await rig.api.collect(dhl, parcel.id)
    assert collect.compartment == flow.compartment


async def test_a_refused_code_says_when_the_next_may_be_tried(rig) -> None:
    free = rig.config.pickup.throttle.free_failures
    for n in range(free + 1):
        with pytest.raises(FlowError) as info:
            await rig.run(rig.locker.sends.start(code(rig, ttl=-1, jti=f"e{n}")))
    assert info.value.details["retry_after"] == rig.config.pickup.throttle.backoff_base_s
    with pytest.raises(FlowError) as info:
        await rig.run(rig.locker.sends.start(code(rig)))
    assert info.value.code == "too_fast"
    assert rig.store.outbound.all() == []


async def test_a_compartment_holding_a_parcel_to_send_stays_in_the_config(rig) -> None:
    comp = await sent(rig, code(rig))
    config = dataclasses.replace(
        rig.config, compartment=tuple(c for c in rig.config.compartment if c.id != comp)
    )
    store = Store.open(config, FakeClock())
    try:
        with pytest.raises(StoreError) as info:
            store.compartments.sync_layout()
        assert str(info.value).startswith(f"compartment {comp} holds a parcel to send but")
    finally:
        store.close()
