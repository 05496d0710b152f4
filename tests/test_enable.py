"""Back in use only shut and latched: the locker, lockerctl and remote enable, on a fake clock.

The fault is the one issue 9 names: a latch that does not catch (a broken
return spring, a latch stuck retracted), so the door is shut, the parcel is
inside, and anyone could pull the door.
"""

from __future__ import annotations

import pytest

from lockerd.domain import Comp, Door
from lockerd.errors import FlowError
from tests.ctl_rig import control
from tests.rig import Rig, bank_config


def out_of_service(rig: Rig, comp: str) -> None:
    rig.store.service.disable(comp, "tech", "local", "latch feels loose")


async def test_a_latch_that_does_not_catch_keeps_its_compartment_out_of_use(rig) -> None:
    comp = await rig.stored("PCL1", "S")
    out_of_service(rig, comp)
    rig.door(comp).latch_broken = True  # no poll since: only a fresh read can know
    before = rig.store.journal.events()
    with pytest.raises(FlowError) as info:
        await rig.api.return_to_service(comp, "tech")
    assert info.value.code == "lock_not_latched"
    assert comp in info.value.message and "shut its door firmly" in info.value.message
    assert rig.store.journal.events() == before
    assert rig.state(comp) == Comp.OUT_OF_SERVICE
    assert rig.door(comp).open(), "the door it guards opens to a pull"
    await rig.person_closes(comp)

    rig.door(comp).latch_broken = False  # the latch repaired
    assert await rig.api.return_to_service(comp, "tech") == Comp.OCCUPIED


async def test_a_latch_still_held_out_by_its_pulse_is_judged_when_the_pulse_ends(rig) -> None:
    reservation = rig.store.service.open("S1", "tech", "local", "look inside")
    await rig.api.open_reserved("service", reservation)
    door = rig.door("S1")
    assert door.open()  # a quick hand: opened and shut while the coil is still energized
    await rig.seen("S1", Door.OPEN, within=0.3)
    door.close()
    await rig.seen("S1", Door.CLOSED, within=0.3)
    assert rig.state("S1") == Comp.NEEDS_CHECK
    assert not door.latched, "the pulse is not over yet"
    assert await rig.api.return_to_service("S1", "tech") == Comp.FREE
    assert door.latched and len(door.pulses) == 1


async def test_a_compartment_whose_boards_do_not_answer_stays_out_of_use(rig) -> None:
    out_of_service(rig, "S1")
    rig.sim.board(0).faults.silent = True
    with pytest.raises(FlowError) as info:
        await rig.api.return_to_service("S1", "tech")
    assert info.value.code == "compartment_unreachable" and "S1" in info.value.message
    assert rig.state("S1") == Comp.OUT_OF_SERVICE


async def test_on_a_hook_read_door_a_released_latch_is_named_as_such(tmp_path) -> None:
    rig = await Rig(bank_config(tmp_path, family="kerong-cu16-hook")).start()
    try:
        rig.door("S1").latch_broken = True
        await rig.polls()
        assert rig.state("S1") == Comp.NEEDS_CHECK  # the lock's switch read as a forced door
        with pytest.raises(FlowError) as info:
            await rig.api.return_to_service("S1", "tech")
        assert info.value.code == "lock_not_latched"
        assert rig.state("S1") == Comp.NEEDS_CHECK
    finally:
        await rig.stop()


async def test_without_latch_feedback_the_door_alone_decides(tmp_path) -> None:
    rig = await Rig(bank_config(tmp_path, family="gpio")).start()
    try:
        out_of_service(rig, "S1")
        rig.nobody_at("S1")
        rig.door("S1").latch_broken = True  # the board cannot know
        assert await rig.api.return_to_service("S1", "tech") == Comp.FREE
    finally:
        await rig.stop()


async def test_lockerctl_enable_refuses_a_lock_that_reads_released(rig) -> None:
    async with control(rig) as ctl:
        code, _, _ = await ctl("disable", "S1", "--reason", "latch feels loose")
        assert code == 0
        rig.door("S1").latch_broken = True
        code, out, err = await ctl("enable", "S1", "--reason", "looks fine")
        assert (code, out) == (1, "")
        assert "(lock_not_latched)" in err and "S1" in err
        assert rig.state("S1") == Comp.OUT_OF_SERVICE
        entries = await ctl.json("audit")
        assert [(e["action"], e["target"]) for e in entries] == [("disable", "S1")]
        assert rig.event_types()[-1] == "service.action"  # the disable's; nothing after it

        rig.door("S1").latch_broken = False
        code, out, _ = await ctl("enable", "S1", "--reason", "latch replaced")
        assert (code, out.strip()) == (0, "S1: free")


async def test_lockerctl_status_shows_each_lock(rig) -> None:
    rig.door("S2").latch_broken = True
    await rig.polls()
    async with control(rig) as ctl:
        status = await ctl.json("status")
        locks = {c["id"]: c["lock"] for c in status["compartments"]}
        assert locks == {
            "S1": "latched",
            "S2": "released",
            "M1": "latched",
            "M2": "latched",
            "L1": "latched",
        }
        code, out, _ = await ctl("status")
        assert code == 0
        lines = out.splitlines()
        header = next(line for line in lines if line.startswith("id "))
        assert header.split()[:5] == ["id", "size", "state", "door", "lock"]
        assert next(line for line in lines if line.startswith("S2 ")).split()[:5] == [
            "S2",
            "S",
            "free",
            "closed",
            "released",
        ]
        rig.sim.board(0).faults.silent = True
        await rig.polls(rig.config.timing.offline_after_polls)
        status = await ctl.json("status")
        assert {c["lock"] for c in status["compartments"]} == {"unknown"}


async def test_lockerctl_status_shows_no_lock_where_the_board_reports_none(tmp_path) -> None:
    rig = await Rig(bank_config(tmp_path, family="gpio")).start()
    try:
        async with control(rig) as ctl:
            status = await ctl.json("status")
            assert {c["lock"] for c in status["compartments"]} == {None}
            _, out, _ = await ctl("status")
            row = next(line for line in out.splitlines() if line.startswith("S1 "))
            assert row.split()[:5] == ["S1", "S", "free", "closed", "-"]
    finally:
        await rig.stop()


async def test_a_remote_enable_of_a_lock_that_reads_released_is_rejected(synced) -> None:
    s = synced
    s.issue("compartment.disable", {"compartment": "S1", "reason": "latch feels loose"})
    await s.drain()
    assert s.rig.state("S1") == Comp.OUT_OF_SERVICE
    s.rig.door("S1").latch_broken = True
    s.issue("compartment.enable", {"compartment": "S1"})
    await s.drain()
    [rejected] = [e for e in s.journal() if e["type"] == "command.rejected"]
    assert rejected["data"]["type"] == "compartment.enable"
    assert "S1" in rejected["data"]["reason"] and "latch" in rejected["data"]["reason"]
    assert s.rig.state("S1") == Comp.OUT_OF_SERVICE
    assert "compartment.in_service" not in s.rig.event_types()

    s.rig.door("S1").latch_broken = False
    s.issue("compartment.enable", {"compartment": "S1"})
    await s.drain()
    assert s.rig.state("S1") == Comp.FREE
