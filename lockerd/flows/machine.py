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
may say the door did not open, which runs the re-pulse at once. A drop-off (``DropOff``)
adds choosing a size, "does not fit", "the door did not open", cancelling, and what
happens after a door that would not open.
"""

from __future__ import annotations

from dataclasses import dataclass

from lockerd.errors import FlowError
from lockerd.flows.record import Flow, Kind, State, check_size, next_size

# -- events: what happened --------------------------------------------------------------


@dataclass(frozen=True)
class Scanned:
    """A courier scanned a parcel to drop off; ``size`` chosen or announced, or None."""

    size: str | None


@dataclass(frozen=True)
class SizeChosen:
    """The courier chose a size (unchecked, as the kiosk sent it)."""

    size: object


@dataclass(frozen=True)
class Reserved:
    """A compartment was reserved and its unlock intent committed."""

    compartment: str
    intent: int
    size: str


@dataclass(frozen=True)
class ReserveFailed:
    """No compartment could be reserved (a FlowError's code and message)."""

    code: str
    message: str


@dataclass(frozen=True)
class DoorOpened:
    """The flow's door was seen open under its intent."""


@dataclass(frozen=True)
class DoorClosed:
    """The flow's door closed and the store completed the door cycle as ``completed``."""

    completed: str
    parcel: int | None = None


@dataclass(frozen=True)
class LeftOpen:
    """The flow's door stayed open too long."""


@dataclass(frozen=True)
class DoorTimeout:
    """The door was not seen open in time (``courier_here``: the courier says so)."""

    courier_here: bool = False


@dataclass(frozen=True)
class RetryOutcome:
    """What the status-checked re-pulse did: ``pulsed``, ``released``, ``open`` or
    ``unreadable`` (the status could not be read: no re-pulse)."""

    outcome: str
    courier_here: bool = False


@dataclass(frozen=True)
class RoomChecked:
    """Whether another compartment of the flow's size is free, after ``failed`` would
    not open."""

    room: bool
    failed: str


@dataclass(frozen=True)
class DoesntFit:
    """The courier says the parcel does not fit (the open compartment's size, if any)."""

    compartment_size: str | None


@dataclass(frozen=True)
class CourierSaysNotOpen:
    """The courier (or, at a pickup, the resident) says the door did not open;
    ``lock_switch_only``: the door is sensed by the lock's switch alone (which reads
    open once the latch is released)."""

    lock_switch_only: bool


@dataclass(frozen=True)
class Cancel:
    """The courier cancels the drop-off."""


FlowEvent = (
    Scanned
    | SizeChosen
    | Reserved
    | ReserveFailed
    | DoorOpened
    | DoorClosed
    | LeftOpen
    | DoorTimeout
    | RetryOutcome
    | RoomChecked
    | DoesntFit
    | CourierSaysNotOpen
    | Cancel
)

# -- decisions: what the locker must do -------------------------------------------------


@dataclass(frozen=True)
class Reserve:
    """Reserve a compartment of ``size`` for the drop-off (answer: Reserved). With
    ``or_fail`` a refusal becomes ReserveFailed; without, it goes to the caller."""

    size: str
    or_fail: bool = False


@dataclass(frozen=True)
class Watch:
    """Route ``compartment``'s door changes to this flow."""

    compartment: str


@dataclass(frozen=True)
class Forget:
    """Stop routing ``compartment``'s door changes to this flow."""

    compartment: str


@dataclass(frozen=True)
class Pulse:
    """Pulse the flow's lock (try ``attempt``) and record it when it went out."""

    attempt: int


@dataclass(frozen=True)
class RetryPulse:
    """Read the lock's status and re-pulse if it is still caught (answer: RetryOutcome)."""

    courier_here: bool = False


@dataclass(frozen=True)
class RecordPulse:
    """Record that the re-pulse ``attempt`` went out."""

    attempt: int


@dataclass(frozen=True)
class ArmTimer:
    """Start the door-open timeout (answer, when it fires: DoorTimeout)."""


@dataclass(frozen=True)
class CancelTimer:
    """Stop the door-open timeout."""


@dataclass(frozen=True)
class Release:
    """Give the compartment of ``intent`` back (``reason``: doesnt_fit, cancelled)."""

    intent: int
    reason: str


@dataclass(frozen=True)
class UnlockFailed:
    """The door of ``intent`` never opened: its compartment goes out of service."""

    intent: int


@dataclass(frozen=True)
class CheckRoom:
    """Ask whether a compartment of ``size`` is free (answer: RoomChecked)."""

    size: str
    failed: str


@dataclass(frozen=True)
class Publish:
    """Publish the flow's new view."""


Decision = (
    Reserve
    | Watch
    | Forget
    | Pulse
    | RetryPulse
    | RecordPulse
    | ArmTimer
    | CancelTimer
    | Release
    | UnlockFailed
    | CheckRoom
    | Publish
)

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
        if flow.attempt == 1:
            flow.retrying = True
            return [RetryPulse(courier_here)]
        return self._give_up(flow, courier_here)

    def _retried(self, flow: Flow, event: RetryOutcome) -> list[Decision]:
        flow.retrying = False
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
            # says the door did not move. That is a jammed door.
            return self._give_up(flow, courier_here=True)
        if flow.state != State.OPENING:
            raise FlowError("wrong_state", f"this {flow.kind} is {flow.state}, not opening")
        return [CancelTimer(), *self._timeout(flow, courier_here=True)]

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


class DropOff(Opening):
    """A courier's drop-off: a size, a compartment, its door, the parcel stored."""

    def __init__(self, sizes: tuple[str, ...]):
        self.sizes = sizes

    def step(self, flow: Flow, event: FlowEvent) -> list[Decision]:
        if flow.state == State.CANCELLED and isinstance(
            event, RoomChecked | Reserved | ReserveFailed
        ):
            # The courier cancelled while the store was being asked: nothing more
            # happens, and a compartment reserved meanwhile is given back.
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
        decisions: list[Decision] = []
        if flow.active and flow.intent is not None and flow.compartment is not None:
            decisions = [CancelTimer(), Release(flow.intent, "cancelled"), Forget(flow.compartment)]
        flow.state = State.CANCELLED
        return [*decisions, Publish()]

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
    return DropOff(sizes) if kind == Kind.DROPOFF else Opening()
