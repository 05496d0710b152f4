"""The flow record (one drop-off, pickup or door opening in progress), its states, and
request validation. Pure: no I/O, no event loop."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from lockerd.errors import BadRequest

if TYPE_CHECKING:
    from lockerd.clock import Timer

#: Printable ASCII without spaces: every carrier label we know (Code 128, GS1
#: element strings with the FNC1 already stripped, DPD's 28 characters).
BARCODE = re.compile(r"[\x21-\x7e]{4,64}")
COURIER_CODE = re.compile(r"[\x21-\x7e]{4,64}")
#: How many times longer a person who asked for more time (the kiosk's "More time") gets
#: for what is asked of them: a door to open, the grace to open it again, the next door
#: of a group, and (the page) the idle timeout and each message. Never the pulse, the
#: cooldowns or the door-left-open alarm: those guard the hardware, not the person.
MORE_TIME = 3


class Kind(StrEnum):
    """What a flow is for (the kiosk API's ``kind``)."""

    DROPOFF = "dropoff"  #: a courier puts a parcel in
    PICKUP = "pickup"  #: a resident takes a parcel out (PIN or QR code)
    COLLECT = "collect"  #: a courier takes an expired parcel back
    REMOTE = "remote"  #: a back-office command opens a door
    SERVICE = "service"  #: a technician opens a door
    SEND = "send"  #: a member of the public puts in a parcel to send or return


class State(StrEnum):
    """Where a flow is; the values are the kiosk API's ``state`` strings."""

    NEED_SIZE = "need_size"  #: drop-off: no size known yet
    OFFER_SIZE = "offer_size"  #: drop-off: did not fit, a larger size is offered
    NO_LARGER_SIZE = "no_larger_size"  #: drop-off: did not fit, nothing larger exists
    DID_NOT_OPEN = "did_not_open"  #: drop-off: a door never opened, nobody said so
    NO_LOW = "no_low"  #: drop-off: no low compartment free; the courier may take another
    CLOSING = "closing"  #: drop-off: cancelled after its pulse, waiting for the door shut
    OPENING = "opening"  #: pulsed, waiting for the door to be seen open
    OPEN = "open"  #: the door is open
    STORED = "stored"  #: drop-off: the door closed on the parcel
    COLLECTED = "collected"  #: pickup or collect: the door closed, parcel taken
    CLOSED = "closed"  #: service or remote: the door closed again
    FAILED = "failed"  #: ended in an error (``Flow.error``)
    CANCELLED = "cancelled"  #: drop-off: the courier cancelled


@dataclass
class Flow:
    """A drop-off, pickup, collection or door opening in progress. Its state changes
    only in its machine (``lockerd.flows.machine``).

    Drop-off states: ``need_size`` -> ``opening`` -> ``open`` -> ``stored``;
    from ``open``, "does not fit" goes to ``offer_size`` (or
    ``no_larger_size``); a courier who needs a low compartment where none
    is free is asked in ``no_low`` (``any-height`` takes another); a door
    that never opened while nobody told the kiosk goes to ``did_not_open``,
    where the courier posts a size to try another compartment; cancelled
    after its lock was pulsed it waits in ``closing`` for its door to be seen
    shut; ``failed`` and ``cancelled`` end it. Pickup (a resident) and collect (a courier
    taking back an expired parcel) states: ``opening`` -> ``open`` ->
    ``collected``, or ``failed`` (``not_opened_in_time``: nobody opened the door in
    time, the parcel stays); a group's pickup offers each next door
    (``next_door``) after a door's cycle, and opens it only when asked; a pickup that
    reopens a collected parcel's door (``reopen``) ends ``closed``. Service and remote
    openings: ``opening`` -> ``open`` -> ``closed``, or ``failed``. A send (the
    public's parcel to send or return) goes as a drop-off, begun at ``opening``.
    """

    kind: Kind
    state: State
    courier: str | None = None
    barcode: str | None = None
    size: str | None = None
    prefer_low: bool = False
    #: The person asked for more time (:data:`MORE_TIME`) when the visit began.
    more_time: bool = False
    compartment: str | None = None
    intent: int | None = None
    attempt: int = 0
    alarm: str | None = None
    offered_size: str | None = None
    parcel: int | None = None
    #: A send's outbound parcel (``lockerd/store/outbound.py``).
    outbound: int | None = None
    error: dict[str, str] | None = None
    #: A pickup that opens a just-collected parcel's door once more (the grace period).
    reopen: bool = False
    #: A pickup of a group (one recipient's parcels, announced so): the group, the
    #: parcels whose doors it opened so far, and how many the group holds.
    group: str | None = None
    group_tried: list[int] = field(default_factory=list)
    group_total: int = 1
    #: A pickup group between two doors: the compartment whose door the resident may ask
    #: for next (``pickup.next_door_s``); None when no next door is offered.
    next_door: str | None = None
    #: A pickup's compartments whose doors would not open (their parcels stay inside).
    stuck: list[str] = field(default_factory=list)
    #: The status-checked re-pulse is under way (its outcome not yet known).
    retrying: bool = False
    #: Seconds the door has, from the latest pulse, to be seen open (the page's progress).
    open_within_s: float | None = None
    #: Counts the flow's published changes, so a view that arrives late (a POST's
    #: response after the event stream's newer view) is known to be older.
    revision: int = 0
    id: str = field(default_factory=lambda: secrets.token_hex(8))
    timer: Timer | None = field(default=None, repr=False)

    ACTIVE = (State.OPENING, State.OPEN)
    #: The flow still has a door of its own: opening, open, or (a drop-off cancelled
    #: after its pulse) waiting to be seen shut.
    AT_DOOR = (*ACTIVE, State.CLOSING)

    @property
    def active(self) -> bool:
        return self.state in self.ACTIVE

    @property
    def at_door(self) -> bool:
        return self.state in self.AT_DOOR

    def person_s(self, seconds: float) -> float:
        """``seconds`` given to the person of this flow: :data:`MORE_TIME` times as long
        if they asked for more time."""
        return seconds * MORE_TIME if self.more_time else seconds

    def cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def view(self) -> dict[str, Any]:
        """What the kiosk API shows of this flow."""
        view: dict[str, Any] = {
            "id": self.id,
            "kind": self.kind,
            "state": self.state,
            "compartment": self.compartment,
            "size": self.size,
            "attempt": self.attempt,
            "alarm": self.alarm,
            "error": self.error,
            "revision": self.revision,
            "more_time": self.more_time,
        }
        if self.kind == Kind.COLLECT:
            view["barcode"] = self.barcode
        if self.kind == Kind.PICKUP:
            view |= {
                "open_within_s": self.open_within_s,
                "reopen": self.reopen,
                "parcels": {"index": max(len(self.group_tried), 1), "total": self.group_total},
                "stuck": list(self.stuck),
                "next_door": self.next_door,
            }
        if self.kind in (Kind.DROPOFF, Kind.SEND):
            view |= {
                "barcode": self.barcode,
                "offered_size": self.offered_size,
                "parcel": self.parcel,
            }
        return view


def check_barcode(value: object) -> str:
    if not isinstance(value, str) or not BARCODE.fullmatch(value):
        raise BadRequest(
            "invalid_barcode",
            "a barcode is 4 to 64 printable characters without spaces",
            field="barcode",
        )
    return value


def check_courier_code(value: object) -> str:
    if not isinstance(value, str) or not COURIER_CODE.fullmatch(value):
        raise BadRequest(
            "invalid_code", "a courier code is 4 to 64 printable characters", field="code"
        )
    return value


def check_size(value: object, sizes: tuple[str, ...], at_least: str | None = None) -> str:
    if not isinstance(value, str) or value not in sizes:
        raise BadRequest(
            "invalid_size",
            f"size must be one of {', '.join(sizes)}",
            field="size",
            sizes=list(sizes),
        )
    if at_least is not None and sizes.index(value) < sizes.index(at_least):
        raise BadRequest(
            "size_too_small", f"the parcel did not fit; choose {at_least} or larger", field="size"
        )
    return value


def next_size(size: str, sizes: tuple[str, ...]) -> str | None:
    index = sizes.index(size) + 1
    return sizes[index] if index < len(sizes) else None
