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
from lockerd.domain import Comp, Event, Intent, Outbound, Parcel, Purpose
from lockerd.errors import FlowError, NotFound
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
            if self._intents.live(comp.id) is not None:
                raise FlowError("door_in_progress", f"{comp.id} has a door opening or open")
            intent = self._intents.create(conn, comp, Purpose.SERVICE, f"technician:{actor}")
            return Reservation(intent, comp.id, Purpose.SERVICE, comp.size)

        return self._audited("open", comp.id, (actor, origin, reason), effect)

    def disable(self, comp_id: str, actor: str, origin: str, reason: str) -> None:
        comp = self._target(comp_id)

        def effect(conn: sqlite3.Connection) -> None:
            if self._intents.live(comp.id) is not None:
                raise FlowError("door_in_progress", f"{comp.id} has a door opening or open")
            if self._compartments.get(comp.id).state == Comp.OUT_OF_SERVICE:
                raise FlowError("out_of_service", f"{comp.id} is already out of service")
            self._custody.take_out_of_service(conn, comp.id, f"technician: {reason}")

        self._audited("disable", comp.id, (actor, origin, reason), effect)

    def enable(self, comp_id: str, actor: str, origin: str, reason: str) -> str:
        comp = self._target(comp_id)

        def effect(conn: sqlite3.Connection) -> str:
            cut_short = self._outbound.cut_short_at(conn, comp.id)
            if cut_short is not None:
                raise FlowError(
                    "deposit_unresolved",
                    rules.deposit_unresolved(comp.id, cut_short.id, cut_short.reference)
                    + f": look inside, then run `lockerctl outbound found {cut_short.id}` if it"
                    f" is there, or `lockerctl outbound absent {cut_short.id}` if not",
                    outbound=cut_short.id,
                )  # fmt: skip
            return self._custody.return_in(conn, comp.id, f"technician:{actor}")

        return self._audited("enable", comp.id, (actor, origin, reason), effect)

    def extend(self, barcode: str, pickup_by: float, actor: str, origin: str, reason: str) -> None:
        def effect(conn: sqlite3.Connection) -> None:
            self._parcels.extend(conn, barcode, pickup_by)

        self._audited("extend", barcode, (actor, origin, reason), effect)

    def returned(self, barcode: str, actor: str, origin: str, reason: str) -> None:
        """A technician took a parcel out by hand: it is returned, its compartment needs a check."""

        def effect(conn: sqlite3.Connection) -> None:
            row = self._parcels.live(conn, barcode)
            if row is None or row["state"] == Parcel.EXPECTED:
                raise FlowError("not_in_locker", f"parcel {barcode} is not in the locker")
            comp_id = row["compartment_id"]
            if self._intents.live(comp_id) is not None:
                raise FlowError("door_in_progress", f"{comp_id} has a door opening or open")
            self._parcels.close(conn, row["id"], Parcel.RETURNED)
            self._c.event(
                Event.PARCEL_RETURNED,
                {"parcel": row["id"], "compartment": comp_id, "actor": f"technician:{actor}"},
            )
            self._taken_out(conn, comp_id)

        self._audited("returned", barcode, (actor, origin, reason), effect)

    def outbound_found(self, outbound_id: int, actor: str, origin: str, reason: str) -> None:
        """The parcel of a deposit cut short is inside its compartment: it awaits
        collection (the compartment is then checked and enabled, and reads occupied)."""

        def effect(conn: sqlite3.Connection) -> None:
            intent = self._cut_short(conn, outbound_id)
            self._outbound.complete(conn, intent, Outbound.AWAITING_COLLECTION)

        self._audited("outbound_found", f"outbound {outbound_id}", (actor, origin, reason), effect)

    def outbound_absent(self, outbound_id: int, actor: str, origin: str, reason: str) -> None:
        """The compartment of a deposit cut short is empty: the deposit is cancelled and
        its send code deposits again."""

        def effect(conn: sqlite3.Connection) -> None:
            self._cut_short(conn, outbound_id)
            self._outbound.absent(conn, outbound_id)

        self._audited("outbound_absent", f"outbound {outbound_id}", (actor, origin, reason), effect)

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
            if self._intents.live(comp_id) is not None:
                raise FlowError("door_in_progress", f"{comp_id} has a door opening or open")
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

    def _cut_short(self, conn: sqlite3.Connection, outbound_id: int) -> UnlockIntent:
        """The interrupted intent of outbound parcel ``outbound_id``'s deposit cut short
        (NotFound, or FlowError where it is not one)."""
        parcel = self.outbound_parcel(outbound_id)
        intent = self._outbound.last_intent(conn, outbound_id)
        if (
            parcel.state != Outbound.DEPOSITING
            or intent is None
            or intent.state != Intent.INTERRUPTED
        ):
            raise FlowError(
                "not_cut_short",
                f"outbound parcel {outbound_id} is {parcel.state}, not a deposit cut short",
            )
        return intent

    def _taken_out(self, conn: sqlite3.Connection, comp_id: str) -> None:
        """A technician took a parcel out of ``comp_id`` by hand: it needs a check."""
        self._compartments.set(conn, comp_id, Comp.NEEDS_CHECK, "parcel taken out by a technician")
        self._c.event(Event.NEEDS_CHECK, {"compartment": comp_id, "reason": "service"})

    def parcel(self, barcode: str) -> ParcelRecord:
        """The newest parcel with ``barcode``."""
        parcel_id = self._parcels.newest_id(barcode)
        parcel = None if parcel_id is None else self._parcels.get(parcel_id)
        if parcel is None:
            raise NotFound("unknown_parcel", f"no parcel {barcode!r}")
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
