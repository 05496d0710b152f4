"""The flows as state machines: an event and the flow in, the flow's new state and the
decisions the locker must carry out (store calls, pulses, timers, publishing) out.

Pure: no I/O, no event loop, no clock. A transition updates the flow record's own
fields (state, compartment, attempt, error...) and returns its decisions in the order
they must run; a decision whose outcome matters (a reservation, the status-checked
re-pulse, whether another compartment has room) is answered by the locker with the
next event. An event the flow's state does not accept raises the kiosk's FlowError.

Every flow opens a door the same way (``Opening``): a committed intent is pulsed, the
door must be seen open within the timeout, else one status-checked re-pulse and a
second window, else the compartment goes out of service; at a pickup the resident
may say the door did not open, which runs the re-pulse at once. A pickup's or a
collection's door not seen open in time while nobody said so ends without blame
(``NO_BLAME``): the latch caught again, the parcel stays, its code opens it again. A drop-off
(``DropOff``) adds choosing a size, asking when no low compartment is free, "does not
fit", "the door did not open", cancelling (after the pulse: the door seen shut first),
and what happens after a door that would not open. The events and decisions
themselves are ``lockerd.flows.steps``'s, re-exported here.
"""

from __future__ import annotations

from lockerd.errors import FlowError
from lockerd.flows.record import Flow, Kind, State, check_size, next_size
from lockerd.flows.steps import (
    AnyHeight,
    ArmTimer,
    Cancel,
    CancelTimer,
    CheckRoom,
    CheckShut,
    CourierSaysNotOpen,
    Decision,
    Disputed,
    DoesntFit,
    DoorClosed,
    DoorOpened,
    DoorTimeout,
    FlowEvent,
    Forget,
    LeaveForCheck,
    LeaveUnshut,
    LeftOpen,
    NoLowFree,
    NotOpened,
    Publish,
    Pulse,
    RecordPulse,
    Release,
    Reserve,
    Reserved,
    ReserveFailed,
    RetryOutcome,
    RetryPulse,
    RoomChecked,
    Scanned,
    SettleCancelled,
    ShutChecked,
    SizeChosen,
    UnlockFailed,
    Watch,
)

__all__ = [
    "FINISHED",
    "MISMATCH",
    "AnyHeight",
    "ArmTimer",
    "Cancel",
    "CancelTimer",
    "CheckRoom",
    "CheckShut",
    "CourierSaysNotOpen",
    "Decision",
    "Disputed",
    "DoesntFit",
    "DoorClosed",
    "DoorOpened",
    "DoorTimeout",
    "DropOff",
    "FlowEvent",
    "Forget",
    "LeaveForCheck",
    "LeaveUnshut",
    "LeftOpen",
    "NoLowFree",
    "NotOpened",
    "Opening",
    "Publish",
    "Pulse",
    "RecordPulse",
    "Release",
    "Reserve",
    "ReserveFailed",
    "Reserved",
    "RetryOutcome",
    "RetryPulse",
    "RoomChecked",
    "Scanned",
    "SettleCancelled",
    "ShutChecked",
    "SizeChosen",
    "UnlockFailed",
    "Watch",
    "abandon",
    "machine",
]


#: What a flow became when its door closed, by what the door cycle completed.
FINISHED = {
    "stored": State.STORED,
    "remote": State.CLOSED,
    "service": State.CLOSED,
    "reopened": State.CLOSED,
}
#: Door cycles whose item sensor disagreed: the flow fails with this error.
MISMATCH = {
    "parcel_not_seen": (
        "parcel_not_seen",
        "no parcel was seen in {} after its door closed; it will be checked",
    ),
    "parcel_still_inside": (
        "parcel_still_inside",
        "the parcel still seems to be in {}; it will be checked",
    ),
}


#: Flows whose door, not seen open in time while nobody said it did not open, ends
#: without blame: a person slow to reach it, not a broken lock.
NO_BLAME = (Kind.PICKUP, Kind.COLLECT)


class Opening:
    """Opening a door under a committed intent and following it until it closes: the
    whole of a pickup, a collection, a service or a remote opening."""

    def step(self, flow: Flow, event: FlowEvent) -> list[Decision]:
        """The decisions for ``event``; raises FlowError if the flow's state refuses it."""
        match event:
            case Reserved():
                return self._reserved(flow, event)
            case DoorOpened():
                flow.state = State.OPEN
                return [CancelTimer(), Publish()]
            case DoorClosed():
                return self._closed(flow, event)
            case LeftOpen():
                flow.alarm = "left_open"
                return [Publish()]
            case DoorTimeout():
                return self._timeout(flow, event.courier_here)
            case RetryOutcome():
                return self._retried(flow, event)
            case CourierSaysNotOpen() if flow.kind in (Kind.DROPOFF, Kind.PICKUP):
                return self._not_open(flow, event.lock_switch_only)
        raise FlowError("wrong_state", f"this {flow.kind} is {flow.state}")

    def _reserved(self, flow: Flow, event: Reserved) -> list[Decision]:
        flow.compartment, flow.intent = event.compartment, event.intent
        flow.state, flow.attempt, flow.alarm = State.OPENING, 1, None
        flow.retrying = False  # a re-pulse still in flight was for the door before
        return [Watch(event.compartment), Pulse(1), ArmTimer()]

    def _closed(self, flow: Flow, event: DoorClosed) -> list[Decision]:
        assert flow.compartment is not None
        mismatch = MISMATCH.get(event.completed)
        if mismatch is not None:
            code, message = mismatch
            flow.state = State.FAILED
            flow.error = {"code": code, "message": message.format(flow.compartment)}
        else:
            flow.state = FINISHED.get(event.completed, State.COLLECTED)
        flow.parcel = event.parcel
        return [Forget(flow.compartment), Publish()]

    def _timeout(self, flow: Flow, courier_here: bool) -> list[Decision]:
        if flow.state != State.OPENING or flow.compartment is None or flow.intent is None:
            return []  # the door opened (or the flow moved on) as the timer fired
        if flow.retrying:
            return []  # said again while the status read and re-pulse are under way
        if flow.attempt == 1 and flow.kind in NO_BLAME and not courier_here:
            return self._not_opened(flow)
        if flow.attempt == 1:
            flow.retrying = True
            return [RetryPulse(courier_here)]
        return self._give_up(flow, courier_here)

    def _not_opened(self, flow: Flow) -> list[Decision]:
        """Nobody opened the door in time (nor said it would not open): the flow ends,
        the compartment and its parcel stay as they were, a pickup group ends here."""
        assert flow.compartment is not None and flow.intent is not None
        comp, intent = flow.compartment, flow.intent
        flow.compartment = flow.intent = None
        flow.state, flow.group = State.FAILED, None
        flow.error = {"code": "not_opened_in_time", "message": f"{comp} was not opened in time"}
        return [NotOpened(intent), Forget(comp), Publish()]

    def _retried(self, flow: Flow, event: RetryOutcome) -> list[Decision]:
        if event.intent not in (None, flow.intent):
            return []  # an earlier door's, given back while its re-pulse was in flight
        flow.retrying = False
        if flow.state != State.OPENING or flow.compartment is None or flow.intent is None:
            # The door was seen open (or the flow moved on) while the re-pulse was in
            # flight: its answer is late, and the door's own changes decide.
            return []
        if event.outcome == "unreadable":
            return self._give_up(flow, event.courier_here)
        flow.attempt = 2
        pulsed: list[Decision] = [RecordPulse(2)] if event.outcome == "pulsed" else []
        return [*pulsed, ArmTimer(), Publish()]

    def _not_open(self, flow: Flow, lock_switch_only: bool) -> list[Decision]:
        """The person at the kiosk says the door did not open: the status-checked
        re-pulse now rather than at the timeout, or, on the second try, give up."""
        if flow.state == State.OPEN and flow.compartment and lock_switch_only:
            # Only the lock's switch is read here: it says released, the person
            # says the door did not move. A jammed door; at a pickup the parcel may
            # have been taken all the same: the compartment needs a check.
            if flow.kind == Kind.PICKUP:
                return self._disputed(flow)
            return self._give_up(flow, courier_here=True)
        if flow.state != State.OPENING:
            raise FlowError("wrong_state", f"this {flow.kind} is {flow.state}, not opening")
        return [CancelTimer(), *self._timeout(flow, courier_here=True)]

    def _disputed(self, flow: Flow) -> list[Decision]:
        """A pickup whose door only the lock's switch read open: nobody knows whether the
        parcel is still inside, so its compartment needs a check (``disputed_pickup``)."""
        assert flow.compartment is not None and flow.intent is not None
        comp, intent = flow.compartment, flow.intent
        flow.compartment = flow.intent = None
        flow.state = State.FAILED
        flow.error = {"code": "disputed_pickup", "message": f"{comp} will be checked"}
        return [Disputed(intent), Forget(comp), Publish()]

    def _give_up(self, flow: Flow, courier_here: bool) -> list[Decision]:
        """The door would not open: its compartment goes out of service, and the flow
        fails (the parcel is behind that door and nowhere else)."""
        failed, decisions = abandon(flow)
        flow.state = State.FAILED
        flow.error = {"code": "compartment_out_of_order", "message": f"{failed} would not open"}
        if flow.kind == Kind.PICKUP:
            flow.stuck.append(failed)
        return [*decisions, Publish()]


def abandon(flow: Flow) -> tuple[str, list[Decision]]:
    """Drop the flow's compartment, whose door would not open; the compartment's id and
    the decisions that take it out of service."""
    assert flow.compartment is not None and flow.intent is not None
    failed, intent = flow.compartment, flow.intent
    flow.compartment = flow.intent = None
    return failed, [UnlockFailed(intent), Forget(failed)]


#: Answers a cancelled drop-off ignores: they were asked for before the cancel.
LATE_AFTER_CANCEL = (
    RoomChecked,
    Reserved,
    ReserveFailed,
    NoLowFree,
    ShutChecked,
    RetryOutcome,
    DoorTimeout,
)


class DropOff(Opening):
    """A courier's drop-off: a size, a compartment, its door, the parcel stored."""

    def __init__(self, sizes: tuple[str, ...]):
        self.sizes = sizes

    def step(self, flow: Flow, event: FlowEvent) -> list[Decision]:
        if flow.state == State.CLOSING:
            return self._closing(flow, event)
        if flow.state == State.CANCELLED and isinstance(event, LATE_AFTER_CANCEL):
            # The courier cancelled while the store or the bank was being asked (a
            # reservation, a re-pulse): nothing more happens, and a compartment
            # reserved meanwhile is given back.
            flow.retrying = False
            return [Release(event.intent, "cancelled")] if isinstance(event, Reserved) else []
        match event:
            case Scanned(size=None):
                flow.state = State.NEED_SIZE
                return []
            case Scanned(size=str(size)):
                return [Reserve(size)]
            case SizeChosen():
                return self._choose(flow, event.size)
            case ReserveFailed():
                flow.state, flow.error = (
                    State.FAILED,
                    {"code": event.code, "message": event.message},
                )
                return []
            case RoomChecked():
                return self._room_checked(flow, event)
            case NoLowFree():
                return self._no_low(flow, event)
            case AnyHeight():
                return self._any_height(flow)
            case DoesntFit():
                return self._doesnt_fit(flow, event.compartment_size)
            case CourierSaysNotOpen():
                return self._not_open(flow, event.lock_switch_only)
            case Cancel():
                return self._cancel(flow)
        return super().step(flow, event)

    def _reserved(self, flow: Flow, event: Reserved) -> list[Decision]:
        flow.size, flow.offered_size, flow.error = event.size, None, None
        return super()._reserved(flow, event)

    def _choose(self, flow: Flow, size: object) -> list[Decision]:
        waiting = (State.NEED_SIZE, State.OFFER_SIZE, State.DID_NOT_OPEN)
        if flow.state not in waiting:
            raise FlowError("wrong_state", f"this drop-off is {flow.state}, not waiting for a size")
        return [Reserve(check_size(size, self.sizes, flow.offered_size))]

    def _no_low(self, flow: Flow, event: NoLowFree) -> list[Decision]:
        """Nothing is reserved while the courier decides: another compartment, or cancel."""
        flow.state, flow.offered_size = State.NO_LOW, event.size
        flow.error = {
            "code": "no_low_compartment",
            "message": f"no low compartment is free for {event.size}",
            "compartment": event.compartment,
        }
        return []

    def _any_height(self, flow: Flow) -> list[Decision]:
        if flow.state != State.NO_LOW or flow.offered_size is None:
            raise FlowError("wrong_state", f"this drop-off is {flow.state}, not asking")
        flow.prefer_low = False
        named = flow.error.get("compartment") if flow.error else None
        return [Reserve(flow.offered_size, compartment=None if named is None else str(named))]

    def _doesnt_fit(self, flow: Flow, compartment_size: str | None) -> list[Decision]:
        if flow.state != State.OPEN or flow.intent is None or flow.compartment is None:
            raise FlowError("door_not_open", "open the door and try the parcel first")
        assert compartment_size is not None
        decisions: list[Decision] = [Release(flow.intent, "doesnt_fit"), Forget(flow.compartment)]
        larger = next_size(compartment_size, self.sizes)
        flow.state, flow.offered_size = (
            (State.OFFER_SIZE, larger) if larger else (State.NO_LARGER_SIZE, None)
        )
        flow.compartment = flow.intent = None
        return [*decisions, Publish()]

    def _cancel(self, flow: Flow) -> list[Decision]:
        if flow.state in (State.STORED, State.CANCELLED, State.FAILED):
            raise FlowError("wrong_state", f"this drop-off is already {flow.state}")
        if flow.active and flow.intent is not None:
            return self._close_first(flow, flow.intent)
        flow.state = State.CANCELLED
        return [Publish()]

    def _close_first(self, flow: Flow, intent: int) -> list[Decision]:
        """Cancelled once its lock was pulsed: the latch may be out and the door ajar, so
        the compartment is given back only once its door is seen shut. An open door's
        closing does it (left open, the alarm comes as for any door); a door not seen
        open is read once the pulse is over."""
        opened = flow.state == State.OPEN
        flow.state = State.CLOSING
        decisions: list[Decision] = [CancelTimer(), Release(intent, "cancelled", shut_first=True)]
        return [*decisions, Publish() if opened else CheckShut()]

    def _closing(self, flow: Flow, event: FlowEvent) -> list[Decision]:
        """Cancelled, waiting for the door to be seen shut; requests are refused."""
        match event:
            case ShutChecked():
                return self._shut_checked(flow, event)
            case DoorOpened():
                return [CancelTimer(), Publish()]  # its closing settles it now
            case DoorClosed():
                return self._closed_after_cancel(flow, event.completed)
            case DoorTimeout():
                return [CheckShut(again=True)]
            case RetryOutcome():
                flow.retrying = False  # asked before the cancel; the door's closing decides
                return []
            case LeftOpen():
                flow.alarm = "left_open"
                return [Publish()]
            case LeaveUnshut():
                return self._left_unshut(flow)
            case Cancel() | SizeChosen() | DoesntFit() | CourierSaysNotOpen() | AnyHeight():
                raise FlowError("wrong_state", "this drop-off is cancelled: close its door")
        return []

    def _left_unshut(self, flow: Flow) -> list[Decision]:
        """The courier leaves a cancelled drop-off's door that will not shut: what is
        behind it is unknown, so the compartment needs a check (``door_not_shut``)."""
        assert flow.intent is not None and flow.compartment is not None
        comp, intent = flow.compartment, flow.intent
        flow.state = State.FAILED
        message = f"{comp} was left unshut; it will be checked"
        flow.error = {"code": "door_not_shut", "message": message, "compartment": comp}
        return [CancelTimer(), LeaveForCheck(intent, comp), Forget(comp), Publish()]

    def _shut_checked(self, flow: Flow, event: ShutChecked) -> list[Decision]:
        """Shut and latched: free now. Open, or the first read: wait (the courier is
        asked to shut it). Still unlatched behind a shut door after the wait: a check."""
        assert flow.intent is not None and flow.compartment is not None
        if not event.shut and (event.open or not event.again):
            return [ArmTimer()] if event.again else [ArmTimer(), Publish()]
        decisions: list[Decision] = [SettleCancelled(flow.intent, event.shut)]
        flow.state = State.CANCELLED
        return [*decisions, Forget(flow.compartment), Publish()]

    def _closed_after_cancel(self, flow: Flow, completed: str) -> list[Decision]:
        """The door closed: cancelled; or failed where the item sensor still sees
        something inside (the compartment needs a check)."""
        assert flow.compartment is not None
        flow.state = State.CANCELLED
        if completed != "released":
            flow.state = State.FAILED
            message = f"something was left in {flow.compartment}; it will be checked"
            flow.error = {"code": completed, "message": message}
        return [CancelTimer(), Forget(flow.compartment), Publish()]

    def _give_up(self, flow: Flow, courier_here: bool) -> list[Decision]:
        """A drop-off goes on to another compartment only when the courier is at the
        kiosk to say so: one who walked away must not leave door after door pulsed and
        broken. Without the courier it waits in ``did_not_open`` if another compartment
        fits (else it tries, and fails, to reserve one)."""
        assert flow.size is not None
        failed, decisions = abandon(flow)
        if courier_here:
            return [*decisions, Reserve(flow.size, or_fail=True), Publish()]
        return [*decisions, CheckRoom(flow.size, failed)]

    def _room_checked(self, flow: Flow, event: RoomChecked) -> list[Decision]:
        assert flow.size is not None
        if not event.room:
            return [Reserve(flow.size, or_fail=True), Publish()]
        flow.state, flow.offered_size = State.DID_NOT_OPEN, flow.size
        flow.error = {
            "code": "door_did_not_open",
            "message": f"{event.failed} did not open",
            "compartment": event.failed,
        }
        return [Publish()]


def machine(kind: Kind, sizes: tuple[str, ...]) -> Opening:
    """The state machine that drives a flow of ``kind``."""
    return DropOff(sizes) if kind in (Kind.DROPOFF, Kind.SEND) else Opening()
