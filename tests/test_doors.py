"""Door alarms, debouncing, board silence and the service door cycle, on a fake clock."""

import asyncio

import pytest

from lockerd.desk import Desk
from lockerd.domain import Door


async def test_door_left_open_raises_an_alarm_and_needs_a_check(rig) -> None:
    token = await rig.courier()
    flow = await rig.api.dropoff_scan(token, "PCL1", "S")
    await rig.person_opens("S1")
    await rig.clock.advance(121)
    assert "door.left_open" in rig.event_types()
    assert flow.alarm == "left_open"
    await rig.person_closes("S1")
    assert flow.state == "stored"
    assert rig.state("S1") == "needs_check"


async def test_left_open_after_pickup_never_offers_the_compartment(rig) -> None:
    comp = await rig.stored("PCL1", "S")
    await rig.api.pickups.code(rig.code_for("PCL1"))
    await rig.person_opens(comp)
    await rig.clock.advance(121)
    await rig.person_closes(comp)
    assert rig.state(comp) == "needs_check"
    token = await rig.courier()
    flow = await rig.api.dropoff_scan(token, "PCL2", "S")
    assert flow.compartment != comp


async def test_forced_door_is_an_alarm_and_never_offered(rig) -> None:
    rig.door("S1").force()
    await rig.polls()
    assert "door.forced" in rig.event_types()
    assert rig.state("S1") == "needs_check"
    rig.door("S1").close()
    await rig.polls()
    assert rig.state("S1") == "needs_check"
    token = await rig.courier()
    flow = await rig.api.dropoff_scan(token, "PCL1", "S")
    assert flow.compartment == "S2"


async def test_forced_door_left_open_also_alarms(rig) -> None:
    rig.door("M1").force()
    await rig.polls()
    await rig.clock.advance(121)
    assert rig.event_types().count("door.left_open") == 1


async def test_a_one_read_glitch_is_debounced(rig) -> None:
    board = rig.sim.board(0)
    board.faults.glitch_sensors = 0b1  # S1's door switch reads open once
    await rig.polls(3)
    assert "door.forced" not in rig.event_types()
    assert rig.state("S1") == "free"
    assert rig.locker.bank.boards["cu0"].reads >= 4, "the glitch was re-read to confirm it"


async def test_a_real_opening_is_reported_within_one_poll_period(rig) -> None:
    await rig.polls(1)
    opened_at = rig.clock.monotonic()
    rig.door("M1").force()
    interval = rig.config.timing.poll_interval_ms / 1000
    while "door.forced" not in rig.event_types():
        await rig.clock.advance(0.005)
        assert rig.clock.monotonic() - opened_at <= interval + 0.03, "not within one period"


async def test_sensor_on_another_channel(rig) -> None:
    # L1's lock is channel 5 but its door switch is on sensor input 9.
    token = await rig.courier()
    flow = await rig.api.dropoff_scan(token, "PCL1", "L")
    assert flow.compartment == "L1"
    await rig.person_opens("L1")
    assert rig.locker.bank.door("L1") == Door.OPEN
    assert flow.state == "open"


async def test_silent_board_goes_offline_and_comes_back(rig) -> None:
    rig.sim.board(0).faults.silent = True
    await rig.polls(3)
    assert rig.event_types()[-1] == "board.offline"
    assert rig.locker.bank.unavailable() == {"S1", "S2", "M1", "M2", "L1"}
    rig.sim.board(0).faults.silent = False
    await rig.polls(1)
    assert rig.event_types()[-1] == "board.online"
    assert rig.locker.bank.unavailable() == set()


async def test_door_opened_while_board_was_silent_is_seen_on_return(rig) -> None:
    rig.sim.board(0).faults.silent = True
    await rig.polls(3)
    rig.door("M1").force()
    rig.sim.board(0).faults.silent = False
    await rig.polls()
    assert "door.forced" in rig.event_types()
    assert rig.state("M1") == "needs_check"


async def test_event_stream_carries_journal_and_flow_updates(rig) -> None:
    await rig.stored("PCL1", "S")
    await rig.clock.drain()
    kinds = [m["type"] for m in rig.messages]
    assert "parcel.stored" in kinds and "flow.updated" in kinds
    seqs = [m["seq"] for m in rig.messages if "seq" in m]
    assert seqs == sorted(seqs) and len(seqs) == len(set(seqs))
    states = [m["flow"]["state"] for m in rig.messages if m["type"] == "flow.updated"]
    assert states[-2:] == ["open", "stored"]


async def test_board_dead_at_start_is_reported_and_not_offered(tmp_path) -> None:
    from lockerd.errors import FlowError
    from tests.rig import Rig, bank_config

    rig = Rig(bank_config(tmp_path))
    rig.sim.board(0).faults.silent = True
    await rig.start()
    try:
        await rig.clock.drain()
        assert "board.offline" in rig.event_types()
        token = await rig.courier()
        with pytest.raises(FlowError) as info:
            await rig.api.dropoff_scan(token, "PCL1", "S")
        assert info.value.code == "locker_full"
        rig.sim.board(0).faults.silent = False
        await rig.polls(1)
        assert rig.event_types()[-1] == "board.online"
        assert rig.locker.bank.unavailable(), "doors are known only after the debounce"
        await rig.polls()
        flow = await rig.api.dropoff_scan(token, "PCL1", "S")
        assert flow.compartment == "S1"
    finally:
        await rig.stop()


async def test_a_checked_compartment_goes_back_in_service(rig) -> None:
    from lockerd.errors import FlowError

    rig.door("S1").force()
    await rig.polls()
    with pytest.raises(FlowError) as info:
        await rig.api.return_to_service("S1", "tech")
    assert info.value.code == "door_not_closed"
    await rig.person_closes("S1")
    assert await rig.api.return_to_service("S1", "tech") == "free"
    assert rig.event_types()[-1] == "compartment.in_service"
    with pytest.raises(FlowError) as info:
        await rig.api.return_to_service("S1", "tech")
    assert info.value.code == "in_service"


async def test_a_door_cycle_reads_the_latch_once_the_pulse_is_over(rig) -> None:
    door = rig.door("S1")
    door.hand = True  # a person stands at S1 pulling the handle: it opens as the latch releases
    said: list[str] = []

    async def say(text: str) -> None:
        said.append(text)

    who = ("tech", "local", "acceptance")
    cycle = asyncio.ensure_future(Desk(rig.locker).door_cycle("S1", who, 30, say))
    await rig.seen("S1", Door.OPEN)
    door.close()
    assert not door.latched, "shut while the coil still holds the latch out"
    await rig.seen("S1", Door.CLOSED)
    report = await rig.run(cycle)
    assert report == {
        "compartment": "S1",
        "opened": True,
        "closed": True,
        "latched": True,
        "error": None,
    }
    assert said == ["pulsed: open the door, then shut it", "door seen open", "ok"]
