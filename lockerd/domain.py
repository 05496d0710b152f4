"""Domain vocabulary: compartment, parcel and unlock-intent states, and event types."""

from __future__ import annotations

from enum import StrEnum


class Comp(StrEnum):
    """Custody state of a compartment (the door's own state is tracked apart)."""

    FREE = "free"  #: empty, shut, may be offered
    RESERVED = "reserved"  #: an unlock intent is committed; the door has not been seen open
    OPEN = "open"  #: the door is open under an unlock intent
    OCCUPIED = "occupied"  #: holds a stored or expired parcel
    OUT_OF_SERVICE = "out_of_service"  #: failed or taken out by a technician
    NEEDS_CHECK = "needs_check"  #: may hold something unknown; never offered until checked


class Parcel(StrEnum):
    EXPECTED = "expected"
    STORED = "stored"
    COLLECTED = "collected"
    EXPIRED = "expired"
    RETURNED = "returned"
    CANCELLED = "cancelled"


class Outbound(StrEnum):
    """An outbound parcel (one the public sends or returns; ``lockerd/store/outbound.py``)."""

    DEPOSITING = "depositing"  #: a send code was accepted; its door has not closed on it yet
    AWAITING_COLLECTION = "awaiting_collection"  #: in the locker for its carrier's courier
    COLLECTED = "collected"  #: a courier of its carrier took it
    CANCELLED = "cancelled"  #: the sender gave up before the door closed on it
    REMOVED = "removed"  #: a technician took it out by hand


class Purpose(StrEnum):
    """Why a door is about to open."""

    DROPOFF = "dropoff"
    PICKUP = "pickup"
    COLLECT = "collect"  #: a courier takes back an expired parcel
    SERVICE = "service"
    REMOTE = "remote"


class Intent(StrEnum):
    PENDING = "pending"  #: committed, lock not yet seen released by a door opening
    OPENED = "opened"  #: the door was seen open
    DONE = "done"  #: the door closed and the flow completed
    RELEASED = "released"  #: the flow gave the compartment back (does not fit, cancelled)
    FAILED = "failed"  #: the door never opened
    INTERRUPTED = "interrupted"  #: the daemon stopped before the intent finished


#: Intent states under which the compartment is still in the flow's hands.
LIVE_INTENTS = (Intent.PENDING, Intent.OPENED, Intent.RELEASED)


class Door(StrEnum):
    OPEN = "open"
    CLOSED = "closed"
    UNKNOWN = "unknown"


class Event(StrEnum):
    """Journal event types (the sync v1 event vocabulary)."""

    STARTED = "locker.started"
    RECONCILED = "compartment.reconciled"
    UNLOCK_INTENT = "unlock.intent"
    LOCK_PULSED = "lock.pulsed"
    DOOR_OPENED = "door.opened"
    DOOR_CLOSED = "door.closed"
    DOOR_FORCED = "door.forced"
    DOOR_LEFT_OPEN = "door.left_open"
    DOOR_JAMMED = "door.jammed"
    OUT_OF_SERVICE = "compartment.out_of_service"
    IN_SERVICE = "compartment.in_service"
    NEEDS_CHECK = "compartment.needs_check"
    CUSTODY_MISMATCH = "custody.mismatch"
    PARCEL_EXPECTED = "parcel.expected"
    PARCEL_STORED = "parcel.stored"
    PARCEL_COLLECTED = "parcel.collected"
    PARCEL_EXPIRED = "parcel.expired"
    PARCEL_RETURNED = "parcel.returned"
    DROPOFF_RELEASED = "dropoff.released"
    PICKUP_DENIED = "pickup.denied"
    PICKUP_LOCKED_OUT = "pickup.locked_out"
    COURIER_LOGIN = "courier.login"
    COURIER_DENIED = "courier.denied"
    COURIER_ADDED = "courier.added"
    BOARD_OFFLINE = "board.offline"
    BOARD_ONLINE = "board.online"
    PARCEL_CANCELLED = "parcel.cancelled"
    PARCEL_EXTENDED = "parcel.extended"
    COURIER_UPDATED = "courier.updated"
    COURIER_REVOKED = "courier.revoked"
    COMMAND_APPLIED = "command.applied"
    COMMAND_REJECTED = "command.rejected"
    HEARTBEAT = "heartbeat"
    SYNC_AUTH_FAILED = "sync.auth_failed"
    STORAGE_OVER_BUDGET = "storage.over_budget"
    SERVICE_ACTION = "service.action"
    BOARD_POLARITY_SUSPECT = "board.polarity_suspect"
    AUDIT_ANCHOR = "audit.anchor"
    SEND_DENIED = "send.denied"
    OUTBOUND_DEPOSITED = "outbound.deposited"
    OUTBOUND_COLLECTED = "outbound.collected"
    OUTBOUND_REMOVED = "outbound.removed"
    PARCEL_STUCK = "parcel.stuck"
    PICKUP_REOPENED = "pickup.reopened"
    DOOR_NOT_OPENED = "door.not_opened"
