"""The store's side of sync: the outbox (the journal's unsent tail) and the command inbox.

The outbox is the journal after ``sync.acked_seq``; acknowledging moves that
mark and deletes the plaintext pickup codes the acknowledged events carried.
Every command is recorded in the inbox in the same transaction as its effect
and its ``command.applied`` or ``command.rejected`` event, so a command
delivered twice is applied once.
"""

from __future__ import annotations

import json
from typing import Any

from lockerd.domain import Comp, Event, Parcel, Purpose
from lockerd.errors import FlowError
from lockerd.store import audit
from lockerd.store.base import JournalEntry, Reservation
from lockerd.store.custody import Custody
from lockerd.sync.commands import Command

ACKED = "sync.acked_seq"
CURSOR = "sync.cursor"
PRUNED = "sync.pruned_to"


class Refused(FlowError):
    """A valid command this locker cannot apply now; the reason goes back to the back office."""

    def __init__(self, reason: str):
        super().__init__("command_refused", reason)


class SyncStore(Custody):
    # -- outbox --------------------------------------------------------------

    def sync_position(self) -> tuple[int, str]:
        """The highest acknowledged sequence number and the command cursor."""
        return int(self.db.meta(ACKED) or 0), self.db.meta(CURSOR) or ""

    def held_from(self) -> int:
        """The lowest sequence number from which the journal still holds every event, up
        to the newest (0: the journal is empty). Pruning leaves a few older anchoring
        events below it; the events between them are gone."""
        row = self.db.conn.execute(
            "SELECT MIN(seq) FROM journal WHERE seq > ?", (self._pruned_to(),)
        ).fetchone()
        return int(row[0] or 0)

    def _pruned_to(self) -> int:
        """The highest sequence number pruning deleted (migration 8 found it for older
        databases)."""
        return int(self.db.meta(PRUNED) or 0)

    def last_open_seq(self) -> int:
        """The highest ``open_seq`` a remote open has used here (0: none)."""
        row = self.db.conn.execute("SELECT MAX(open_seq) FROM remote_open_seqs").fetchone()
        return int(row[0] or 0)

    def unsent(self, limit: int) -> list[JournalEntry]:
        """The oldest unacknowledged events, from where the journal holds every one (a back
        office that went back below what was pruned adopts from there); ``parcel.stored``
        carries its pickup code."""
        acked = max(self.sync_position()[0], self.held_from() - 1)
        rows = self.db.conn.execute(
            "SELECT j.seq, j.at, j.type, j.data, n.code, n.parcel_id FROM journal j"
            " LEFT JOIN pickup_notices n ON n.seq = j.seq"
            " WHERE j.seq > ? ORDER BY j.seq LIMIT ?",
            (acked, limit),
        ).fetchall()
        events = []
        for seq, at, kind, data, code, parcel_id in rows:
            body = json.loads(data)
            if code is not None:
                body["pickup_code"] = self.key.unseal(code, parcel_id)
            events.append({"seq": seq, "type": kind, "at": at, "data": body})
        return events

    def unsent_count(self) -> int:
        acked, _ = self.sync_position()
        row = self.db.conn.execute("SELECT COUNT(*) FROM journal WHERE seq > ?", (acked,))
        return int(row.fetchone()[0])

    def acknowledge(self, acked_seq: int) -> None:
        """The back office holds every event up to ``acked_seq``: codes sent with them go."""
        with self.db.transaction():
            self.db.set_meta(ACKED, str(acked_seq))
            self.db.conn.execute("DELETE FROM pickup_notices WHERE seq <= ?", (acked_seq,))

    def save_cursor(self, cursor: str) -> None:
        with self.db.transaction():
            self.db.set_meta(CURSOR, cursor)

    def prune_acked(self, older_than: float) -> int:
        """Delete acknowledged events written before ``older_than``; never an unsent one."""
        acked, _ = self.sync_position()
        kept = audit.kept_anchors(self.db.conn)  # verify_audit holds the chain to them
        marks = ", ".join("?" * len(kept))
        which = (
            "FROM journal WHERE seq <= ? AND at < ?"
            f" AND seq NOT IN (SELECT seq FROM pickup_notices) AND seq NOT IN ({marks})"
        )
        with self.db.transaction() as conn:
            pruned_to = self._pruned_to()
            highest = conn.execute(f"SELECT MAX(seq) {which}", (acked, older_than, *kept))
            pruned_to = max(pruned_to, highest.fetchone()[0] or 0)
            cursor = conn.execute(f"DELETE {which}", (acked, older_than, *kept))
            self.db.set_meta(PRUNED, str(pruned_to))
        return int(cursor.rowcount)

    def database_bytes(self) -> int:
        """The database's size on disk, its write-ahead log included."""
        page_size, pages = (
            self.db.conn.execute(f"PRAGMA {name}").fetchone()[0]
            for name in ("page_size", "page_count")
        )
        wal = self.db.path.with_name(self.db.path.name + "-wal")
        return int(page_size * pages) + (wal.stat().st_size if wal.exists() else 0)

    def record(self, kind: Event, data: dict[str, Any]) -> None:
        """Journal an event that changes no other state (heartbeat, sync and storage alarms).

        A heartbeat carries the audit chain's anchor, read here in the same
        transaction: read earlier, a technician's action committing in between
        would leave the newer event anchoring an older head.
        """
        with self._change() as conn:
            if kind == Event.HEARTBEAT:
                data = data | audit.anchor(self.key, conn)
            self._event(kind, data)

    # -- inbox ----------------------------------------------------------------

    def seen_command(self, command_id: str) -> bool:
        row = self.db.conn.execute("SELECT 1 FROM inbox WHERE id = ?", (command_id,)).fetchone()
        return row is not None

    def reject_command(self, command_id: str, kind: str, reason: str) -> bool:
        """Record a refusal (bad fields, signature, expiry); False if the id was seen before."""
        with self._change() as conn:
            if self.seen_command(command_id):
                return False
            self._close_command(conn, command_id, kind, "rejected", reason)
        return True

    def apply_command(self, command: Command) -> str:
        """Apply a data command once: ``applied``, ``rejected`` or ``duplicate``."""
        handler = getattr(self, "_cmd_" + command.type.replace(".", "_"))
        return self._once(command, lambda conn: handler(conn, command.data))[0]

    def reserve_remote_open(self, command: Command) -> tuple[str, Reservation | None]:
        """Commit the unlock intent of a checked, signed remote open, once."""
        return self._once(command, lambda conn: self._remote_open(conn, command))

    def _once(self, command: Command, effect: Any) -> tuple[str, Any]:
        with self._change() as conn:
            if self.seen_command(command.id):
                return "duplicate", None
            written = len(self._written)
            conn.execute("SAVEPOINT command")
            try:
                result, reason = effect(conn), None
            except FlowError as exc:  # Refused, or a refusal of the operation it reuses
                conn.execute("ROLLBACK TO command")
                del self._written[written:]
                result, reason = None, exc.message
            conn.execute("RELEASE command")
            outcome = "applied" if reason is None else "rejected"
            self._close_command(conn, command.id, command.type, outcome, reason)
            return outcome, result

    def _close_command(
        self, conn: Any, command_id: str, kind: str, outcome: str, reason: str | None
    ) -> None:
        conn.execute(
            "INSERT INTO inbox (id, type, outcome, reason, applied_at) VALUES (?, ?, ?, ?, ?)",
            (command_id, kind, outcome, reason, self.clock.time()),
        )
        data = {"id": command_id, "type": kind}
        if outcome == "applied":
            self._event(Event.COMMAND_APPLIED, data)
        else:
            self._event(Event.COMMAND_REJECTED, data | {"reason": reason})

    # -- what each command does (inside the command's transaction) -------------

    def _live_parcel(self, conn: Any, barcode: str) -> Any:
        return conn.execute(
            "SELECT id, state FROM parcels WHERE barcode = ? AND state IN"
            " ('expected','stored','expired')",
            (barcode,),
        ).fetchone()

    def _cmd_parcel_expect(self, conn: Any, data: dict[str, Any]) -> None:
        size = data.get("size")
        if size is not None and size not in self.config.size_order:
            raise Refused(f"no size {size!r} here ({', '.join(self.config.size_order)})")
        row = self._live_parcel(conn, data["barcode"])
        if row is not None and row["state"] != Parcel.EXPECTED:
            raise Refused(f"parcel {data['barcode']} is already in the locker")
        fields = (size, data.get("recipient", ""), data.get("hold_hours"))
        if row is None:
            self._expect(conn, data["barcode"], *fields)
            return
        conn.execute(
            "UPDATE parcels SET size = ?, recipient = ?, hold_hours = ?, updated_at = ?"
            " WHERE id = ?",
            (*fields, self.clock.time(), row["id"]),
        )
        self._event(
            Event.PARCEL_EXPECTED,
            {"parcel": row["id"], "barcode": data["barcode"], "size": size, "updated": True},
        )

    def _cmd_parcel_cancel(self, conn: Any, data: dict[str, Any]) -> None:
        row = self._live_parcel(conn, data["barcode"])
        if row is None or row["state"] != Parcel.EXPECTED:
            raise Refused(f"no expected parcel {data['barcode']} (only expected ones cancel)")
        conn.execute(
            "UPDATE parcels SET state = 'cancelled', updated_at = ? WHERE id = ?",
            (self.clock.time(), row["id"]),
        )
        self._event(Event.PARCEL_CANCELLED, {"parcel": row["id"], "barcode": data["barcode"]})

    def _cmd_parcel_extend(self, conn: Any, data: dict[str, Any]) -> None:
        row = self._live_parcel(conn, data["barcode"])
        if row is None or row["state"] == Parcel.EXPECTED:
            raise Refused(f"parcel {data['barcode']} is not in the locker")
        now = self.clock.time()
        state = Parcel.STORED if data["pickup_by"] > now else row["state"]
        conn.execute(
            "UPDATE parcels SET pickup_by = ?, state = ?, updated_at = ? WHERE id = ?",
            (data["pickup_by"], state, now, row["id"]),
        )
        self._event(
            Event.PARCEL_EXTENDED,
            {
                "parcel": row["id"],
                "barcode": data["barcode"],
                "pickup_by": data["pickup_by"],
                "state": str(state),
            },
        )

    def _cmd_courier_upsert(self, conn: Any, data: dict[str, Any]) -> None:
        digest = self.key.digest("courier", data["code"])
        other = conn.execute(
            "SELECT id FROM couriers WHERE code_hmac = ? AND id != ?", (digest, data["id"])
        ).fetchone()
        if other is not None:
            raise Refused("another courier has that code")
        known = conn.execute("SELECT 1 FROM couriers WHERE id = ?", (data["id"],)).fetchone()
        values = (
            data.get("name", ""),
            digest,
            int("deliver" in data["rights"]),
            int("collect" in data["rights"]),
            data["id"],
        )
        if known:
            conn.execute(
                "UPDATE couriers SET name = ?, code_hmac = ?, can_deliver = ?, can_collect = ?,"
                " active = 1 WHERE id = ?",
                values,
            )
        else:
            conn.execute(
                "INSERT INTO couriers (name, code_hmac, can_deliver, can_collect, id)"
                " VALUES (?, ?, ?, ?, ?)",
                values,
            )
        kind = Event.COURIER_UPDATED if known else Event.COURIER_ADDED
        self._event(kind, {"courier": data["id"], "rights": data["rights"]})

    def _cmd_courier_revoke(self, conn: Any, data: dict[str, Any]) -> None:
        cursor = conn.execute(
            "UPDATE couriers SET active = 0 WHERE id = ? AND active", (data["id"],)
        )
        if cursor.rowcount == 0:
            raise Refused(f"no active courier {data['id']!r}")
        self._event(Event.COURIER_REVOKED, {"courier": data["id"]})

    def _compartment(self, comp_id: str) -> Any:
        comp = self._layout.get(comp_id)
        if comp is None:
            raise Refused(f"no compartment {comp_id!r} in this locker")
        return comp

    def _cmd_compartment_disable(self, conn: Any, data: dict[str, Any]) -> None:
        comp = self._compartment(data["compartment"])
        if self.live_intent(comp.id) is not None:
            raise Refused(f"{comp.id} has a door opening or open")
        if self.compartment(comp.id)["state"] == Comp.OUT_OF_SERVICE:
            raise Refused(f"{comp.id} is already out of service")
        reason = "remote: " + data.get("reason", "taken out by the back office")
        self._set(conn, comp.id, Comp.OUT_OF_SERVICE, reason)
        self._event(Event.OUT_OF_SERVICE, {"compartment": comp.id, "reason": reason})

    def _cmd_compartment_enable(self, conn: Any, data: dict[str, Any]) -> None:
        comp = self._compartment(data["compartment"])
        self._return_to_service(conn, comp.id, "back office")

    def _remote_open(self, conn: Any, command: Command) -> Reservation:
        comp = self._compartment(command.data["compartment"])
        used = conn.execute(
            "SELECT command_id FROM remote_open_seqs WHERE open_seq = ?",
            (command.data["open_seq"],),
        ).fetchone()
        if used is not None:
            raise Refused(f"open_seq {command.data['open_seq']} was used by command {used[0]}")
        if self.live_intent(comp.id) is not None:
            raise Refused(f"{comp.id} has a door opening or open")
        conn.execute(
            "INSERT INTO remote_open_seqs (open_seq, command_id, used_at) VALUES (?, ?, ?)",
            (command.data["open_seq"], command.id, self.clock.time()),
        )
        intent = self._intend(conn, comp, Purpose.REMOTE, f"remote:{command.id}")
        return Reservation(intent, comp.id, Purpose.REMOTE, comp.size)
