"""Every board family runs the same drop-off, pickup and fault flows against its twin."""

import pytest

from lockerd import families as registered
from tests.families import FAMILIES
from tests.rig import Rig, bank_config


def test_every_registered_family_has_test_data() -> None:
    """A family added to lockerd.families without a test bank here would go untested."""
    from tests.families import EXPANDERS, LOCK_BOARDS

    tested = {board.protocol for board in LOCK_BOARDS.values()}
    tested |= {"i2c"} if any(f.partition("+")[2] in EXPANDERS for f in FAMILIES) else set()
    assert tested == set(registered.FAMILIES)


@pytest.fixture(params=FAMILIES)
async def family_rig(request, tmp_path):
    rig = await Rig(bank_config(tmp_path, family=request.param)).start()
    yield rig
    await rig.stop()


async def test_dropoff_and_pickup(family_rig) -> None:
    rig = family_rig
    token = await rig.courier()
    flow = await rig.api.dropoff_scan(token, "FAM00001")
    assert flow.state == "need_size"
    await rig.api.dropoff_size(token, flow.id, "M")
    assert (flow.state, flow.compartment) == ("opening", "M1")
    assert rig.unlocks_of("M1") == 1
    await rig.person_opens("M1")
    assert flow.state == "open"
    await rig.person_closes("M1")
    assert flow.state == "stored"

    pickup = await rig.api.pickups.code(rig.code_for("FAM00001"))
    assert rig.unlocks_of("M1") == 2
    await rig.person_opens("M1")
    await rig.person_closes("M1")
    assert pickup.state == "collected"
    assert rig.state("M1") == "free"


async def test_jammed_door_is_taken_out_and_another_opened(family_rig) -> None:
    rig = family_rig
    rig.door("S1").jammed = True
    token = await rig.courier()
    flow = await rig.api.dropoff_scan(token, "FAM00002", "S")
    # The door does not move, so each pulse's release ends with the pulse (a lock
    # read as the door shows it for the energize time): never a door cycle.
    await rig.clock.advance(40)
    assert rig.state("S1") == "out_of_service"
    # The courier, back at the kiosk, asks for another compartment.
    assert flow.state == "did_not_open"
    await rig.api.dropoff_size(token, flow.id, "S")
    assert flow.compartment == "S2"
    # The status read after the timeout shows the latch caught and the door shut:
    # exactly one more pulse, then out of service.
    assert rig.unlocks_of("S1") == 2
    assert not [e for e in rig.store.journal.events() if e["type"] == "door.opened"]


async def test_nobody_opens_a_pickup_door_in_time(family_rig) -> None:
    """A pulse nobody follows up (nor says the door did not open) is not a door cycle and
    no fault: the pickup ends, the parcel stays stored, its compartment occupied."""
    rig = family_rig
    comp = await rig.stored("FAM00005", "M")
    rig.nobody_at(comp)
    pickup = await rig.api.pickups.code(rig.code_for("FAM00005"))
    await rig.clock.advance(3 * rig.config.timing.pickup_door_open_s)
    assert (pickup.state, pickup.error["code"]) == ("failed", "not_opened_in_time")
    assert rig.unlocks_of(comp) == 2, "the drop-off's pulse and the pickup's, no re-pulse"
    assert rig.state(comp) == "occupied"
    parcel = rig.store.db.conn.execute(
        "SELECT state FROM parcels WHERE barcode = 'FAM00005'"
    ).fetchone()
    assert parcel[0] == "stored"
    assert [e for e in rig.event_types() if e.startswith(("door.opened", "parcel.c"))] == [
        "door.opened"
    ], "only the courier's drop-off opened the door"


async def test_nobody_opens_a_pickup_door(family_rig) -> None:
    """A pulse nobody follows up is not a door cycle: the parcel stays stored; said not
    to open, the status-checked re-pulse, then out of service."""
    rig = family_rig
    comp = await rig.stored("FAM00004", "M")
    rig.nobody_at(comp)
    pickup = await rig.api.pickups.code(rig.code_for("FAM00004"))
    assert rig.unlocks_of(comp) == 2
    await rig.api.pickups.door_did_not_open(pickup.id)
    assert pickup.attempt == 2, "one re-pulse after the status read"
    assert rig.unlocks_of(comp) == 3
    await rig.clock.advance(rig.config.timing.pickup_door_open_s)
    assert (pickup.state, pickup.error["code"]) == ("failed", "compartment_out_of_order")
    assert rig.state(comp) == "out_of_service"
    parcel = rig.store.db.conn.execute(
        "SELECT state FROM parcels WHERE barcode = 'FAM00004'"
    ).fetchone()
    assert parcel[0] == "stored"
    opened = [e for e in rig.store.journal.events() if e["type"] == "door.opened"]
    assert len(opened) == 1, "only the courier's drop-off opened the door"
    assert "parcel.collected" not in rig.event_types()


async def test_stuck_lock_gets_exactly_one_checked_repulse(family_rig) -> None:
    rig = family_rig
    rig.door("S1").stuck = True
    await rig.api.dropoff_scan(await rig.courier(), "FAM00003", "S")
    await rig.clock.advance(40)
    assert rig.unlocks_of("S1") == 2
    assert rig.state("S1") == "out_of_service"


async def test_forced_door_raises_an_alarm(family_rig) -> None:
    rig = family_rig
    rig.door("M2").force()
    await rig.polls()
    assert "door.forced" in rig.event_types()
    assert rig.state("M2") == "needs_check"


@pytest.mark.parametrize("which", ["lock board", "door board"])
async def test_silent_board_goes_offline_and_nothing_on_it_is_offered(family_rig, which) -> None:
    rig = family_rig
    comp = rig.config.compartment[0]
    name = comp.board if which == "lock board" else comp.door_board
    board = rig.config.board_named(name)
    if rig.config.bus_named(board.bus).protocol == "gpio":
        pytest.skip("the GPIO header cannot fall silent")
    if rig.config.bus_named(board.bus).protocol == "i2c":
        rig.hw.i2c_sims[board.bus].devices[board.address].nack = True  # no ACK
    else:
        rig.hw.serial_sims[board.bus].board(board.address).faults.silent = True
    for _ in range(3):
        await rig.clock.advance(rig.config.timing.poll_interval_ms / 1000)
    assert {"board": name} in [
        e["data"] for e in rig.store.journal.events() if e["type"] == "board.offline"
    ]
    assert rig.locker.bank.unavailable() == rig.config.compartment_ids
