"""The journal and its outbox: the unsent tail the back office has not acknowledged.

The outbox is the journal after ``sync.acked_seq``; acknowledging moves that
mark and deletes the plaintext pickup codes the acknowledged events carried.
"""

from __future__ import annotations

import json
from typing import Any

from lockerd.domain import Event
from lockerd.store import audit
from lockerd.store._context import Context
from lockerd.store.records import JournalEntry

ACKED = "sync.acked_seq"
CURSOR = "sync.cursor"
PRUNED = "sync.pruned_to"
#: Wall-clock times of the MQTT transport's latest connect attempts (a JSON list).
CONNECTS = "sync.mqtt_connects"


class JournalRepo:
    """Reading the journal, the outbox's position, and events that change nothing else."""

    def __init__(self, context: Context):
        self._c = context

    def events(self, after: int = 0, limit: int = 1000) -> list[JournalEntry]:
        rows = self._c.conn.execute(
            "SELECT seq, at, type, data FROM journal WHERE seq > ? ORDER BY seq LIMIT ?",
            (after, limit),
        ).fetchall()
        return [{"seq": r[0], "at": r[1], "type": r[2], "data": json.loads(r[3])} for r in rows]

    def last_seq(self) -> int:
        """The newest journal sequence number (0 when the journal is empty)."""
        row = self._c.conn.execute("SELECT COALESCE(MAX(seq), 0) FROM journal").fetchone()
        return int(row[0])

    def record(self, kind: Event, data: dict[str, Any]) -> None:
        """Journal an event that changes no other state (heartbeat, sync and storage alarms).

        A heartbeat carries the audit chain's anchor, read here in the same
        transaction: read earlier, a technician's action committing in between
        would leave the newer event anchoring an older head.
        """
        with self._c.change() as conn:
            if kind == Event.HEARTBEAT:
                data = data | audit.anchor(self._c.key, conn)
            self._c.event(kind, data)

    def record_pulse(self, comp_id: str, intent_id: int, attempt: int) -> None:
        self.record(
            Event.LOCK_PULSED, {"compartment": comp_id, "intent": intent_id, "attempt": attempt}
        )

    def board_health(self, board: str, online: bool) -> None:
        self.record(Event.BOARD_ONLINE if online else Event.BOARD_OFFLINE, {"board": board})

    # -- the outbox -----------------------------------------------------------

    def sync_position(self) -> tuple[int, str]:
        """The highest acknowledged sequence number and the command cursor."""
        db = self._c.db
        return int(db.meta(ACKED) or 0), db.meta(CURSOR) or ""

    def held_from(self) -> int:
        """The lowest sequence number from which the journal still holds every event, up
        to the newest (the next one to be written when it holds none). Pruning leaves a
        few older anchoring events below it; the events between them are gone."""
        pruned_to = self._pruned_to()
        row = self._c.conn.execute(
            "SELECT MIN(seq) FROM journal WHERE seq > ?", (pruned_to,)
        ).fetchone()
        return int(row[0] or pruned_to + 1)

    def _pruned_to(self) -> int:
        """The highest sequence number pruning deleted (migration 8 found it for older
        databases)."""
        return int(self._c.db.meta(PRUNED) or 0)

    def unsent(self, limit: int) -> list[JournalEntry]:
        """The oldest unacknowledged events, from where the journal holds every one (a back
        office that went back below what was pruned adopts from there); ``parcel.stored``
        carries its pickup code."""
        acked = max(self.sync_position()[0], self._pruned_to())
        rows = self._c.conn.execute(
            "SELECT j.seq, j.at, j.type, j.data, n.code, n.parcel_id FROM journal j"
            " LEFT JOIN pickup_notices n ON n.seq = j.seq"
            " WHERE j.seq > ? ORDER BY j.seq LIMIT ?",
            (acked, limit),
        ).fetchall()
        events: list[JournalEntry] = []
        for seq, at, kind, data, code, parcel_id in rows:
            body = json.loads(data)
            if code is not None:
                body["pickup_code"] = self._c.key.unseal(code, parcel_id)
            events.append({"seq": seq, "type": kind, "at": at, "data": body})
        return events

    def unsent_count(self) -> int:
        acked, _ = self.sync_position()
        row = self._c.conn.execute("SELECT COUNT(*) FROM journal WHERE seq > ?", (acked,))
        return int(row.fetchone()[0])

    def acknowledge(self, acked_seq: int) -> None:
        """The back office holds every event up to ``acked_seq``: codes sent with them go."""
        db = self._c.db
        with db.transaction():
            db.set_meta(ACKED, str(acked_seq))
            db.conn.execute("DELETE FROM pickup_notices WHERE seq <= ?", (acked_seq,))

    def save_cursor(self, cursor: str) -> None:
        with self._c.db.transaction():
            self._c.db.set_meta(CURSOR, cursor)

    def recent_connects(self) -> list[float]:
        """Wall-clock times of the latest broker connect attempts, oldest first (kept
        across restarts: the per-minute cap holds through a crash loop)."""
        try:
            times = json.loads(self._c.db.meta(CONNECTS) or "[]")
        except ValueError:
            return []
        ok = isinstance(times, list) and all(isinstance(t, int | float) for t in times)
        return sorted(float(t) for t in times) if ok else []

    def note_connect(self, at: float, keep: int) -> None:
        """Add a connect attempt made at ``at`` (wall clock); keep the latest ``keep``."""
        times = [*self.recent_connects(), at][-keep:]
        with self._c.db.transaction():
            self._c.db.set_meta(CONNECTS, json.dumps(times))

    def prune_acked(self, older_than: float) -> int:
        """Delete acknowledged events written before ``older_than``; never an unsent one."""
        acked, _ = self.sync_position()
        kept = audit.kept_anchors(self._c.conn)  # AuditRepo.verify holds the chain to them
        marks = ", ".join("?" * len(kept))
        which = (
            "FROM journal WHERE seq <= ? AND at < ?"
            f" AND seq NOT IN (SELECT seq FROM pickup_notices) AND seq NOT IN ({marks})"
        )
        with self._c.db.transaction() as conn:
            highest = conn.execute(f"SELECT MAX(seq) {which}", (acked, older_than, *kept))
            pruned_to = max(self._pruned_to(), highest.fetchone()[0] or 0)
            cursor = conn.execute(f"DELETE {which}", (acked, older_than, *kept))
            self._c.db.set_meta(PRUNED, str(pruned_to))
        return int(cursor.rowcount)

    def database_bytes(self) -> int:
        """The database's size on disk, its write-ahead log included."""
        db = self._c.db
        page_size, pages = (
            db.conn.execute(f"PRAGMA {name}").fetchone()[0] for name in ("page_size", "page_count")
        )
        wal = db.path.with_name(db.path.name + "-wal")
        return int(page_size * pages) + (wal.stat().st_size if wal.exists() else 0)
