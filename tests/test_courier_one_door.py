"""A courier has one door at a time: a cancelled drop-off whose door is still open
(``closing``) refuses a new drop-off, an expired parcel's collection and an outbound
parcel's collection alike, and no second door is pulsed."""

from __future__ import annotations

import dataclasses

import pytest

from lockerd import qrtoken
from lockerd.errors import FlowError
from tests.rig import Rig, bank_config
from tests.test_send import KEY, code, sent


@pytest.fixture
async def srig(tmp_path):
    config = bank_config(tmp_path)
    pickup = dataclasses.replace(config.pickup, qr_keys=(qrtoken.public_text(KEY),))
    r = await Rig(dataclasses.replace(config, pickup=pickup)).start()
    yield r
    await r.stop()


async def test_no_outbound_collect_while_a_cancelled_door_is_still_open(srig) -> None:
    rig = srig
    comp = await sent(rig, code(rig))
    [parcel] = rig.store.outbound.all()
    with rig.store.context.change() as conn:
        rig.store.couriers.upsert(conn, "dhl-1", "", "9999", ["deliver", "collect"], "DHL")
    token = await rig.courier("9999")
    flow = await rig.api.dropoff_scan(token, "PCL1", "S")
    await rig.person_opens(flow.compartment)
    await rig.api.dropoff_cancel(token, flow.id)
    assert flow.state == "closing"
    with pytest.raises(FlowError) as info:
        await rig.api.dropoff_scan(token, "PCL3", "S")
    assert info.value.code == "door_in_progress"
    opened_before = rig.unlocks_of(comp)
    with pytest.raises(FlowError) as info:
        await rig.run(rig.locker.sends.collect(token, parcel.id))
    assert info.value.code == "door_in_progress"
    assert rig.unlocks_of(comp) == opened_before
    assert rig.store.outbound.all()[0].state == parcel.state
    assert not rig.store.intents.live(comp)
