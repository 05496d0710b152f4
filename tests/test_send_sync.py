"""Sending through the back office: it issues the send code and the courier's carrier
(``courier.upsert``); the locker's deposit and the courier's collection reach it once.

Every test runs over each of ``TRANSPORTS`` (tests/sync_rig.py: HTTPS, MQTT 5 and, in the
slow group, MQTT 3.1.1); the send code itself is asked of the back office's ``/control``
over HTTP, as people and demos ask it, whatever the locker's transport."""

from __future__ import annotations

import aiohttp
import pytest

from lockerd import qrtoken
from lockerd.errors import FlowError
from tests.sync_rig import OFFICE_KEY, TRANSPORT_PARAMS, synced_via


@pytest.mark.parametrize("transport", TRANSPORT_PARAMS)
async def test_the_back_office_issues_a_send_code_and_its_carriers_courier_collects(
    tmp_path, transport
) -> None:
    keys = (qrtoken.public_text(OFFICE_KEY),)
    async with synced_via(transport, tmp_path, qr_keys=keys) as s:
        rig = s.rig
        for courier, code, carrier in (("dhl-1", "9999", "DHL"), ("ups-1", "8888", "UPS")):
            data = {"id": courier, "code": code, "rights": ["collect"], "carrier": carrier}
            s.issue("courier.upsert", data)
        await s.drain()
        locker = rig.config.locker.id
        async with aiohttp.ClientSession() as http:
            wanted = {"size": "M", "reference": "SHIP0009", "carrier": "DHL"}
            url = f"{s.office.url}/control/lockers/{locker}/send-codes"
            async with http.post(url, json=wanted) as response:
                assert response.status == 201
                issued = await response.json()
        assert issued["key"] == keys[0]
        flow = await rig.run(rig.locker.sends.start(issued["code"]))
        await rig.person_opens("M1", put_in=True)
        await rig.person_closes("M1")
        [parcel] = rig.store.outbound.all()

        ups = await rig.courier("8888")
        assert await rig.run(rig.locker.sends.collectable(ups)) == []
        with pytest.raises(FlowError) as info:
            await rig.run(rig.locker.sends.collect(ups, parcel.id))
        assert info.value.code == "other_carrier"
        dhl = await rig.courier("9999")
        collect = await rig.run(rig.locker.sends.collect(dhl, parcel.id))
        await rig.person_opens("M1", take_out=True)
        await rig.person_closes("M1")
        assert (flow.state, collect.state) == ("stored", "collected")
        await s.drain()
        s.assert_every_event_arrived_once_in_order()
        arrived = [e for e in s.journal() if e["type"].startswith("outbound.")]
        assert [(e["type"], e["data"]["carrier"]) for e in arrived] == [
            ("outbound.deposited", "DHL"),
            ("outbound.collected", "DHL"),
        ]
        added = [e["data"] for e in s.journal() if e["type"] == "courier.added"]
        carriers = {d["courier"]: d.get("carrier") for d in added}
        assert (carriers["dhl-1"], carriers["ups-1"], carriers["c1"]) == ("DHL", "UPS", None)


async def test_a_courier_upsert_with_a_bad_carrier_is_rejected(synced_any) -> None:
    s = synced_any
    s.issue("courier.upsert", {"id": "c1x", "code": "9999", "rights": ["collect"], "carrier": ""})
    await s.drain()
    [rejected] = [e for e in s.journal() if e["type"] == "command.rejected"]
    assert "carrier" in rejected["data"]["reason"]
    assert s.rig.store.db.conn.execute("SELECT 1 FROM couriers WHERE id = 'c1x'").fetchone() is None


def _announce(s, code: str = "12345678", **data: object) -> None:
    wanted = {"code": code, "reference": "TYPED001", "size": "S", "carrier": "DHL"}
    s.issue("send.expect", wanted | {"valid_until": int(s.rig.clock.time()) + 3600} | data)


async def test_a_typed_send_code_announced_by_the_back_office_deposits_once(synced_any) -> None:
    s, rig = synced_any, synced_any.rig
    _announce(s)
    await s.drain()
    flow = await rig.run(rig.locker.sends.start("12345678"))
    assert (flow.compartment, flow.barcode) == ("S1", "TYPED001")
    await rig.person_opens("S1", put_in=True)
    await rig.person_closes("S1")
    [parcel] = rig.store.outbound.all()
    assert (parcel.state, parcel.carrier, parcel.reference) == (
        "awaiting_collection",
        "DHL",
        "TYPED001",
    )
    with pytest.raises(FlowError) as info:
        await rig.run(rig.locker.sends.start("12345678"))
    assert info.value.code == "send_code_used"
    stored = rig.store.db.conn.execute("SELECT code_hmac FROM send_codes").fetchone()[0]
    assert b"12345678" not in bytes(stored)  # kept only as an HMAC


@pytest.mark.parametrize(
    ("typed", "valid_for", "error"),
    [("87654321", 3600, "wrong_code"), ("12345678", -1, "send_code_expired")],
)
async def test_a_wrong_or_expired_typed_code_is_counted_and_opens_nothing(
    synced_any, typed, valid_for, error
) -> None:
    s, rig = synced_any, synced_any.rig
    _announce(s, valid_until=int(rig.clock.time()) + valid_for)
    await s.drain()
    with pytest.raises(FlowError) as info:
        await rig.run(rig.locker.sends.start(typed))
    assert info.value.code == error
    assert info.value.details["attempts_left"] == rig.config.pickup.throttle.lockout_after - 1
    assert rig.store.outbound.all() == [] and rig.state("S1") == "free"
    assert rig.unlocks_of("S1") == 0


async def test_send_expect_refuses_an_unknown_size_and_a_code_announced_twice(synced_any) -> None:
    s = synced_any
    _announce(s, size="XL")
    _announce(s, code="11112222")
    _announce(s, code="11112222", reference="OTHER001")
    await s.drain()
    reasons = [e["data"]["reason"] for e in s.journal() if e["type"] == "command.rejected"]
    assert reasons == ["no size 'XL' here (S, M, L)", "that send code is announced here already"]


async def test_a_send_code_delivered_twice_is_announced_once(synced_any) -> None:
    s = synced_any
    s.office.faults.duplicate_commands = True
    _announce(s)
    await s.drain()
    await s.drain()  # the duplicate page comes round again
    assert s.record.served_twice, "the back office did deliver the command twice"
    outcomes = [e["type"] for e in s.journal() if e["type"].startswith("command.")]
    assert outcomes == ["command.applied"]
    assert s.rig.store.db.conn.execute("SELECT COUNT(*) FROM send_codes").fetchone()[0] == 1
