"""What the flows' state machines (``lockerd.flows.machine``) take and give: the events
that happened, and the decisions the locker must carry out. Plain frozen records."""

from __future__ import annotations

from dataclasses import dataclass

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
class NoLowFree:
    """No low compartment fits ``size``; ``compartment`` (out of reach) would."""

    size: str
    compartment: str


@dataclass(frozen=True)
class AnyHeight:
    """The courier takes a compartment out of reach after all (from ``no_low``)."""


@dataclass(frozen=True)
class ShutChecked:
    """After a cancel, the pulse over: whether the door reads shut with its latch caught
    (``shut``), whether it reads open (``open``), and whether this is the check after
    the wait (``again``)."""

    shut: bool
    open: bool
    again: bool = False


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
    ``unreadable`` (the status could not be read: no re-pulse). ``intent``: the one
    whose door it was for (None: the flow's own)."""

    outcome: str
    courier_here: bool = False
    intent: int | None = None


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


@dataclass(frozen=True)
class LeaveUnshut:
    """A cancelled drop-off's door will not shut, and the courier leaves it so (or the
    kiosk, idle, does): the compartment needs a check."""


FlowEvent = (
    Scanned
    | SizeChosen
    | Reserved
    | ReserveFailed
    | NoLowFree
    | AnyHeight
    | ShutChecked
    | DoorOpened
    | DoorClosed
    | LeftOpen
    | DoorTimeout
    | RetryOutcome
    | RoomChecked
    | DoesntFit
    | CourierSaysNotOpen
    | Cancel
    | LeaveUnshut
)

# -- decisions: what the locker must do -------------------------------------------------


@dataclass(frozen=True)
class Reserve:
    """Reserve a compartment of ``size`` for the drop-off (answer: Reserved, or NoLowFree
    where the courier needs a low one and none is free). With ``or_fail`` a refusal
    becomes ReserveFailed; without, it goes to the caller. ``compartment``: that one
    only (NoLowFree naming the one that would be used now where it is taken)."""

    size: str
    or_fail: bool = False
    compartment: str | None = None


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
    """Give the compartment of ``intent`` back (``reason``: doesnt_fit, cancelled);
    ``shut_first``: free only once its door is seen shut (cancelled after its pulse)."""

    intent: int
    reason: str
    shut_first: bool = False


@dataclass(frozen=True)
class CheckShut:
    """Wait for the pulse to be over, then read the door and the latch now (answer:
    ShutChecked)."""

    again: bool = False


@dataclass(frozen=True)
class SettleCancelled:
    """A cancelled drop-off's door, never seen open, read shut: its compartment free if
    ``latched``, else needing a check."""

    intent: int
    latched: bool


@dataclass(frozen=True)
class UnlockFailed:
    """The door of ``intent`` never opened: its compartment goes out of service."""

    intent: int


@dataclass(frozen=True)
class NotOpened:
    """The door of ``intent`` was not seen open in time and nobody said it did not open:
    the latch caught again. The intent ends; the compartment and its parcel stay."""

    intent: int


@dataclass(frozen=True)
class LeaveForCheck:
    """A cancelled drop-off's door left unshut: ``intent`` ends, and ``compartment`` needs
    a check (``not_shut``); nothing changes where its door closed meanwhile."""

    intent: int
    compartment: str


@dataclass(frozen=True)
class Disputed:
    """A pickup's door read open only by its lock's switch, and the resident says it did
    not open: ``intent`` ends and the compartment needs a check (parcel unknown)."""

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
    | CheckShut
    | SettleCancelled
    | UnlockFailed
    | NotOpened
    | Disputed
    | LeaveForCheck
    | CheckRoom
    | Publish
)
