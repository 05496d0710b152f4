"""Courier drop-off on a fake clock, every branch."""

import pytest

from drivers.kerong import cu16
from lockerd.domain import Door
from lockerd.errors import BadRequest, FlowError, Unauthorized


async def test_expected_parcel_is_stored_with_its_announced_size(rig) -> None:
    token = await rig.courier()
    flow = await rig.api.dropoff_scan(token, "EXP0001")
    assert (flow.state, flow.compartment, flow.size) == ("opening", "M1", "M")
    assert rig.unlock_frames() == [cu16.unlock_request(0, 3)]
    assert rig.state("M1") == "reserved"

    await rig.person_opens("M1")
    assert flow.state == "open"
    assert rig.state("M1") == "open"

    await rig.person_closes("M1")
    assert flow.state == "stored"
    assert rig.state("M1") == "occupied"
    parcel = rig.store.parcels.get(flow.parcel)
    assert (parcel.state, parcel.compartment_id, parcel.recipient) == (
        "stored",
        "M1",
        "flat-1",
    )
    assert len(rig.code_for("EXP0001")) == 8
    tail = [t for t in rig.event_types() if t not in ("courier.login",)][-5:]
    assert tail == ["unlock.intent", "lock.pulsed", "door.opened", "door.closed", "parcel.stored"]


async def test_unknown_parcel_asks_for_a_size(rig) -> None:
    token = await rig.courier()
    flow = await rig.api.dropoff_scan(token, "NEW0001")
    assert flow.state == "need_size"
    assert rig.unlock_frames() == []
    await rig.api.dropoff_size(token, flow.id, "S")
    assert (flow.state, flow.compartment) == ("opening", "S1")


async def test_smallest_free_that_fits_then_larger(rig) -> None:
    assert await rig.stored("PCL1", "S") == "S1"
    assert await rig.stored("PCL2", "S") == "S2"
    assert await rig.stored("PCL3", "S") == "M1"  # no S left: the next size up


async def test_lower_compartment_is_preferred_when_asked(rig) -> None:
    token = await rig.courier()
    flow = await rig.api.dropoff_scan(token, "PCL1", "M", prefer_low=True)
    assert flow.compartment == "M2"


async def test_a_low_compartment_of_a_larger_size_rather_than_one_out_of_reach(rig) -> None:
    token = await rig.courier()
    flow = await rig.api.dropoff_scan(token, "PCL1", "S", prefer_low=True)
    assert (flow.state, flow.compartment) == ("opening", "M2")
    assert rig.state("M2") == "reserved"
    assert rig.state("S1") == "free"


async def test_no_low_compartment_free_asks_the_courier_first(rig) -> None:
    assert await rig.stored("PCL1", "M") == "M1"
    assert await rig.stored("PCL2", "M") == "M2"
    token = await rig.courier()
    frames = len(rig.unlock_frames())
    flow = await rig.api.dropoff_scan(token, "PCL3", "M", prefer_low=True)
    # Nothing is reserved or pulsed while the courier decides.
    assert (flow.state, flow.compartment, flow.offered_size) == ("no_low", None, "M")
    assert flow.error is not None
    assert (flow.error["code"], flow.error["compartment"]) == ("no_low_compartment", "L1")
    assert len(rig.unlock_frames()) == frames
    assert rig.state("L1") == "free"
    with pytest.raises(FlowError) as info:
        await rig.api.dropoff_size(token, flow.id, "L")
    assert info.value.code == "wrong_state"
    # The courier takes the compartment out of reach: it is reserved and pulsed.
    await rig.api.dropoff_any_height(token, flow.id)
    assert (flow.state, flow.compartment, flow.error) == ("opening", "L1", None)
    assert rig.state("L1") == "reserved"
    assert len(rig.unlock_frames()) == frames + 1
    with pytest.raises(FlowError) as info:
        await rig.api.dropoff_any_height(token, flow.id)
    assert info.value.code == "wrong_state"


async def test_no_low_compartment_free_and_the_courier_cancels(rig) -> None:
    await rig.stored("PCL1", "M")
    await rig.stored("PCL2", "M")
    token = await rig.courier()
    flow = await rig.api.dropoff_scan(token, "PCL3", "S", prefer_low=True)
    assert (flow.state, flow.error and flow.error["compartment"]) == ("no_low", "S1")
    await rig.api.dropoff_cancel(token, flow.id)
    assert flow.state == "cancelled"
    assert [rig.state(c) for c in ("S1", "S2", "L1")] == ["free", "free", "free"]


async def test_any_height_opens_only_the_compartment_the_question_named(rig) -> None:
    """The question named S1; another courier took S1 before the answer: the flow asks
    again naming S2 (pulsing nothing), and only "use S2" opens S2."""
    await rig.stored("PCL1", "M")
    await rig.stored("PCL2", "M")
    token = await rig.courier()
    flow = await rig.api.dropoff_scan(token, "PCL3", "S", prefer_low=True)
    assert (flow.state, flow.error and flow.error["compartment"]) == ("no_low", "S1")
    assert await rig.stored("PCL4", "S") == "S1"
    frames = len(rig.unlock_frames())
    await rig.api.dropoff_any_height(token, flow.id)
    assert (flow.state, flow.compartment, flow.offered_size) == ("no_low", None, "S")
    assert flow.error is not None
    assert (flow.error["code"], flow.error["compartment"]) == ("no_low_compartment", "S2")
    assert len(rig.unlock_frames()) == frames
    assert rig.state("S2") == "free"
    await rig.api.dropoff_any_height(token, flow.id)
    assert (flow.state, flow.compartment, flow.error) == ("opening", "S2", None)
    assert len(rig.unlock_frames()) == frames + 1


async def test_any_height_keeps_the_named_compartment_while_it_is_free(rig) -> None:
    """The question named L1 for an M parcel; M1 was freed meanwhile (a smaller one the
    locker would choose now): the courier still gets L1, the door the screen named."""
    assert await rig.stored("PCL1", "M") == "M1"
    await rig.stored("PCL2", "M")
    token = await rig.courier()
    flow = await rig.api.dropoff_scan(token, "PCL3", "M", prefer_low=True)
    assert (flow.state, flow.error and flow.error["compartment"]) == ("no_low", "L1")
    await rig.api.pickups.code(rig.code_for("PCL1"))
    await rig.person_opens("M1", take_out=True)
    await rig.person_closes("M1")
    assert rig.state("M1") == "free"
    await rig.api.dropoff_any_height(token, flow.id)
    assert (flow.state, flow.compartment) == ("opening", "L1")
    assert rig.state("M1") == "free"


async def test_full_locker_says_so(rig) -> None:
    for barcode in ("PCL1", "PCL2", "PCL3", "PCL4", "PCL5"):
        await rig.stored(barcode, "S")
    token = await rig.courier()
    with pytest.raises(FlowError) as info:
        await rig.api.dropoff_scan(token, "PCL6", "S")
    assert info.value.code == "locker_full"


async def test_door_not_seen_open_gets_one_status_checked_repulse(rig) -> None:
    token = await rig.courier()
    flow = await rig.api.dropoff_scan(token, "PCL1", "S")
    # Nobody pulled the door during the pulse: the latch caught again when it ended.
    await rig.clock.advance(20)
    assert flow.attempt == 2
    frames = rig.sim.frames()
    unlock = cu16.unlock_request(0, 1)
    assert frames.count(unlock) == 2
    second = len(frames) - 1 - frames[::-1].index(unlock)
    assert frames[second - 1] == cu16.status_request(0), "status read right before the re-pulse"
    await rig.person_opens("S1")
    assert flow.state == "open"


async def test_jammed_door_goes_out_of_service_and_another_is_chosen(rig) -> None:
    token = await rig.courier()
    rig.door("S1").jammed = True
    flow = await rig.api.dropoff_scan(token, "PCL1", "S")
    await rig.clock.advance(20)
    # The door did not move, so the latch caught again after the pulse: the
    # status read shows it latched and shut, and one re-pulse is allowed.
    assert rig.unlocks_of("S1") == 2
    await rig.clock.advance(20)
    assert rig.state("S1") == "out_of_service"
    assert (flow.state, flow.compartment) == ("did_not_open", None)
    assert rig.unlocks_of("S2") == 0
    assert "door.jammed" in rig.event_types()
    assert "compartment.out_of_service" in rig.event_types()


async def test_a_courier_who_walks_away_costs_one_compartment(rig) -> None:
    """Nobody pulls the door: after its re-pulse the compartment goes out of service,
    and the locker waits for the courier instead of pulsing door after door."""
    for comp in rig.config.compartment:
        rig.nobody_at(comp.id)
    token = await rig.courier()
    flow = await rig.api.dropoff_scan(token, "PCL1", "S")
    await rig.clock.advance(600)
    broken = [c.id for c in rig.store.compartments.all() if c.state != "free"]
    assert broken == ["S1"]
    assert sum(rig.unlocks_of(c.id) for c in rig.config.compartment) == 2
    assert (flow.state, flow.compartment, flow.offered_size) == ("did_not_open", None, "S")
    assert flow.error == {
        "code": "door_did_not_open",
        "message": "S1 did not open",
        "compartment": "S1",
    }


async def test_after_a_door_that_did_not_open_the_courier_asks_for_another(rig) -> None:
    rig.door("S1").jammed = True
    token = await rig.courier()
    flow = await rig.api.dropoff_scan(token, "PCL1", "S")
    await rig.clock.advance(40)
    assert flow.state == "did_not_open"
    with pytest.raises(BadRequest):
        await rig.api.dropoff_size(token, flow.id, "XS")
    await rig.api.dropoff_size(token, flow.id, "S")
    assert (flow.state, flow.compartment, flow.error) == ("opening", "S2", None)
    await rig.person_opens("S2", put_in=True)
    await rig.person_closes("S2")
    assert flow.state == "stored"


async def test_stuck_lock_is_pulsed_twice_then_taken_out(rig) -> None:
    rig.door("S1").stuck = True
    token = await rig.courier()
    flow = await rig.api.dropoff_scan(token, "PCL1", "S")
    await rig.clock.advance(40)
    assert rig.unlocks_of("S1") == 2
    assert rig.state("S1") == "out_of_service"
    assert flow.state == "did_not_open"


async def test_silent_board_means_no_blind_repulse(rig) -> None:
    token = await rig.courier()
    flow = await rig.api.dropoff_scan(token, "PCL1", "S")
    rig.sim.board(0).faults.silent = True
    await rig.clock.advance(20)
    assert rig.unlocks_of("S1") == 1
    assert rig.state("S1") == "out_of_service"
    # Every other compartment is on the same board, now known to be silent:
    # none is offered, so the drop-off ends instead of pulsing into the dark.
    assert "board.offline" in rig.event_types()
    assert (flow.state, flow.error["code"]) == ("failed", "locker_full")
    assert rig.unlock_frames() == [cu16.unlock_request(0, 1)]


async def test_no_compartment_left_after_a_jam_fails_the_flow(rig) -> None:
    for comp in ("S1", "S2", "M1", "M2", "L1"):
        rig.door(comp).jammed = True
    token = await rig.courier()
    flow = await rig.api.dropoff_scan(token, "PCL1", "L")
    await rig.clock.advance(40)
    assert flow.state == "failed"
    assert flow.error["code"] == "locker_full"


async def test_doesnt_fit_releases_and_offers_the_next_size(rig) -> None:
    token = await rig.courier()
    flow = await rig.api.dropoff_scan(token, "PCL1", "S")
    await rig.person_opens("S1")
    await rig.api.dropoff_doesnt_fit(token, flow.id)
    assert (flow.state, flow.offered_size) == ("offer_size", "M")
    with pytest.raises(BadRequest, match="choose M or larger"):
        await rig.api.dropoff_size(token, flow.id, "S")
    await rig.api.dropoff_size(token, flow.id, "M")
    assert flow.compartment == "M1"
    await rig.person_closes("S1")
    assert rig.state("S1") == "free"
    await rig.person_opens("M1")
    await rig.person_closes("M1")
    assert flow.state == "stored"
    assert rig.store.parcels.get(flow.parcel).compartment_id == "M1"


async def test_doesnt_fit_in_the_largest_size(rig) -> None:
    token = await rig.courier()
    flow = await rig.api.dropoff_scan(token, "PCL1", "L")
    await rig.person_opens("L1")
    await rig.api.dropoff_doesnt_fit(token, flow.id)
    assert flow.state == "no_larger_size"


async def test_courier_reports_the_door_did_not_open(rig) -> None:
    token = await rig.courier()
    rig.door("S1").stuck = True
    flow = await rig.api.dropoff_scan(token, "PCL1", "S")
    await rig.api.dropoff_door_did_not_open(token, flow.id)
    assert (flow.attempt, rig.unlocks_of("S1")) == (2, 2)


async def test_cancel_before_the_door_opens_frees_the_compartment(rig) -> None:
    token = await rig.courier()
    flow = await rig.api.dropoff_scan(token, "PCL1", "S")
    await rig.api.dropoff_cancel(token, flow.id)
    assert (flow.state, rig.state("S1")) == ("cancelled", "free")


async def test_cancel_while_the_latch_is_out_frees_the_compartment_only_latched(rig) -> None:
    """Cancelled at once after the pulse, nobody at the door: the compartment is given
    back only once the pulse is over and a fresh read finds the latch caught again."""
    token = await rig.courier()
    flow = await rig.api.dropoff_scan(token, "PCL1", "S")
    assert not rig.door("S1").latched  # the pulse holds the latch out
    await rig.api.dropoff_cancel(token, flow.id)
    assert (flow.state, rig.state("S1")) == ("cancelled", "free")
    assert rig.door("S1").latched
    assert rig.event_types()[-2:] == ["dropoff.released", "door.closed"]


async def test_cancel_after_the_door_opened_waits_for_it_to_close(rig) -> None:
    token = await rig.courier()
    flow = await rig.api.dropoff_scan(token, "PCL1", "S")
    await rig.person_opens("S1")
    await rig.api.dropoff_cancel(token, flow.id)
    # The courier is asked to shut it; the compartment is not offered meanwhile.
    assert (flow.state, flow.compartment, rig.state("S1")) == ("closing", "S1", "open")
    assert await rig.stored("PCL2", "S") == "S2"
    with pytest.raises(FlowError) as info:
        await rig.api.dropoff_cancel(token, flow.id)
    assert info.value.code == "wrong_state"
    with pytest.raises(FlowError) as info:  # this courier's door is still open
        await rig.api.dropoff_scan(token, "PCL3", "S")
    assert info.value.code == "door_in_progress"
    await rig.person_closes("S1")
    assert (flow.state, rig.state("S1")) == ("cancelled", "free")
    assert rig.store.parcels.newest_id("PCL1") is None


async def test_cancel_while_the_door_is_being_pulled_open_waits_for_it(rig) -> None:
    """The door moved under a hand during the pulse, before the poller saw it: the fresh
    read finds it open, so the flow waits for the door cycle (no forced-door alarm)."""
    token = await rig.courier()
    flow = await rig.api.dropoff_scan(token, "PCL1", "S")
    assert rig.door("S1").open()
    await rig.api.dropoff_cancel(token, flow.id)
    assert flow.state == "closing"
    assert rig.state("S1") in ("reserved", "open")  # not free: the door is open
    await rig.seen("S1", Door.OPEN)
    assert (flow.state, rig.state("S1")) == ("closing", "open")
    await rig.person_closes("S1")
    assert (flow.state, rig.state("S1")) == ("cancelled", "free")
    assert "door.forced" not in rig.event_types()


async def test_a_cancelled_door_left_open_raises_the_alarm(rig) -> None:
    token = await rig.courier()
    flow = await rig.api.dropoff_scan(token, "PCL1", "S")
    await rig.person_opens("S1")
    await rig.api.dropoff_cancel(token, flow.id)
    await rig.clock.advance(rig.config.timing.door_left_open_s + 1)
    assert (flow.state, flow.alarm) == ("closing", "left_open")
    assert "door.left_open" in rig.event_types()
    await rig.person_closes("S1")
    assert (flow.state, rig.state("S1")) == ("cancelled", "needs_check")


async def test_a_cancelled_door_whose_latch_does_not_catch_needs_a_check(rig) -> None:
    """The latch stays out behind a door that reads shut (ajar, or a lock that did not
    catch): the courier is asked to shut it, then the compartment waits for a check."""
    token = await rig.courier()
    flow = await rig.api.dropoff_scan(token, "PCL1", "S")
    rig.door("S1").latch_broken = True
    await rig.api.dropoff_cancel(token, flow.id)
    assert (flow.state, rig.state("S1")) == ("closing", "reserved")
    await rig.clock.advance(rig.config.timing.door_open_timeout_s + 1)
    assert (flow.state, rig.state("S1")) == ("cancelled", "needs_check")
    assert rig.store.compartments.get("S1").reason == "not_latched"


async def test_scanning_a_parcel_already_stored_is_refused(rig) -> None:
    await rig.stored("PCL1", "S")
    token = await rig.courier()
    with pytest.raises(FlowError) as info:
        await rig.api.dropoff_scan(token, "PCL1", "S")
    assert info.value.code == "already_stored"


async def test_one_open_door_per_courier_at_a_time(rig) -> None:
    token = await rig.courier()
    await rig.api.dropoff_scan(token, "PCL1", "S")
    with pytest.raises(FlowError) as info:
        await rig.api.dropoff_scan(token, "PCL2", "S")
    assert info.value.code == "door_in_progress"


@pytest.mark.parametrize(
    ("barcode", "size", "code"),
    [
        ("", None, "invalid_barcode"),
        ("AB", None, "invalid_barcode"),
        ("HAS SPACE", None, "invalid_barcode"),
        ("X" * 65, None, "invalid_barcode"),
        (12345, None, "invalid_barcode"),
        ("P0001", "XL", "invalid_size"),
        ("P0001", 3, "invalid_size"),
    ],
)
async def test_bad_scans_are_refused_and_change_nothing(rig, barcode, size, code) -> None:
    token = await rig.courier()
    before = rig.store.journal.events()
    with pytest.raises(BadRequest) as info:
        await rig.api.dropoff_scan(token, barcode, size)
    assert info.value.code == code
    assert rig.store.journal.events() == before
    assert rig.unlock_frames() == []


async def test_session_rules(rig) -> None:
    with pytest.raises(Unauthorized):
        await rig.api.dropoff_scan("made-up", "PCL1", "S")
    collector = await rig.courier("5555")
    with pytest.raises(FlowError) as info:
        await rig.api.dropoff_scan(collector, "PCL1", "S")
    assert info.value.code == "not_allowed"
    token = await rig.courier()
    await rig.clock.advance(301)
    with pytest.raises(Unauthorized):
        await rig.api.dropoff_scan(token, "PCL1", "S")


async def test_wrong_courier_code_is_refused(rig) -> None:
    with pytest.raises(FlowError) as info:
        await rig.api.courier_login("0000")
    assert info.value.code == "wrong_code"
    assert "courier.denied" in rig.event_types()


async def test_same_barcode_cannot_open_two_doors(rig) -> None:
    first = await rig.courier()
    await rig.api.dropoff_scan(first, "PCL1", "S")
    second = await rig.courier("7777")
    with pytest.raises(FlowError) as info:
        await rig.api.dropoff_scan(second, "PCL1", "S")
    assert info.value.code == "already_in_progress"
    assert rig.unlock_frames() == [cu16.unlock_request(0, 1)]


async def test_every_published_change_has_a_newer_revision(rig) -> None:
    token = await rig.courier()
    flow = await rig.api.dropoff_scan(token, "PCL1", "S")
    await rig.person_opens("S1", put_in=True)
    await rig.person_closes("S1")
    views = [m["flow"] for m in rig.messages if m.get("type") == "flow.updated"]
    states = [v["state"] for v in views if v["id"] == flow.id]
    revisions = [v["revision"] for v in views if v["id"] == flow.id]
    assert states == ["opening", "open", "stored"]
    assert revisions == sorted(set(revisions)) and flow.view()["revision"] == revisions[-1]


async def test_a_door_that_will_not_shut_is_left_for_a_check(rig) -> None:
    """Cancelled at an open door that will not shut: the courier leaves it; the
    compartment needs a check, and the courier may go on."""
    token = await rig.courier()
    flow = await rig.api.dropoff_scan(token, "PCL1", "S")
    await rig.person_opens("S1")
    await rig.api.dropoff_cancel(token, flow.id)
    assert flow.state == "closing"
    await rig.api.dropoff_leave_unshut(token, flow.id)
    assert (flow.state, flow.error["code"], flow.error["compartment"]) == (
        "failed",
        "door_not_shut",
        "S1",
    )
    assert (rig.state("S1"), rig.store.intents.live("S1")) == ("needs_check", None)
    [check] = [
        e["data"] for e in rig.store.journal.events() if e["type"] == "compartment.needs_check"
    ]
    assert check == {"compartment": "S1", "reason": "not_shut"}
    again = await rig.api.dropoff_scan(token, "PCL2", "S")  # no door of this courier's open
    assert again.compartment == "S2"
    await rig.person_closes("S1")  # shut later: still for a technician to check
    assert rig.state("S1") == "needs_check"
    with pytest.raises(FlowError) as info:
        await rig.api.dropoff_leave_unshut(token, flow.id)
    assert info.value.code == "wrong_state"


async def test_only_a_door_being_shut_after_a_cancel_can_be_left(rig) -> None:
    token = await rig.courier()
    flow = await rig.api.dropoff_scan(token, "PCL1", "S")
    before = rig.store.journal.events()
    with pytest.raises(FlowError) as info:
        await rig.api.dropoff_leave_unshut(token, flow.id)
    assert (info.value.code, flow.state) == ("wrong_state", "opening")
    assert rig.store.journal.events() == before
