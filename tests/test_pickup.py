"""Resident pickup and wrong-code throttling, on a fake clock."""

import dataclasses

import pytest

from drivers.kerong import cu16
from lockerd.errors import BadRequest, FlowError
from tests.rig import Rig, bank_config

START = 1_800_000_000  # the FakeClock's first instant


async def test_right_code_opens_and_closing_collects(rig) -> None:
    comp = await rig.stored("PCL1", "S")
    code = rig.code_for("PCL1")
    flow = await rig.api.pickups.code(code)
    assert (flow.state, flow.compartment) == ("opening", comp)
    assert rig.unlock_frames()[-1] == cu16.unlock_request(0, 1)
    await rig.person_opens(comp)
    assert flow.state == "open"
    await rig.person_closes(comp)
    assert flow.state == "collected"
    assert rig.state(comp) == "free"
    assert rig.store.parcels.all()[-1].state == "collected"
    assert rig.store.parcels.notices() == [], "no plaintext code left once collected"


async def test_code_works_once(rig) -> None:
    comp = await rig.stored("PCL1", "S")
    code = rig.code_for("PCL1")
    await rig.api.pickups.code(code)
    await rig.person_opens(comp)
    await rig.person_closes(comp)
    with pytest.raises(FlowError) as info:
        await rig.api.pickups.code(code)
    assert info.value.code == "wrong_code"


async def test_codes_are_stored_only_as_hmac(rig) -> None:
    await rig.stored("PCL1", "S")
    code = rig.code_for("PCL1")
    row = rig.store.db.conn.execute(
        "SELECT code_hmac FROM parcels WHERE barcode = 'PCL1'"
    ).fetchone()
    assert row[0] == rig.store.key.digest("pickup", code)
    dump = "\n".join(rig.store.db.conn.iterdump())
    # The notice waiting for the back office holds the code sealed, not in plaintext.
    assert code not in dump
    assert rig.store.parcels.notices()[0].code == code


async def test_wrong_codes_back_off_from_the_third_and_lock_out(rig) -> None:
    await rig.stored("PCL1", "S")
    answers = []
    for _ in range(6):
        with pytest.raises(FlowError) as info:
            await rig.api.pickups.code("00000000")
        answers.append((info.value.code, info.value.details))
        await rig.clock.advance(info.value.details.get("retry_after", 0))
    assert answers[0] == ("wrong_code", {"attempts_left": 5, "retry_after": 0})
    assert answers[1] == ("wrong_code", {"attempts_left": 4, "retry_after": 0})
    assert answers[2] == ("wrong_code", {"attempts_left": 3, "retry_after": 2})
    assert answers[3] == ("wrong_code", {"attempts_left": 2, "retry_after": 4})
    assert answers[4] == ("wrong_code", {"attempts_left": 1, "retry_after": 8})
    # The budget of six is spent at 14 s; the first of it comes back at 900 s.
    code, details = answers[5]
    assert (code, details["retry_after"]) == ("locked_out", 886)
    assert details["retry_at"] == pytest.approx(START + 900, abs=1)
    assert rig.event_types().count("pickup.denied") == 6
    assert "pickup.locked_out" in rig.event_types()


async def test_attempt_during_backoff_is_refused_without_counting(rig) -> None:
    for _ in range(3):
        with pytest.raises(FlowError):
            await rig.api.pickups.code("00000000")
    with pytest.raises(FlowError) as info:
        await rig.api.pickups.code("11111111")
    assert info.value.code == "too_fast"
    assert rig.store.access.throttle_state("pickup").failures == 3


async def test_lockout_survives_a_restart(tmp_path) -> None:
    from tests.rig import bank_config

    config = bank_config(tmp_path)
    rig = await Rig(config).start()
    comp = await rig.stored("PCL1", "S")
    code = rig.code_for("PCL1")
    for _ in range(6):
        with pytest.raises(FlowError) as info:
            await rig.api.pickups.code("00000000")
        if info.value.code != "locked_out":
            await rig.clock.advance(info.value.details["retry_after"])
    clock = rig.clock
    await rig.stop()

    again = await Rig(config, clock).start()
    try:
        with pytest.raises(FlowError) as info:
            await again.api.pickups.code(code)
        assert info.value.code == "locked_out"
        await again.jump(901)
        flow = await again.api.pickups.code(code)
        assert flow.compartment == comp
    finally:
        await again.stop()


@pytest.mark.parametrize(
    "code", ["1234567", "123456789", "1234abcd", "", 12345678, None, "１２３４５６７８"]
)
async def test_malformed_codes_are_refused_and_not_counted(rig, code) -> None:
    before = rig.store.journal.events()
    with pytest.raises(BadRequest) as info:
        await rig.api.pickups.code(code)
    assert info.value.code == "invalid_code"
    assert rig.store.journal.events() == before


async def test_pickup_door_that_never_opens_is_out_of_order(rig) -> None:
    comp = await rig.stored("PCL1", "S")
    rig.door(comp).jammed = True
    flow = await rig.api.pickups.code(rig.code_for("PCL1"))
    await rig.api.pickups.door_did_not_open(flow.id)  # the resident says so
    await rig.clock.advance(40)
    assert (flow.state, flow.error["code"]) == ("failed", "compartment_out_of_order")
    assert rig.state(comp) == "out_of_service"
    with pytest.raises(FlowError) as info:
        await rig.api.pickups.code(rig.code_for("PCL1"))
    assert info.value.code == "compartment_out_of_order"


async def test_expired_parcel_is_refused_to_the_resident(rig) -> None:
    await rig.stored("PCL1", "S")
    code = rig.code_for("PCL1")
    await rig.jump(72 * 3600 + 61)
    assert rig.store.parcels.all()[-1].state == "expired"
    assert "parcel.expired" in rig.event_types()
    with pytest.raises(FlowError) as info:
        await rig.api.pickups.code(code)
    assert info.value.code == "parcel_expired"


async def test_courier_collects_an_expired_parcel(rig) -> None:
    comp = await rig.stored("PCL1", "S")
    await rig.jump(72 * 3600 + 61)
    token = await rig.courier("5555")
    (parcel,) = await rig.api.collectable(token)
    assert (parcel.barcode, parcel.compartment_id) == ("PCL1", comp)
    flow = await rig.api.collect(token, parcel.id)
    assert (flow.kind, flow.state, flow.compartment) == ("collect", "opening", comp)
    await rig.person_opens(comp)
    await rig.person_closes(comp)
    assert flow.state == "collected"
    assert rig.store.parcels.get(parcel.id).state == "returned"
    assert rig.state(comp) == "free"
    assert rig.event_types()[-1] == "parcel.returned"


async def test_collect_needs_the_right_and_an_expired_parcel(rig) -> None:
    await rig.stored("PCL1", "S")
    parcel_id = rig.store.parcels.all()[-1].id
    deliverer = await rig.courier("7777")
    with pytest.raises(FlowError) as info:
        await rig.api.collectable(deliverer)
    assert info.value.code == "not_allowed"
    collector = await rig.courier("5555")
    with pytest.raises(FlowError) as info:
        await rig.api.collect(collector, parcel_id)
    assert info.value.code == "not_collectable"
    with pytest.raises(BadRequest):
        await rig.api.collect(collector, "1")
    assert rig.unlocks_of("S1") == 1


# -- codes issued under another code length stay typeable


def _longer_codes(config):
    """The same locker after an upgrade (or a bank grown) that derives 9-digit codes."""
    return dataclasses.replace(config, pickup=dataclasses.replace(config.pickup, code_length=9))


async def test_a_code_issued_before_the_code_length_grew_still_opens_its_door(tmp_path) -> None:
    config = bank_config(tmp_path)
    rig = await Rig(config).start()
    comp = await rig.stored("PCL1", "S")
    old = rig.code_for("PCL1")
    assert len(old) == 8
    clock = rig.clock
    await rig.stop()
    again = await Rig(_longer_codes(config), clock).start()
    try:
        fresh = await again.stored("PCL2", "S")
        new = again.code_for("PCL2")
        assert len(new) == 9
        assert again.store.parcels.code_lengths() == [8, 9]
        with pytest.raises(BadRequest) as info:
            await again.api.pickups.code("1234567")
        assert "8 or 9 digits" in info.value.message
        assert (await again.api.pickups.code(old)).compartment == comp
        assert (await again.api.pickups.code(new)).compartment == fresh
    finally:
        await again.stop()


async def test_a_code_stored_before_its_length_was_recorded_is_taken_as_the_old_eight(
    tmp_path,
) -> None:
    # A parcel stored by a lockerd before migration 7: its row has no code length.
    config = bank_config(tmp_path)
    rig = await Rig(config).start()
    comp = await rig.stored("PCL1", "S")
    old = rig.code_for("PCL1")
    rig.store.db.conn.execute("UPDATE parcels SET code_length = NULL")
    clock = rig.clock
    await rig.stop()
    again = await Rig(_longer_codes(config), clock).start()
    try:
        assert (await again.api.pickups.code(old)).compartment == comp
    finally:
        await again.stop()


async def test_once_the_last_shorter_code_is_gone_its_length_is_refused(tmp_path) -> None:
    config = bank_config(tmp_path)
    rig = await Rig(config).start()
    comp = await rig.stored("PCL1", "S")
    old = rig.code_for("PCL1")
    clock = rig.clock
    await rig.stop()
    again = await Rig(_longer_codes(config), clock).start()
    try:
        flow = await again.api.pickups.code(old)
        await again.person_opens(comp)
        await again.person_closes(comp)
        assert flow.state == "collected"
        with pytest.raises(BadRequest) as info:
            await again.api.pickups.code("12345678")
        assert info.value.code == "invalid_code"
        assert "9 digits" in info.value.message
    finally:
        await again.stop()
