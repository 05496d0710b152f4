"""The ``outbound`` rows: parcels the public sends or returns, until their carrier's
courier collects them.

A deposit cut short (the locker stopped while its door was open or opening: its
intent was interrupted at the next start) may or may not have left the parcel
inside. Until a technician says which, its send code is held and its compartment
cannot be put back in service."""

from __future__ import annotations

import sqlite3

from lockerd.domain import Event, Outbound
from lockerd.store._context import Context
from lockerd.store.records import OutboundRecord, UnlockIntent

#: An intent of outbound row ``o`` that deposited at a door nobody has looked behind.
_UNSAID = (
    "i.outbound_id = o.id AND i.purpose = 'dropoff' AND i.state = 'interrupted'"
    " AND i.checked IS NULL"
)


class OutboundRepo:
    """Outbound parcels: read, and completed by the door cycles of their intents."""

    def __init__(self, context: Context):
        self._c = context

    def get(self, outbound_id: int) -> OutboundRecord | None:
        row = self._c.conn.execute("SELECT * FROM outbound WHERE id = ?", (outbound_id,)).fetchone()
        return None if row is None else OutboundRecord.of(row)

    def all(self, state: Outbound | None = None) -> list[OutboundRecord]:
        sql, args = "SELECT * FROM outbound", ()
        if state is not None:
            sql, args = sql + " WHERE state = ?", (str(state),)  # type: ignore[assignment]
        return [OutboundRecord.of(r) for r in self._c.conn.execute(sql + " ORDER BY id", args)]

    def collectable(self, carrier: str) -> list[OutboundRecord]:
        """The parcels awaiting collection by a courier of ``carrier`` (or by any, for a
        parcel without one), oldest first."""
        rows = self._c.conn.execute(
            "SELECT * FROM outbound WHERE state = 'awaiting_collection' AND carrier IN (?, '')"
            " ORDER BY stored_at, id",
            (carrier,),
        ).fetchall()
        return [OutboundRecord.of(r) for r in rows]

    def held(self, conn: sqlite3.Connection, code_id: str) -> bool:
        """Whether the send code ``code_id`` began a deposit cut short at a door that no
        technician has looked behind yet."""
        row = conn.execute(
            "SELECT 1 FROM outbound o WHERE code_id = ? AND state = 'depositing'"
            f" AND EXISTS (SELECT 1 FROM unlock_intents i WHERE {_UNSAID})",
            (code_id,),
        ).fetchone()
        return row is not None

    # -- inside a transaction -------------------------------------------------

    def absent(self, conn: sqlite3.Connection, outbound_id: int) -> None:
        """A technician found a compartment of a deposit cut short empty: once none of
        its doors is left to look behind (and the parcel was not found behind one), the
        deposit is cancelled, and its send code deposits again."""
        now = self._c.clock.time()
        conn.execute(
            "UPDATE outbound AS o SET state = 'cancelled', updated_at = ? WHERE id = ? AND state ="
            f" 'depositing' AND NOT EXISTS (SELECT 1 FROM unlock_intents i WHERE {_UNSAID})",
            (now, outbound_id),
        )

    def removed(self, conn: sqlite3.Connection, parcel: OutboundRecord, actor: str) -> None:
        """A technician took out ``parcel``, which awaited collection (``outbound.removed``)."""
        now = self._c.clock.time()
        conn.execute(
            "UPDATE outbound SET state = 'removed', collected_by = ?, closed_at = ?,"
            " updated_at = ? WHERE id = ?",
            (actor, now, now, parcel.id),
        )
        self._c.event(
            Event.OUTBOUND_REMOVED,
            {"outbound": parcel.id, "kind": parcel.kind, "reference": parcel.reference,
             "carrier": parcel.carrier, "compartment": parcel.compartment_id, "actor": actor},
        )  # fmt: skip

    def complete(self, conn: sqlite3.Connection, intent: UnlockIntent, state: Outbound) -> None:
        """The door closed on the outbound parcel of ``intent``: deposited, or collected."""
        now, outbound_id = self._c.clock.time(), intent.outbound_id
        if state == Outbound.AWAITING_COLLECTION:
            conn.execute(
                "UPDATE outbound SET state = ?, compartment_id = ?, stored_at = ?, updated_at = ?"
                " WHERE id = ?",
                (state, intent.compartment_id, now, now, outbound_id),
            )
        else:
            conn.execute(
                "UPDATE outbound SET state = ?, collected_by = ?, closed_at = ?, updated_at = ?"
                " WHERE id = ?",
                (state, intent.actor, now, now, outbound_id),
            )
        self._journal(conn, intent, state)

    def _journal(self, conn: sqlite3.Connection, intent: UnlockIntent, state: Outbound) -> None:
        row = conn.execute(
            "SELECT kind, reference, size, carrier FROM outbound WHERE id = ?",
            (intent.outbound_id,),
        ).fetchone()
        data = {"outbound": intent.outbound_id, "kind": row[0], "reference": row[1]}
        data |= {"carrier": row[3], "compartment": intent.compartment_id}
        if state == Outbound.AWAITING_COLLECTION:
            self._c.event(Event.OUTBOUND_DEPOSITED, data | {"size": row[2]})
        else:
            self._c.event(Event.OUTBOUND_COLLECTED, data | {"courier": intent.actor})
