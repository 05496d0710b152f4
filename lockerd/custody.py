"""Custody rules, pure: which compartment a parcel gets, and which state follows which.

The store (lockerd/store/custody.py) asks these and writes the answers in one
transaction with their journal events; nothing here reads or writes anything.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from lockerd.config.schema import CompartmentConfig
from lockerd.domain import Comp, Door, Intent, Outbound, Parcel, Purpose
from lockerd.errors import FlowError

#: Compartment states a person may put back in use (after checking them).
CHECKABLE = (Comp.OUT_OF_SERVICE, Comp.NEEDS_CHECK)
#: Openings for a parcel someone came for: a door of these that will not open leaves the
#: parcel where it was, in custody as it was (``parcel.stuck``), until it is repaired.
HOLDS_FOR = (Purpose.PICKUP, Purpose.COLLECT)


def choose(
    compartments: Iterable[CompartmentConfig],
    free: set[str],
    size: str,
    size_order: Sequence[str],
    prefer_low: bool = False,
) -> CompartmentConfig | None:
    """The free compartment a parcel of ``size`` gets: the smallest size that fits, a
    high one first (the low ones kept for those who need them), then by column and row.
    With ``prefer_low`` (the courier needs a low compartment) only a low-reach one, of
    the smallest size that fits among them; None where none is free (:func:`no_low`)."""
    return Choice(compartments, size_order).pick(free, size, prefer_low)


class Choice:
    """:func:`choose` for one bank: the order compartments are given in, sorted once, so
    a reservation only walks it to the first free one that fits."""

    def __init__(self, compartments: Iterable[CompartmentConfig], size_order: Sequence[str]):
        self._rank = {name: n for n, name in enumerate(size_order)}
        comps = list(compartments)
        self._orders = {
            False: sorted(comps, key=self._key),
            True: sorted((c for c in comps if c.low_reach), key=self._key),
        }

    def _key(self, c: CompartmentConfig) -> tuple[int, bool, int, int]:
        return (self._rank[c.size], c.low_reach, c.column, c.row)

    def pick(self, free: set[str], size: str, prefer_low: bool = False) -> CompartmentConfig | None:
        return next((c for c in self.candidates(size, prefer_low) if c.id in free), None)

    def candidates(self, size: str, prefer_low: bool = False) -> Sequence[CompartmentConfig]:
        """The compartments that fit ``size``, in the order they are given out: a tail of
        :meth:`order` (it is sorted by size first)."""
        least = self._rank.get(size)
        if least is None:
            raise ValueError(f"{size!r} is not a configured size")
        order = self._orders[prefer_low]
        return order[bisect_left(order, least, key=lambda c: self._rank[c.size]) :]

    def order(self, prefer_low: bool) -> Sequence[CompartmentConfig]:
        """Every compartment (only low-reach ones with ``prefer_low``) in the order given out."""
        return self._orders[prefer_low]


def no_low(size: str, other: CompartmentConfig) -> FlowError:
    """The refusal where no low compartment fits ``size`` but ``other`` does: the courier
    chooses between it and cancelling; nothing is reserved meanwhile."""
    return FlowError(
        "no_low_compartment",
        f"no low compartment is free for {size}; {other.id} is",
        size=size,
        compartment=other.id,
    )


def released(intent: Intent, shut_first: bool = False) -> tuple[Intent, Comp | None]:
    """A flow gives its compartment back: the intent's state, and the compartment's now
    (free at once if the door was never seen open; else when it is seen closed). With
    ``shut_first`` (cancelled once its lock was pulsed: the latch may be out) it is
    never free at once: only when its door is seen shut (:func:`shut_after_cancel`)."""
    if intent == Intent.PENDING and not shut_first:
        return Intent.DONE, Comp.FREE
    return Intent.RELEASED, None


def shut_after_cancel(latched: bool, item: bool | None = None) -> tuple[Comp, str | None]:
    """A cancelled drop-off's door, never seen open, read shut after its pulse: free if
    its latch caught again (or the board reports none), else it needs a check; so does
    one whose item sensor sees something (the door moved faster than it was seen)."""
    if not latched:
        return Comp.NEEDS_CHECK, "not_latched"
    return (Comp.NEEDS_CHECK, "item_left_inside") if item else (Comp.FREE, None)


def in_service(holds_parcel: bool) -> Comp:
    """A checked compartment (one of :data:`CHECKABLE`) back in use: occupied if it holds
    a parcel, else free."""
    return Comp.OCCUPIED if holds_parcel else Comp.FREE


@dataclass(frozen=True)
class Completion:
    """What a door cycle under a live intent completes.

    ``completed`` is what the flow is told; ``comp`` the compartment's state after
    (before any alarm); ``parcel`` the parcel's state after, None where none changes;
    ``reason`` why the compartment needs a check, where it does; ``outbound`` an
    outbound parcel's state after, where the intent is for one.
    """

    completed: str
    comp: Comp
    parcel: Parcel | None = None
    reason: str | None = None
    outbound: Outbound | None = None


def completion(
    purpose: Purpose, intent: Intent, outbound: bool = False, collected: bool = False
) -> Completion:
    """The custody change a door closing completes under an intent (DESIGN.md section 3).

    ``outbound``: the intent deposits (a drop-off) or collects an outbound parcel.
    ``collected``: the intent's parcel was collected already, at an earlier door cycle;
    a pickup intent for it is the resident reopening a door shut too early, which
    changes no custody (the compartment is free again, as it was)."""
    if intent == Intent.RELEASED:
        return Completion("released", Comp.FREE)
    if outbound and purpose == Purpose.DROPOFF:
        return Completion("stored", Comp.OCCUPIED, outbound=Outbound.AWAITING_COLLECTION)
    if outbound and purpose == Purpose.COLLECT:
        return Completion("collected", Comp.FREE, outbound=Outbound.COLLECTED)
    if purpose == Purpose.PICKUP and collected:
        return Completion("reopened", Comp.FREE)
    if purpose == Purpose.DROPOFF:
        return Completion("stored", Comp.OCCUPIED, Parcel.STORED)
    if purpose == Purpose.PICKUP:
        return Completion("collected", Comp.FREE, Parcel.COLLECTED)
    if purpose == Purpose.COLLECT:
        return Completion("collected", Comp.FREE, Parcel.RETURNED)
    # A technician's or remote open: what is inside is for a person to confirm.
    return Completion(str(purpose), Comp.NEEDS_CHECK, reason=f"{purpose}_open")


def settled(state: Comp, after_alarm: bool) -> tuple[Comp, str | None]:
    """The compartment's state after a door cycle; one left open needs a check first."""
    return (Comp.NEEDS_CHECK, "left_open") if after_alarm else (state, None)


def mismatch(purpose: Purpose, intent: Intent, item: bool | None) -> tuple[str, str] | None:
    """``(needs_check reason, what was expected inside)`` where the item sensor
    contradicts what the door cycle would complete; None where it agrees or is absent."""
    if item is None or purpose in (Purpose.SERVICE, Purpose.REMOTE):
        return None
    if intent == Intent.RELEASED:
        return ("item_left_inside", "empty") if item else None
    if purpose == Purpose.DROPOFF:
        return None if item else ("parcel_not_seen", "item")
    return ("parcel_still_inside", "empty") if item else None


def reconciled(
    state: Comp,
    reason: str | None,
    door: Door,
    interrupted: bool,
    item: bool | None = None,
) -> tuple[Comp, str | None]:
    """Where a compartment stands after a restart (DESIGN.md invariant 3)."""
    if state in CHECKABLE:
        return state, reason
    if interrupted or state in (Comp.RESERVED, Comp.OPEN):
        return Comp.NEEDS_CHECK, "interrupted_unlock"
    if door == Door.OPEN:
        return Comp.NEEDS_CHECK, "open_at_start"
    if state == Comp.FREE and item:
        return Comp.NEEDS_CHECK, "item_at_start"
    if state == Comp.OCCUPIED and item is False:
        return Comp.NEEDS_CHECK, "empty_at_start"
    return state, None


def unreachable(comp_id: str, support: str) -> FlowError:
    """The refusal for a door whose board is silent now: come back (or call support)."""
    return FlowError(
        "compartment_unreachable",
        f"the door of {comp_id} cannot be opened just now; please try again later"
        + (f", or call {support}" if support else ""),
        support=support,
    )


def door_refusal(state: Comp) -> FlowError | None:
    """Why the door of a compartment holding a parcel cannot be opened in ``state``."""
    if state == Comp.OUT_OF_SERVICE:
        return FlowError("compartment_out_of_order", "the compartment is out of order")
    if state not in (Comp.OCCUPIED, Comp.NEEDS_CHECK):
        return FlowError("pickup_in_progress", "this parcel's door is already opening")
    return None


def reopen_refusal(
    parcel: Parcel, closed_at: float | None, now: float, grace_s: float, pickups: int, state: Comp
) -> FlowError | None:
    """Why a collected parcel's door may not be opened again for its resident now: only
    within ``grace_s`` of the pickup's door cycle, only once (``pickups``: the pickup
    intents it had), and only while the compartment is still free (nobody else's)."""
    if parcel != Parcel.COLLECTED or closed_at is None or now > closed_at + grace_s:
        return FlowError("reopen_expired", "the time to open this door again is over")
    if pickups > 1:
        return FlowError("reopen_used", "this door was opened again already")
    if state != Comp.FREE:
        return FlowError("compartment_taken", "this compartment is in use again")
    return None


def pickup_refusal(door: FlowError | None, parcel: Parcel) -> FlowError | None:
    """Why a resident may not take a parcel now: an expired one goes back to its courier;
    else the door's refusal, if any."""
    if parcel == Parcel.EXPIRED:
        return FlowError("parcel_expired", "this parcel's pickup time has run out")
    return door


def cut_short(purpose: Purpose, state: Intent, checked: str | None) -> bool:
    """Whether an intent is a deposit cut short (the daemon stopped while its door was
    opening or open) that no technician has looked into yet (``checked``): its parcel
    may be inside."""
    return purpose == Purpose.DROPOFF and state == Intent.INTERRUPTED and checked is None


def deposit_unresolved(comp_id: str, barcode: str | None) -> str:
    """Why ``comp_id`` stays out of use after a deposit cut short there."""
    return f"{comp_id} may hold parcel {barcode}: its deposit was cut short by a stop"


def send_held(support: str) -> FlowError:
    """The refusal of a send code whose deposit was cut short (the locker stopped with
    its door open or opening) until a technician has looked inside."""
    return FlowError(
        "send_code_in_check",
        "this parcel's deposit is being checked; please try again later"
        + (f", or call {support}" if support else ""),
        support=support,
    )


def send_refusal(used: bool, returned: Parcel | None, kind: str) -> FlowError | None:
    """Why a genuine send code deposits nothing: it deposited a parcel already, or it
    returns a parcel still in the locker (``returned``: the state of the parcel with the
    code's label here, if there is one)."""
    if used:
        return FlowError("send_code_used", "this send code has already been used")
    if kind == "return" and returned in (Parcel.EXPECTED, Parcel.STORED, Parcel.EXPIRED):
        return FlowError(
            "not_collected", "that parcel has not been collected, so it cannot be returned"
        )
    return None


def collect_refusal(carrier: str, parcel_carrier: str | None) -> FlowError | None:
    """Why a courier of ``carrier`` may not collect a parcel for ``parcel_carrier`` (a
    parcel without a carrier is any collecting courier's)."""
    if parcel_carrier and parcel_carrier != carrier:
        return FlowError("other_carrier", "this parcel is for another carrier's courier")
    return None


def extended(pickup_by: float, now: float, state: Parcel) -> Parcel:
    """A parcel's state once its pickup deadline moves: stored again if it is ahead."""
    return Parcel.STORED if pickup_by > now else state
