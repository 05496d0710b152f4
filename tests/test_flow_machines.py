"""The flows' state machines, without a loop, a store or a bank: events in, decisions out."""

import pytest

from lockerd.errors import BadRequest, FlowError
from lockerd.flows import Flow, Kind, State
from lockerd.flows import machine as m

SIZES = ("S", "M", "L")


def dropoff(state: State = State.NEED_SIZE, **fields: object) -> Flow:
    return Flow(Kind.DROPOFF, state, courier="c1", barcode="PARCEL1", **fields)  # type: ignore[arg-type]


def opening(kind: Kind = Kind.DROPOFF, attempt: int = 1, size: str = "M") -> Flow:
    """A flow whose door ``M1`` (intent 7) has been pulsed ``attempt`` times."""
    flow = dropoff() if kind == Kind.DROPOFF else Flow(kind, State.OPENING)
    step(flow, m.Reserved("M1", 7, size))
    flow.attempt = attempt
    return flow


def step(flow: Flow, event: m.FlowEvent) -> list[m.Decision]:
    return m.machine(flow.kind, SIZES).step(flow, event)


def test_states_are_the_kiosk_api_strings() -> None:
    assert [str(s) for s in State] == [
        "need_size",
        "offer_size",
        "no_larger_size",
        "did_not_open",
        "no_low",
        "closing",
        "opening",
        "open",
        "stored",
        "collected",
        "closed",
        "failed",
        "cancelled",
    ]
    assert dropoff(State.OFFER_SIZE).view()["state"] == "offer_size"


# -- drop-off: choosing a size -------------------------------------------------------


def test_a_scan_without_a_size_waits_for_one() -> None:
    flow = dropoff()
    assert step(flow, m.Scanned(None)) == []
    assert flow.state == State.NEED_SIZE


def test_a_scan_with_a_size_reserves() -> None:
    flow = dropoff()
    assert step(flow, m.Scanned("M")) == [m.Reserve("M")]


@pytest.mark.parametrize("state", [State.NEED_SIZE, State.OFFER_SIZE, State.DID_NOT_OPEN])
def test_a_size_is_taken_while_waiting_for_one(state: State) -> None:
    assert step(dropoff(state), m.SizeChosen("L")) == [m.Reserve("L")]


@pytest.mark.parametrize("state", [State.OPENING, State.OPEN, State.STORED, State.CANCELLED])
def test_a_size_is_refused_when_not_waiting_for_one(state: State) -> None:
    with pytest.raises(FlowError) as info:
        step(dropoff(state), m.SizeChosen("L"))
    assert info.value.code == "wrong_state"


def test_a_size_smaller_than_offered_or_unknown_is_refused() -> None:
    with pytest.raises(BadRequest) as info:
        step(dropoff(State.OFFER_SIZE, offered_size="M"), m.SizeChosen("S"))
    assert info.value.code == "size_too_small"
    with pytest.raises(BadRequest) as info:
        step(dropoff(), m.SizeChosen("XXL"))
    assert info.value.code == "invalid_size"


def test_a_reservation_pulses_and_arms_the_timer() -> None:
    flow = dropoff(State.DID_NOT_OPEN, offered_size="M", error={"code": "x", "message": "y"})
    assert step(flow, m.Reserved("M2", 9, "M")) == [m.Watch("M2"), m.Pulse(1), m.ArmTimer()]
    assert (flow.state, flow.compartment, flow.intent, flow.attempt) == (
        State.OPENING,
        "M2",
        9,
        1,
    )
    assert (flow.size, flow.offered_size, flow.error) == ("M", None, None)


def test_a_refused_reservation_fails_the_flow() -> None:
    flow = dropoff()
    assert step(flow, m.ReserveFailed("no_free_compartment", "none free")) == []
    assert flow.state == State.FAILED
    assert flow.error == {"code": "no_free_compartment", "message": "none free"}


# -- the door ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(Kind))
def test_the_door_seen_open(kind: Kind) -> None:
    flow = opening(kind)
    assert step(flow, m.DoorOpened()) == [m.CancelTimer(), m.Publish()]
    assert flow.state == State.OPEN


@pytest.mark.parametrize(
    ("kind", "completed", "state"),
    [
        (Kind.DROPOFF, "stored", State.STORED),
        (Kind.PICKUP, "collected", State.COLLECTED),
        (Kind.COLLECT, "collected", State.COLLECTED),
        (Kind.REMOTE, "remote", State.CLOSED),
        (Kind.SERVICE, "service", State.CLOSED),
    ],
)
def test_the_door_closed_finishes_the_flow(kind: Kind, completed: str, state: State) -> None:
    flow = opening(kind)
    step(flow, m.DoorOpened())
    assert step(flow, m.DoorClosed(completed, 3)) == [m.Forget("M1"), m.Publish()]
    assert (flow.state, flow.parcel, flow.error) == (state, 3, None)


@pytest.mark.parametrize("completed", ["parcel_not_seen", "parcel_still_inside"])
def test_an_item_sensor_that_disagrees_fails_the_flow(completed: str) -> None:
    flow = opening()
    assert step(flow, m.DoorClosed(completed)) == [m.Forget("M1"), m.Publish()]
    assert flow.state == State.FAILED
    assert flow.error is not None and flow.error["code"] == completed
    assert "M1" in flow.error["message"]


def test_a_door_left_open_raises_the_alarm() -> None:
    flow = opening()
    assert step(flow, m.LeftOpen()) == [m.Publish()]
    assert flow.alarm == "left_open"


# -- a door that does not open ---------------------------------------------------------


def test_the_first_timeout_asks_for_a_status_checked_retry() -> None:
    assert step(opening(), m.DoorTimeout()) == [m.RetryPulse(False)]


@pytest.mark.parametrize("state", [State.OPEN, State.STORED, State.CANCELLED])
def test_a_timeout_after_the_flow_moved_on_does_nothing(state: State) -> None:
    flow = opening()
    flow.state = state
    assert step(flow, m.DoorTimeout()) == []
    assert flow.state == state


@pytest.mark.parametrize(
    ("outcome", "decisions"),
    [
        ("pulsed", [m.RecordPulse(2), m.ArmTimer(), m.Publish()]),
        ("released", [m.ArmTimer(), m.Publish()]),
        ("open", [m.ArmTimer(), m.Publish()]),
    ],
)
def test_a_retry_gives_the_door_a_second_window(outcome: str, decisions: list[object]) -> None:
    flow = opening()
    assert step(flow, m.RetryOutcome(outcome)) == decisions
    assert (flow.state, flow.attempt) == (State.OPENING, 2)


@pytest.mark.parametrize("kind", [Kind.PICKUP, Kind.COLLECT, Kind.REMOTE, Kind.SERVICE])
def test_a_door_that_never_opens_fails_a_pickup(kind: Kind) -> None:
    flow = opening(kind, attempt=2)
    assert step(flow, m.DoorTimeout()) == [m.UnlockFailed(7), m.Forget("M1"), m.Publish()]
    assert (flow.state, flow.compartment, flow.intent) == (State.FAILED, None, None)
    assert flow.error == {"code": "compartment_out_of_order", "message": "M1 would not open"}


@pytest.mark.parametrize("kind", [Kind.DROPOFF, Kind.SEND, Kind.PICKUP])
@pytest.mark.parametrize("outcome", ["pulsed", "released", "open", "unreadable"])
@pytest.mark.parametrize("closed", [False, True])
def test_a_repulse_answer_after_the_door_was_seen_open_does_nothing(
    kind: Kind, outcome: str, closed: bool
) -> None:
    """The door opened (and maybe closed again) while the re-pulse was in flight: its
    answer is late, and neither a second window nor giving the door up follows."""
    flow = Flow(kind, State.OPENING, size="M")
    step(flow, m.Reserved("M1", 7, "M"))
    assert step(flow, m.CourierSaysNotOpen(False)) == [m.CancelTimer(), m.RetryPulse(True)]
    step(flow, m.DoorOpened())
    done = "collected" if kind == Kind.PICKUP else "stored"
    if closed:
        step(flow, m.DoorClosed(done))
    assert step(flow, m.RetryOutcome(outcome, courier_here=True)) == []
    assert (flow.state, flow.compartment, flow.intent) == (done if closed else "open", "M1", 7)
    assert (flow.attempt, flow.retrying, flow.error) == (1, False, None)


def test_a_repulse_answer_for_the_door_before_is_not_the_new_doors() -> None:
    """M1 (intent 7) did not fit while its re-pulse was in flight; M2 (intent 8) is
    reserved with no re-pulse of its own under way, and M1's answer changes nothing."""
    flow = opening(Kind.SEND)
    step(flow, m.CourierSaysNotOpen(False))
    step(flow, m.DoorOpened())
    step(flow, m.DoesntFit("M"))
    assert step(flow, m.Reserved("L1", 8, "L")) == [m.Watch("L1"), m.Pulse(1), m.ArmTimer()]
    assert flow.retrying is False
    assert step(flow, m.DoorTimeout()) == [m.RetryPulse(False)]
    assert step(flow, m.RetryOutcome("unreadable", intent=7)) == []
    assert (flow.state, flow.compartment, flow.attempt, flow.retrying) == (
        State.OPENING,
        "L1",
        1,
        True,
    )
    assert step(flow, m.RetryOutcome("pulsed", intent=8)) == [
        m.RecordPulse(2),
        m.ArmTimer(),
        m.Publish(),
    ]


def test_an_unreadable_status_gives_up_at_once() -> None:
    flow = opening(Kind.PICKUP)
    assert step(flow, m.RetryOutcome("unreadable"))[:2] == [m.UnlockFailed(7), m.Forget("M1")]
    assert flow.state == State.FAILED


def test_a_courier_who_walked_away_is_not_given_another_door() -> None:
    """The walk-away rule: a drop-off's door times out with nobody at the kiosk; the
    flow waits in did_not_open when another compartment fits, and reserves nothing."""
    flow = opening(attempt=2)
    assert step(flow, m.DoorTimeout()) == [
        m.UnlockFailed(7),
        m.Forget("M1"),
        m.CheckRoom("M", "M1"),
    ]
    assert step(flow, m.RoomChecked(True, "M1")) == [m.Publish()]
    assert (flow.state, flow.compartment, flow.offered_size) == (State.DID_NOT_OPEN, None, "M")
    assert flow.error == {
        "code": "door_did_not_open",
        "message": "M1 did not open",
        "compartment": "M1",
    }


def test_a_cancel_while_the_store_is_asked_is_not_undone() -> None:
    """The courier cancels while the room check (or a reservation) is under way: the
    answer changes nothing, and a compartment reserved meanwhile is given back."""
    flow = opening(attempt=2)
    step(flow, m.DoorTimeout())
    step(flow, m.Cancel())
    assert step(flow, m.RoomChecked(True, "M1")) == []
    assert step(flow, m.Reserved("M2", 8, "M")) == [m.Release(8, "cancelled")]
    assert step(flow, m.ReserveFailed("locker_full", "full")) == []
    assert (flow.state, flow.compartment, flow.error) == (State.CANCELLED, None, None)


def test_a_walked_away_courier_with_no_room_left_fails_on_reserving() -> None:
    flow = opening(attempt=2)
    step(flow, m.DoorTimeout())
    assert step(flow, m.RoomChecked(False, "M1")) == [m.Reserve("M", or_fail=True), m.Publish()]


def test_the_courier_saying_the_door_did_not_open_retries_at_once() -> None:
    flow = opening()
    assert step(flow, m.CourierSaysNotOpen(False)) == [m.CancelTimer(), m.RetryPulse(True)]
    assert step(flow, m.RetryOutcome("pulsed", courier_here=True))[0] == m.RecordPulse(2)


def test_the_courier_saying_so_twice_moves_on_to_another_compartment() -> None:
    flow = opening(attempt=2)
    assert step(flow, m.CourierSaysNotOpen(False)) == [
        m.CancelTimer(),
        m.UnlockFailed(7),
        m.Forget("M1"),
        m.Reserve("M", or_fail=True),
        m.Publish(),
    ]
    assert (flow.compartment, flow.intent) == (None, None)


def test_an_unreadable_status_with_the_courier_here_moves_on() -> None:
    flow = opening()
    decisions = step(flow, m.RetryOutcome("unreadable", courier_here=True))
    assert decisions[-2:] == [m.Reserve("M", or_fail=True), m.Publish()]


def test_a_jammed_door_read_only_by_the_lock_switch_moves_on() -> None:
    flow = opening()
    step(flow, m.DoorOpened())
    assert step(flow, m.CourierSaysNotOpen(lock_switch_only=True)) == [
        m.UnlockFailed(7),
        m.Forget("M1"),
        m.Reserve("M", or_fail=True),
        m.Publish(),
    ]


def test_a_reopened_pickup_door_closing_ends_it_closed() -> None:
    flow = opening(Kind.PICKUP)
    step(flow, m.DoorOpened())
    assert step(flow, m.DoorClosed("reopened", 3)) == [m.Forget("M1"), m.Publish()]
    assert (flow.state, flow.error) == (State.CLOSED, None)


def test_a_resident_saying_the_door_did_not_open_retries_at_once() -> None:
    flow = opening(Kind.PICKUP)
    assert step(flow, m.CourierSaysNotOpen(False)) == [m.CancelTimer(), m.RetryPulse(True)]
    assert step(flow, m.RetryOutcome("pulsed", courier_here=True)) == [
        m.RecordPulse(2),
        m.ArmTimer(),
        m.Publish(),
    ]


def test_saying_it_again_while_the_retry_is_under_way_changes_nothing() -> None:
    flow = opening(Kind.PICKUP)
    assert step(flow, m.CourierSaysNotOpen(False)) == [m.CancelTimer(), m.RetryPulse(True)]
    assert step(flow, m.CourierSaysNotOpen(False)) == [m.CancelTimer()]
    assert (flow.state, flow.attempt, flow.compartment) == (State.OPENING, 1, "M1")
    assert step(flow, m.RetryOutcome("pulsed", courier_here=True))[0] == m.RecordPulse(2)
    assert step(flow, m.CourierSaysNotOpen(False))[1] == m.UnlockFailed(7)


def test_a_resident_saying_so_twice_fails_the_pickup_and_takes_no_other_door() -> None:
    flow = opening(Kind.PICKUP, attempt=2)
    assert step(flow, m.CourierSaysNotOpen(False)) == [
        m.CancelTimer(),
        m.UnlockFailed(7),
        m.Forget("M1"),
        m.Publish(),
    ]
    assert (flow.state, flow.error) == (
        State.FAILED,
        {"code": "compartment_out_of_order", "message": "M1 would not open"},
    )


@pytest.mark.parametrize("kind", [Kind.COLLECT, Kind.REMOTE, Kind.SERVICE])
def test_only_a_person_at_the_kiosk_says_a_door_did_not_open(kind: Kind) -> None:
    flow = opening(kind)
    with pytest.raises(FlowError) as info:
        step(flow, m.CourierSaysNotOpen(False))
    assert (info.value.code, flow.state, flow.attempt) == ("wrong_state", State.OPENING, 1)


@pytest.mark.parametrize("state", [State.OPEN, State.NEED_SIZE, State.STORED])
def test_the_door_did_not_open_is_refused_unless_opening(state: State) -> None:
    flow = opening()
    flow.state = state
    with pytest.raises(FlowError) as info:
        step(flow, m.CourierSaysNotOpen(False))
    assert info.value.code == "wrong_state"


def test_no_low_compartment_free_waits_for_the_courier() -> None:
    flow = dropoff(prefer_low=True)
    assert step(flow, m.NoLowFree("M", "C1")) == []
    assert (flow.state, flow.offered_size, flow.compartment) == (State.NO_LOW, "M", None)
    assert flow.error == {
        "code": "no_low_compartment",
        "message": "no low compartment is free for M",
        "compartment": "C1",
    }
    assert step(flow, m.AnyHeight()) == [m.Reserve("M", compartment="C1")]
    assert flow.prefer_low is False
    # C1 was taken meanwhile: asked again, naming the one any height gets now.
    assert step(flow, m.NoLowFree("M", "C2")) == []
    assert (flow.state, flow.error["compartment"]) == (State.NO_LOW, "C2")
    assert step(flow, m.AnyHeight()) == [m.Reserve("M", compartment="C2")]
    step(flow, m.Reserved("C2", 9, "M"))
    assert (flow.state, flow.error, flow.offered_size) == (State.OPENING, None, None)


@pytest.mark.parametrize("state", [State.NEED_SIZE, State.OPENING, State.DID_NOT_OPEN])
def test_any_height_is_refused_unless_asked(state: State) -> None:
    flow = dropoff(state, prefer_low=True, offered_size="M")
    with pytest.raises(FlowError) as info:
        step(flow, m.AnyHeight())
    assert (info.value.code, flow.prefer_low) == ("wrong_state", True)


def test_a_cancel_while_no_low_one_is_asked_for_is_not_undone() -> None:
    flow = dropoff(prefer_low=True)
    step(flow, m.Cancel())
    assert step(flow, m.NoLowFree("M", "C1")) == []
    assert (flow.state, flow.error) == (State.CANCELLED, None)


# -- does not fit, cancel ----------------------------------------------------------------


def test_a_parcel_that_does_not_fit_is_offered_the_next_size() -> None:
    flow = opening()
    step(flow, m.DoorOpened())
    assert step(flow, m.DoesntFit("M")) == [m.Release(7, "doesnt_fit"), m.Forget("M1"), m.Publish()]
    assert (flow.state, flow.offered_size, flow.compartment) == (State.OFFER_SIZE, "L", None)


def test_nothing_larger_than_the_largest() -> None:
    flow = opening(size="L")
    step(flow, m.DoorOpened())
    step(flow, m.DoesntFit("L"))
    assert (flow.state, flow.offered_size) == (State.NO_LARGER_SIZE, None)


def test_a_send_goes_as_a_drop_off_from_its_reserved_door() -> None:
    flow = Flow(Kind.SEND, State.OPENING, barcode="SHIP0001")
    assert step(flow, m.Reserved("M1", 7, "M")) == [m.Watch("M1"), m.Pulse(1), m.ArmTimer()]
    step(flow, m.DoorOpened())
    step(flow, m.DoesntFit("M"))
    assert (flow.state, flow.offered_size) == (State.OFFER_SIZE, "L")
    assert step(flow, m.SizeChosen("L")) == [m.Reserve("L")]
    step(flow, m.Reserved("L1", 8, "L"))
    step(flow, m.DoorOpened())
    assert step(flow, m.DoorClosed("stored")) == [m.Forget("L1"), m.Publish()]
    assert flow.state == State.STORED
    assert flow.view()["barcode"] == "SHIP0001"


@pytest.mark.parametrize("state", [State.OPENING, State.NEED_SIZE, State.STORED])
def test_does_not_fit_needs_an_open_door(state: State) -> None:
    flow = opening()
    flow.state = state
    with pytest.raises(FlowError) as info:
        step(flow, m.DoesntFit("M"))
    assert info.value.code == "door_not_open"


def test_cancelling_an_open_door_waits_for_it_to_close() -> None:
    """Issue 14: cancelled after the latch released, the compartment is given back only
    when its door is seen shut (it was released, and free, at once)."""
    flow = opening()
    step(flow, m.DoorOpened())
    assert step(flow, m.Cancel()) == [
        m.CancelTimer(),
        m.Release(7, "cancelled", shut_first=True),
        m.Publish(),
    ]
    assert (flow.state, flow.compartment) == (State.CLOSING, "M1")
    assert step(flow, m.LeftOpen()) == [m.Publish()]
    assert flow.alarm == "left_open"
    assert step(flow, m.DoorClosed("released")) == [m.CancelTimer(), m.Forget("M1"), m.Publish()]
    assert flow.state == State.CANCELLED


def test_cancelling_while_opening_reads_the_door_once_the_pulse_is_over() -> None:
    flow = opening()
    assert step(flow, m.Cancel()) == [
        m.CancelTimer(),
        m.Release(7, "cancelled", shut_first=True),
        m.CheckShut(),
    ]
    assert step(flow, m.ShutChecked(shut=True, open=False)) == [
        m.SettleCancelled(7, latched=True),
        m.Forget("M1"),
        m.Publish(),
    ]
    assert flow.state == State.CANCELLED


def test_a_cancelled_door_not_shut_is_waited_for_then_checked() -> None:
    flow = opening()
    step(flow, m.Cancel())
    assert step(flow, m.ShutChecked(shut=False, open=False)) == [m.ArmTimer(), m.Publish()]
    assert flow.state == State.CLOSING
    assert step(flow, m.DoorTimeout()) == [m.CheckShut(again=True)]
    assert step(flow, m.ShutChecked(shut=False, open=True, again=True)) == [m.ArmTimer()]
    assert step(flow, m.ShutChecked(shut=False, open=False, again=True)) == [
        m.SettleCancelled(7, latched=False),
        m.Forget("M1"),
        m.Publish(),
    ]
    assert flow.state == State.CANCELLED


def test_a_cancelled_door_seen_open_is_settled_by_its_closing() -> None:
    flow = opening()
    step(flow, m.Cancel())
    assert step(flow, m.DoorOpened()) == [m.CancelTimer(), m.Publish()]
    assert flow.state == State.CLOSING
    assert step(flow, m.DoorClosed("item_left_inside"))[-1] == m.Publish()
    assert flow.state == State.FAILED
    assert flow.error is not None and flow.error["code"] == "item_left_inside"


@pytest.mark.parametrize(
    "event", [m.Cancel(), m.SizeChosen("M"), m.DoesntFit("M"), m.CourierSaysNotOpen(False)]
)
def test_a_closing_drop_off_takes_no_requests(event: m.FlowEvent) -> None:
    flow = opening()
    step(flow, m.Cancel())
    with pytest.raises(FlowError) as info:
        step(flow, event)
    assert (info.value.code, flow.state) == ("wrong_state", State.CLOSING)


@pytest.mark.parametrize(
    "state", [State.NEED_SIZE, State.OFFER_SIZE, State.DID_NOT_OPEN, State.NO_LOW]
)
def test_cancelling_while_choosing_a_size(state: State) -> None:
    flow = dropoff(state)
    assert step(flow, m.Cancel()) == [m.Publish()]
    assert flow.state == State.CANCELLED


@pytest.mark.parametrize("state", [State.STORED, State.CANCELLED, State.FAILED])
def test_an_ended_drop_off_cannot_be_cancelled(state: State) -> None:
    with pytest.raises(FlowError) as info:
        step(dropoff(state), m.Cancel())
    assert info.value.code == "wrong_state"


@pytest.mark.parametrize("event", [m.Scanned("M"), m.SizeChosen("M"), m.DoesntFit("M"), m.Cancel()])
def test_a_pickup_takes_no_drop_off_events(event: m.FlowEvent) -> None:
    with pytest.raises(FlowError) as info:
        step(opening(Kind.PICKUP), event)
    assert info.value.code == "wrong_state"


@pytest.mark.parametrize("kind", [Kind.PICKUP, Kind.COLLECT])
def test_a_door_nobody_opened_in_time_ends_without_blame(kind) -> None:
    flow = opening(kind)
    assert step(flow, m.DoorTimeout()) == [m.NotOpened(7), m.Forget("M1"), m.Publish()]
    assert (flow.state, flow.error["code"]) == (State.FAILED, "not_opened_in_time")
    assert (flow.compartment, flow.intent, flow.stuck) == (None, None, [])


def test_a_pickup_said_not_open_gets_the_repulse_then_goes_out_of_service() -> None:
    flow = opening(Kind.PICKUP)
    assert step(flow, m.CourierSaysNotOpen(lock_switch_only=False)) == [
        m.CancelTimer(),
        m.RetryPulse(courier_here=True),
    ]
    step(flow, m.RetryOutcome("pulsed", courier_here=True))
    assert step(flow, m.DoorTimeout()) == [m.UnlockFailed(7), m.Forget("M1"), m.Publish()]
    assert (flow.error["code"], flow.stuck) == ("compartment_out_of_order", ["M1"])


def test_a_pickup_said_not_open_while_its_lock_switch_reads_open_is_disputed() -> None:
    flow = opening(Kind.PICKUP)
    step(flow, m.DoorOpened())
    assert step(flow, m.CourierSaysNotOpen(lock_switch_only=True)) == [
        m.Disputed(7),
        m.Forget("M1"),
        m.Publish(),
    ]
    assert (flow.state, flow.error["code"], flow.stuck) == (State.FAILED, "disputed_pickup", [])


def test_a_cancelled_dropoff_ignores_a_late_repulse_answer() -> None:
    flow = opening()
    flow.state = State.CANCELLED
    assert step(flow, m.RetryOutcome("unreadable", courier_here=True)) == []
    assert step(flow, m.DoorTimeout()) == []
    assert flow.state == State.CANCELLED


def test_a_closing_door_left_unshut_needs_a_check() -> None:
    flow = opening()
    step(flow, m.DoorOpened())
    step(flow, m.Cancel())
    assert step(flow, m.LeaveUnshut()) == [
        m.CancelTimer(),
        m.LeaveForCheck(7, "M1"),
        m.Forget("M1"),
        m.Publish(),
    ]
    assert (flow.state, flow.error["code"]) == (State.FAILED, "door_not_shut")


@pytest.mark.parametrize("state", [State.NEED_SIZE, State.OPEN, State.STORED, State.CANCELLED])
def test_only_a_closing_door_can_be_left_unshut(state: State) -> None:
    flow = opening() if state == State.OPEN else dropoff(state)
    if state == State.OPEN:
        step(flow, m.DoorOpened())
    with pytest.raises(FlowError) as info:
        step(flow, m.LeaveUnshut())
    assert info.value.code == "wrong_state"
