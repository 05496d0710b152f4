"""Technicians' actions and their tamper-evident audit log.

Each action commits with its audit entry and a ``service.action`` journal
event (so the back office hears of it, and of the audit chain's head, which
the event anchors). The chain is keyed with the device key and its head is
anchored in the journal (lockerd/store/audit.py), so a changed, removed or
reordered entry, or a removed tail, is found by
:meth:`ServiceStore.verify_audit`, which names where.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from lockerd.domain import Comp, Event, Parcel, Purpose
from lockerd.errors import FlowError, NotFound
from lockerd.store import audit
from lockerd.store.base import Reservation
from lockerd.store.sync import SyncStore

T = TypeVar("T")
GENESIS = audit.GENESIS


class ServiceStore(SyncStore):
    def service_open(self, comp_id: str, actor: str, origin: str, reason: str) -> Reservation:
        """Commit a technician's unlock intent (the compartment then needs a check)."""
        comp = self._service_target(comp_id)

        def effect(conn: Any) -> Reservation:
            if self.live_intent(comp.id) is not None:
                raise FlowError("door_in_progress", f"{comp.id} has a door opening or open")
            intent = self._intend(conn, comp, Purpose.SERVICE, f"technician:{actor}")
            return Reservation(intent, comp.id, Purpose.SERVICE, comp.size)

        return self._audited(actor, origin, "open", comp.id, reason, effect)

    def service_disable(self, comp_id: str, actor: str, origin: str, reason: str) -> None:
        comp = self._service_target(comp_id)

        def effect(conn: Any) -> None:
            if self.live_intent(comp.id) is not None:
                raise FlowError("door_in_progress", f"{comp.id} has a door opening or open")
            if self.compartment(comp.id)["state"] == Comp.OUT_OF_SERVICE:
                raise FlowError("out_of_service", f"{comp.id} is already out of service")
            self._set(conn, comp.id, Comp.OUT_OF_SERVICE, f"technician: {reason}")
            self._event(
                Event.OUT_OF_SERVICE, {"compartment": comp.id, "reason": f"technician: {reason}"}
            )

        self._audited(actor, origin, "disable", comp.id, reason, effect)

    def service_enable(self, comp_id: str, actor: str, origin: str, reason: str) -> str:
        comp = self._service_target(comp_id)
        actor_name = f"technician:{actor}"
        return self._audited(
            actor,
            origin,
            "enable",
            comp.id,
            reason,
            lambda conn: self._return_to_service(conn, comp.id, actor_name),
        )

    def service_extend(
        self, barcode: str, pickup_by: float, actor: str, origin: str, reason: str
    ) -> None:
        data = {"barcode": barcode, "pickup_by": pickup_by}
        self._audited(
            actor,
            origin,
            "extend",
            barcode,
            reason,
            lambda conn: self._cmd_parcel_extend(conn, data),
        )

    def service_returned(self, barcode: str, actor: str, origin: str, reason: str) -> None:
        """A technician took a parcel out by hand: it is returned, its compartment needs a check."""

        def effect(conn: Any) -> None:
            row = self._live_parcel(conn, barcode)
            if row is None or row["state"] == Parcel.EXPECTED:
                raise FlowError("not_in_locker", f"parcel {barcode} is not in the locker")
            parcel = self.parcel(row["id"])
            comp_id = parcel["compartment_id"]
            if self.live_intent(comp_id) is not None:
                raise FlowError("door_in_progress", f"{comp_id} has a door opening or open")
            now = self.clock.time()
            conn.execute(
                "UPDATE parcels SET state = 'returned', closed_at = ?, updated_at = ? WHERE id = ?",
                (now, now, row["id"]),
            )
            conn.execute("DELETE FROM pickup_notices WHERE parcel_id = ?", (row["id"],))
            self._event(
                Event.PARCEL_RETURNED,
                {"parcel": row["id"], "compartment": comp_id, "actor": f"technician:{actor}"},
            )
            self._set(conn, comp_id, Comp.NEEDS_CHECK, "parcel taken out by a technician")
            self._event(Event.NEEDS_CHECK, {"compartment": comp_id, "reason": "service"})

        self._audited(actor, origin, "returned", barcode, reason, effect)

    def parcel_by_barcode(self, barcode: str) -> dict[str, Any]:
        row = self.db.conn.execute(
            "SELECT id FROM parcels WHERE barcode = ? ORDER BY id DESC LIMIT 1", (barcode,)
        ).fetchone()
        if row is None:
            raise NotFound("unknown_parcel", f"no parcel {barcode!r}")
        return self.parcel(row[0])

    def _service_target(self, comp_id: str) -> Any:
        comp = self._layout.get(comp_id)
        if comp is None:
            raise NotFound("unknown_compartment", f"no compartment {comp_id!r}")
        return comp

    def _audited(
        self,
        actor: str,
        origin: str,
        action: str,
        target: str,
        reason: str,
        effect: Callable[[Any], T],
    ) -> T:
        if not reason.strip():
            raise FlowError("reason_required", "every service action needs a reason")
        with self._change() as conn:
            result = effect(conn)
            row = conn.execute("SELECT hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
            prev = row[0] if row else GENESIS
            seq = int(conn.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM audit").fetchone()[0])
            entry = {
                "seq": seq,
                "at": self.clock.time(),
                "actor": actor,
                "origin": origin,
                "action": action,
                "target": target,
                "reason": reason,
            }
            digest = audit.entry_mac(self.key, prev, entry)
            conn.execute(
                "INSERT INTO audit (seq, at, actor, origin, action, target, reason, prev, hash)"
                " VALUES (:seq, :at, :actor, :origin, :action, :target, :reason, :prev, :hash)",
                entry | {"prev": prev, "hash": digest},
            )
            action_event = {k: v for k, v in entry.items() if k not in ("seq", "at")}
            head = audit.anchor(self.key, conn)
            self._event(Event.SERVICE_ACTION, action_event | {"audit_hash": digest} | head)
        return result

    def anchor_audit_once(self) -> None:
        """At the first start (or the first after an upgrade): anchor the chain in the journal."""
        if self.db.meta("audit.anchored") is not None:
            return
        with self._change() as conn:
            self._event(Event.AUDIT_ANCHOR, audit.anchor(self.key, conn))
            self.db.set_meta("audit.anchored", "1")

    def audit_entries(self, limit: int = 1000) -> list[dict[str, Any]]:
        rows = self.db.conn.execute(
            "SELECT * FROM audit ORDER BY seq DESC LIMIT ?", (limit,)
        ).fetchall()
        return [dict(r) for r in reversed(rows)]

    def verify_audit(self) -> dict[str, Any]:
        """Recompute the chain and check it against every anchor in the journal."""
        return audit.verify(self.key, self.db.conn)
