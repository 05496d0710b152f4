"""What the store's reads return: frozen records with the domain's enums, not rows.

A face that sends a record as JSON calls its ``to_json()``: the fields in the
table's column order, the enums as their strings, as the rows were sent before.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from dataclasses import dataclass
from typing import Any, TypedDict, cast

from lockerd.domain import Comp, Door, Intent, Outbound, Parcel, Purpose


class JournalEntry(TypedDict):
    """A journal event as the event stream and sync v1 carry it (DESIGN.md section 7)."""

    seq: int
    type: str
    at: float
    data: dict[str, Any]


class _Record:
    def to_json(self) -> dict[str, Any]:
        """The record as the JSON object the faces send, in column order."""
        return dataclasses.asdict(cast(Any, self))


@dataclass(frozen=True)
class Compartment(_Record):
    """A ``compartments`` row: custody state, the door as last seen, why it needs a check."""

    id: str
    size: str
    state: Comp
    door: Door
    reason: str | None
    updated_at: float

    @classmethod
    def of(cls, row: sqlite3.Row) -> Compartment:
        return cls(
            row["id"],
            row["size"],
            Comp(row["state"]),
            Door(row["door"]),
            row["reason"],
            row["updated_at"],
        )


@dataclass(frozen=True)
class CompartmentWithParcel(Compartment):
    """A compartment with the parcel it holds (stored or expired), if any, or the outbound
    one (sent or returned, awaiting its carrier): its kind, reference and carrier."""

    parcel_id: int | None
    parcel_barcode: str | None
    parcel_state: Parcel | None
    outbound: dict[str, str] | None = None

    @classmethod
    def of(cls, row: sqlite3.Row) -> CompartmentWithParcel:
        base = Compartment.of(row)
        state = row["parcel_state"]
        return cls(
            base.id,
            base.size,
            base.state,
            base.door,
            base.reason,
            base.updated_at,
            row["parcel_id"],
            row["parcel_barcode"],
            None if state is None else Parcel(state),
            _outbound(row),
        )


def _outbound(row: sqlite3.Row) -> dict[str, str] | None:
    """The outbound parcel of a compartments row joined with it (None: none)."""
    if row["outbound_kind"] is None:
        return None
    return {
        "kind": row["outbound_kind"],
        "reference": row["outbound_reference"],
        "carrier": row["outbound_carrier"],
    }


@dataclass(frozen=True)
class ParcelRecord(_Record):
    """A ``parcels`` row without its code's HMAC."""

    id: int
    barcode: str
    size: str | None
    recipient: str
    state: Parcel
    compartment_id: str | None
    courier_id: str | None
    pickup_by: float | None
    stored_at: float | None
    closed_at: float | None
    created_at: float
    updated_at: float
    hold_hours: float | None
    code_length: int | None
    #: The carrier of the courier who dropped it off (None: before carriers, or none).
    carrier: str | None = None
    #: The back office's key for one recipient's parcels, collected with one code.
    pickup_group: str | None = None

    @classmethod
    def of(cls, row: sqlite3.Row) -> ParcelRecord:
        fields = {f.name: row[f.name] for f in dataclasses.fields(cls)}
        return cls(**fields | {"state": Parcel(row["state"])})


@dataclass(frozen=True)
class UnlockIntent(_Record):
    """An ``unlock_intents`` row: why a door is about to open, and how far it got."""

    id: int
    compartment_id: str
    purpose: Purpose
    state: Intent
    parcel_id: int | None
    barcode: str | None
    size: str | None
    actor: str
    alarm: str | None
    created_at: float
    updated_at: float
    outbound_id: int | None = None
    #: What a technician found behind a deposit cut short: ``found``, ``empty`` (None: unsaid).
    checked: str | None = None

    @classmethod
    def of(cls, row: sqlite3.Row) -> UnlockIntent:
        fields = {f.name: row[f.name] for f in dataclasses.fields(cls)}
        return cls(**fields | {"purpose": Purpose(row["purpose"]), "state": Intent(row["state"])})


@dataclass(frozen=True)
class OutboundRecord(_Record):
    """An ``outbound`` row: a parcel the public sends or returns, for its carrier."""

    id: int
    kind: str
    reference: str
    size: str
    carrier: str
    state: Outbound
    compartment_id: str | None
    code_id: str
    code_expires: float
    returned_parcel_id: int | None
    collected_by: str | None
    stored_at: float | None
    closed_at: float | None
    created_at: float
    updated_at: float

    @classmethod
    def of(cls, row: sqlite3.Row) -> OutboundRecord:
        fields = {f.name: row[f.name] for f in dataclasses.fields(cls)}
        return cls(**fields | {"state": Outbound(row["state"])})


@dataclass(frozen=True, slots=True)
class PickupCode:
    """A new pickup code and its HMAC (what the database keeps of it)."""

    code: str
    digest: bytes


@dataclass(frozen=True)
class PickupNotice(_Record):
    """A pickup code waiting to be delivered (unsealed), with what its message tells."""

    parcel_id: int
    seq: int
    code: str
    barcode: str
    recipient: str
    compartment_id: str | None
    pickup_by: float | None
    #: The parcel's pickup group: any one code of the group opens all of its parcels.
    group: str | None = None


@dataclass(frozen=True)
class Collectable(_Record):
    """An expired parcel still in the locker, for a courier with the right to collect."""

    id: int
    barcode: str
    compartment_id: str | None
    pickup_by: float | None


@dataclass(frozen=True)
class DoorOpened:
    """What a debounced door opening was: the live intent's first half, or forced."""

    forced: bool
    intent: int | None = None
    purpose: Purpose | None = None


@dataclass(frozen=True)
class DoorClosed:
    """What a debounced door closing completed (``stored``, ``collected``, ``released``,
    the open's purpose, a mismatch's reason), or None; the intent and parcel concerned."""

    completed: str | None
    intent: int | None = None
    parcel: int | None = None
