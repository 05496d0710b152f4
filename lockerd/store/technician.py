"""Technicians' actions, each audited.

Each action commits with its audit entry and a ``service.action`` journal
event (so the back office hears of it, and of the audit chain's head, which
the event anchors). The chain is keyed with the device key and its head is
anchored in the journal (lockerd/store/audit.py), so a changed, removed or
reordered entry, or a removed tail, is found by :meth:`AuditRepo.verify`,
which names where.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import TypeVar

from lockerd import custody as rules
from lockerd.config.schema import CompartmentConfig
from lockerd.domain import Comp, Event, Outbound, Parcel, Purpose
from lockerd.errors import BadRequest, FlowError, NotFound
from lockerd.store._context import Context
from lockerd.store.audit import AuditRepo
from lockerd.store.custody import CustodyRepo
from lockerd.store.intents import Reservation
from lockerd.store.records import OutboundRecord, ParcelRecord, UnlockIntent
from lockerd.store.tables import Tables

T = TypeVar("T")
Who = tuple[str, str, str]


class TechnicianRepo:
    """What a technician does through ``lockerctl``, each with its audit entry."""

    def __init__(self, context: Context, tables: Tables, custody: CustodyRepo, audit: AuditRepo):
        self._c = context
        self._compartments = tables.compartments
        self._intents = tables.intents
        self._parcels = tables.parcels
        self._outbound = tables.outbound
        self._custody = custody
        self._audit = audit

    def open(self, comp_id: str, actor: str, origin: str, reason: str) -> Reservation:
        """Commit a technician's unlock intent (the compartment then needs a check)."""
        comp = self._target(comp_id)

        def effect(conn: sqlite3.Connection) -> Reservation:
            self._no_door_under_way(comp.id)
            intent = self._intents.create(conn, comp, Purpose.SERVICE, f"technician:{actor}")
            return Reservation(intent, comp.id, Purpose.SERVICE, comp.size)

        return self._audited("open", comp.id, (actor, origin, reason), effect)

    def disable(self, comp_id: str, actor: str, origin: str, reason: str) -> None:
        comp = self._target(comp_id)

        def effect(conn: sqlite3.Connection) -> None:
            self._no_door_under_way(comp.id)
            if self._compartments.get(comp.id).state == Comp.OUT_OF_SERVICE:
                raise FlowError("out_of_service", f"{comp.id} is already out of service")
            self._custody.take_out_of_service(conn, comp.id, f"technician: {reason}")

        self._audited("disable", comp.id, (actor, origin, reason), effect)

    def enable(self, comp_id: str, actor: str, origin: str, reason: str) -> str:
        comp = self._target(comp_id)

        def effect(conn: sqlite3.Connection) -> str:
            cut_short = self._intents.cut_short_at(conn, comp.id)
            if cut_short is not None:
                raise FlowError(
                    "deposit_unresolved",
                    rules.deposit_unresolved(comp.id, cut_short.barcode)
                    + f". Look inside, then run `lockerctl found {comp.id}` if it is there,"
                    f" or `lockerctl empty {comp.id}` if not",
                    barcode=cut_short.barcode,
                )  # fmt: skip
            return self._custody.return_in(conn, comp.id, f"technician:{actor}")

        return self._audited("enable", comp.id, (actor, origin, reason), effect)

    def extend(
        self, name: str | int, pickup_by: float, actor: str, origin: str, reason: str
    ) -> None:
        """A new pickup deadline for the parcel ``name`` (a barcode, or an ``int`` id) in
        the locker; an expired one still inside is stored again, its code valid again."""
        barcode = self._inside(name).barcode

        def effect(conn: sqlite3.Connection) -> None:
            self._parcels.extend(conn, barcode, pickup_by)

        self._audited("extend", barcode, (actor, origin, reason), effect)

    def returned(self, name: str | int, actor: str, origin: str, reason: str) -> None:
        """A technician took the parcel ``name`` (a barcode, or an ``int`` id) out by hand: it
        is returned, its compartment needs a check."""
        barcode = self._inside(name).barcode

        def effect(conn: sqlite3.Connection) -> None:
            row = self._parcels.live(conn, barcode)
            if row is None or row["state"] == Parcel.EXPECTED:
                raise FlowError("not_in_locker", f"parcel {barcode} is not in the locker")
            comp_id = row["compartment_id"]
            self._no_door_under_way(comp_id)
            self._parcels.close(conn, row["id"], Parcel.RETURNED)
            self._c.event(
                Event.PARCEL_RETURNED,
                {"parcel": row["id"], "compartment": comp_id, "actor": f"technician:{actor}"},
            )
            self._taken_out(conn, comp_id)

        self._audited("returned", barcode, (actor, origin, reason), effect)

    def found(self, comp_id: str, actor: str, origin: str, reason: str) -> str:
        """The parcel of the deposit cut short at ``comp_id`` is inside: it is stored with
        a new pickup code, or awaits its carrier's courier, as if the door had closed on
        it. Once the technician enables the compartment, it reads occupied. The parcel."""
        comp = self._target(comp_id)

        def effect(conn: sqlite3.Connection) -> str:
            intent = self._cut_short(conn, comp.id)
            parcel_id = None
            if intent.outbound_id is not None:
                self._deposit_found(conn, intent)
            else:
                parcel_id = self._store_found(conn, intent)
            self._intents.checked(conn, intent.id, "found", parcel_id)
            return str(intent.barcode)

        return self._audited("found", comp.id, (actor, origin, reason), effect)

    def empty(self, comp_id: str, actor: str, origin: str, reason: str) -> str:
        """The compartment of a deposit cut short is empty: the deposit did not happen (a
        courier's parcel is still expected; a send code deposits again). The parcel."""
        comp = self._target(comp_id)

        def effect(conn: sqlite3.Connection) -> str:
            intent = self._cut_short(conn, comp.id)
            self._intents.checked(conn, intent.id, "empty")
            if intent.outbound_id is not None:
                self._outbound.absent(conn, intent.outbound_id)
            return str(intent.barcode)

        return self._audited("empty", comp.id, (actor, origin, reason), effect)

    def _cut_short(self, conn: sqlite3.Connection, comp_id: str) -> UnlockIntent:
        """The deposit cut short at ``comp_id``, which waits for its check (FlowError
        where there is none, or the compartment is in use)."""
        state = self._compartments.get(comp_id).state
        if state not in rules.CHECKABLE:
            raise FlowError(
                "not_cut_short", f"{comp_id} is {state}: no deposit cut short waits there"
            )
        self._no_door_under_way(comp_id)
        intent = self._intents.cut_short_at(conn, comp_id)
        if intent is None:
            raise FlowError("not_cut_short", f"no deposit was cut short at {comp_id}")
        return intent

    def _deposit_found(self, conn: sqlite3.Connection, intent: UnlockIntent) -> None:
        """A sender's parcel found behind a deposit cut short awaits collection there,
        unless it was found at another of its doors already."""
        parcel = self.outbound_parcel(int(intent.outbound_id or 0))
        if parcel.state != Outbound.DEPOSITING:
            raise FlowError(
                "already_stored",
                f"parcel {parcel.reference} is {parcel.state}"
                + (f", found in {parcel.compartment_id} already" if parcel.compartment_id else "")
                + _take_out(intent.compartment_id),
            )
        self._outbound.complete(conn, intent, Outbound.AWAITING_COLLECTION)

    def _store_found(self, conn: sqlite3.Connection, intent: UnlockIntent) -> int:
        """A courier's parcel found behind a drop-off cut short is stored, unless a parcel
        with its barcode is in the locker already (dropped off again, at another door)."""
        live = self._parcels.live(conn, str(intent.barcode))
        if live is not None and live["state"] != Parcel.EXPECTED:
            raise FlowError(
                "already_stored",
                f"parcel {intent.barcode} is in {live['compartment_id']} already"
                + _take_out(intent.compartment_id),
            )
        return self._parcels.store(conn, intent, self._parcels.draw_code())

    def outbound_removed(self, outbound_id: int, actor: str, origin: str, reason: str) -> None:
        """A technician took out a parcel awaiting collection; its compartment needs a check."""

        def effect(conn: sqlite3.Connection) -> None:
            parcel = self.outbound_parcel(outbound_id)
            comp_id = parcel.compartment_id
            if parcel.state != Outbound.AWAITING_COLLECTION or comp_id is None:
                raise FlowError(
                    "not_in_locker",
                    f"outbound parcel {outbound_id} is {parcel.state}, not in the locker",
                )
            self._no_door_under_way(comp_id)
            self._outbound.removed(conn, parcel, f"technician:{actor}")
            self._taken_out(conn, comp_id)

        self._audited(
            "outbound_removed", f"outbound {outbound_id}", (actor, origin, reason), effect
        )

    def outbound_parcel(self, outbound_id: int) -> OutboundRecord:
        parcel = self._outbound.get(outbound_id)
        if parcel is None:
            raise NotFound("unknown_outbound", f"no outbound parcel {outbound_id}")
        return parcel

    def _no_door_under_way(self, comp_id: str) -> None:
        """FlowError ``door_in_progress`` while a door of ``comp_id`` is opening or open."""
        if self._intents.live(comp_id) is not None:
            raise FlowError("door_in_progress", f"{comp_id} has a door opening or open")

    def _taken_out(self, conn: sqlite3.Connection, comp_id: str) -> None:
        """A technician took a parcel out of ``comp_id`` by hand: it needs a check."""
        self._compartments.set(conn, comp_id, Comp.NEEDS_CHECK, "parcel taken out by a technician")
        self._c.event(Event.NEEDS_CHECK, {"compartment": comp_id, "reason": "service"})

    def parcel(self, name: str) -> ParcelRecord:
        """The parcel ``name`` names, for a read: the newest with that barcode, or the one
        whose id ``name`` is exactly as ``lockerctl parcels list`` prints it; a name that
        is both a barcode and another parcel's id is refused as ambiguous."""
        by_barcode = self._parcels.newest_id(name)
        by_id = self._parcels.get(int(name)) if _printed_id(name) else None
        if by_barcode is None:
            if by_id is None:
                raise NotFound("unknown_parcel", f"no parcel {name!r}")
            return by_id
        if by_id is not None and by_id.id != by_barcode:
            raise BadRequest(
                "ambiguous_parcel",
                f'"{name}" is both the barcode of parcel {by_barcode} and the id of parcel'
                f" {by_id.barcode}: give --barcode {name} or --id {name}",
            )
        return self.named(name)

    def named(self, name: str | int) -> ParcelRecord:
        """The newest parcel with barcode ``name`` (a ``str``), or the parcel with id
        ``name`` (an ``int``): never one read as the other."""
        if isinstance(name, int):
            parcel = self._parcels.get(name)
            if parcel is None:
                raise NotFound("unknown_parcel", f"no parcel has id {name}")
            return parcel
        parcel_id = self._parcels.newest_id(name)
        parcel = None if parcel_id is None else self._parcels.get(parcel_id)
        if parcel is None:
            as_id = f"; an id is given as --id {name}" if _printed_id(name) else ""
            raise NotFound("unknown_parcel", f'no parcel has barcode "{name}"{as_id}')
        return parcel

    def _inside(self, name: str | int) -> ParcelRecord:
        """The parcel ``name`` (a barcode, or an ``int`` id), which must be in the locker
        (stored or expired)."""
        parcel = self.named(name)
        if parcel.state == Parcel.EXPECTED:
            raise FlowError(
                "not_in_locker", f"parcel {parcel.barcode} is expected, not in the locker yet"
            )
        if parcel.state not in (Parcel.STORED, Parcel.EXPIRED):
            raise FlowError(
                "not_in_locker", f"parcel {parcel.barcode} is {parcel.state}, not in the locker"
            )
        return parcel

    def _audited(
        self, action: str, target: str, who: Who, effect: Callable[[sqlite3.Connection], T]
    ) -> T:
        """``effect`` with its audit entry; ``who`` is (actor, origin, reason)."""
        actor, origin, reason = who
        if not reason.strip():
            raise FlowError("reason_required", "every service action needs a reason")
        return self._audit.audited(actor, origin, action, target, reason, effect)

    def _target(self, comp_id: str) -> CompartmentConfig:
        comp = self._c.layout.get(comp_id)
        if comp is None:
            raise NotFound("unknown_compartment", f"no compartment {comp_id!r}")
        return comp


def _take_out(comp_id: str) -> str:
    """What to do with a compartment whose parcel is recorded elsewhere."""
    return f": take out what is in {comp_id}, then run `lockerctl empty {comp_id}`"


def _printed_id(name: str) -> bool:
    """Whether ``name`` is a parcel id exactly as ``lockerctl parcels list`` prints it."""
    return name.isascii() and name.isdecimal() and len(name) < 19 and str(int(name)) == name
