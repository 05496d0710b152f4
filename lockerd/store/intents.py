"""Unlock intents: committed before any lock is energized (DESIGN.md invariant 1)."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

from lockerd import custody as rules
from lockerd.config.schema import CompartmentConfig
from lockerd.domain import LIVE_INTENTS, Comp, Event, Intent, Purpose
from lockerd.errors import Refused, StoreError
from lockerd.store._context import Context
from lockerd.store.compartments import CompartmentRepo
from lockerd.store.records import UnlockIntent

#: :data:`LIVE_INTENTS` as SQL, word for word the condition of the index intents_one_live.
LIVE_SQL = "state IN ('pending','opened','released')"


@dataclass(frozen=True)
class Reservation:
    """A committed unlock intent: the compartment may now be pulsed."""

    intent_id: int
    compartment_id: str
    purpose: Purpose
    size: str
    parcel_id: int | None = None
    barcode: str | None = None
    #: The parcel's pickup group, if the back office announced one.
    group: str | None = None


class IntentRepo:
    """The ``unlock_intents`` rows, and the compartment state each one moves."""

    def __init__(self, context: Context, compartments: CompartmentRepo):
        self._c = context
        self._compartments = compartments

    def get(self, intent_id: int) -> UnlockIntent | None:
        row = self._c.conn.execute(
            "SELECT * FROM unlock_intents WHERE id = ?", (intent_id,)
        ).fetchone()
        return None if row is None else UnlockIntent.of(row)

    def is_pending(self, comp_id: str, intent_id: int) -> bool:
        """True if ``intent_id`` is committed for ``comp_id`` and its door has not opened yet."""
        row = self._c.conn.execute(
            "SELECT 1 FROM unlock_intents WHERE id = ? AND compartment_id = ? AND state = ?",
            (intent_id, comp_id, Intent.PENDING),
        ).fetchone()
        return row is not None

    def live(self, comp_id: str) -> UnlockIntent | None:
        # The states written out, as in the partial index intents_one_live: SQLite uses a
        # partial index only where the query repeats its condition (bound values do not).
        row = self._c.conn.execute(
            f"SELECT * FROM unlock_intents WHERE compartment_id = ? AND {LIVE_SQL}", (comp_id,)
        ).fetchone()
        return None if row is None else UnlockIntent.of(row)

    def dropping_off(self, conn: sqlite3.Connection, barcode: str) -> bool:
        """Whether a drop-off of ``barcode`` is under way (its door not yet closed)."""
        # Among the live intents only (the index intents_one_live), not all finished ones.
        row = conn.execute(
            "SELECT 1 FROM unlock_intents WHERE barcode = ? AND purpose = 'dropoff'"
            f" AND {LIVE_SQL} AND state != 'released'",
            (barcode,),
        ).fetchone()
        return row is not None

    def require_live(self, intent_id: int) -> UnlockIntent:
        intent = self.get(intent_id)
        if intent is None or intent.state not in LIVE_INTENTS:
            state = None if intent is None else str(intent.state)
            raise StoreError(f"unlock intent {intent_id} is not live ({state})")
        return intent

    # -- inside a transaction -------------------------------------------------

    def create(
        self,
        conn: sqlite3.Connection,
        comp: CompartmentConfig,
        purpose: Purpose,
        actor: str,
        *,
        barcode: str | None = None,
        size: str | None = None,
        parcel_id: int | None = None,
        outbound_id: int | None = None,
    ) -> int:
        """Commit an unlock intent; the compartment becomes reserved."""
        now = self._c.clock.time()
        cursor = conn.execute(
            "INSERT INTO unlock_intents (compartment_id, purpose, state, parcel_id, barcode, size,"
            " actor, created_at, updated_at, outbound_id) VALUES (?, ?, 'pending', ?, ?, ?, ?, ?,"
            " ?, ?)",
            (comp.id, purpose, parcel_id, barcode, size, actor, now, now, outbound_id),
        )
        self._compartments.set(conn, comp.id, Comp.RESERVED)
        intent_id = int(cursor.lastrowid or 0)
        self._c.event(
            Event.UNLOCK_INTENT,
            {"intent": intent_id, "compartment": comp.id, "purpose": str(purpose), "actor": actor},
        )
        return intent_id

    def finish(
        self, conn: sqlite3.Connection, intent_id: int, state: Intent, parcel_id: int | None = None
    ) -> None:
        """The intent's new state (and the parcel it stored, when given)."""
        conn.execute(
            "UPDATE unlock_intents SET state = ?, parcel_id = COALESCE(?, parcel_id),"
            " updated_at = ? WHERE id = ?",
            (state, parcel_id, self._c.clock.time(), intent_id),
        )

    def interrupt_live(self, conn: sqlite3.Connection) -> list[str]:
        """Every live intent is interrupted now; the compartments they were for."""
        rows = conn.execute(
            "SELECT compartment_id FROM unlock_intents WHERE state IN (?, ?, ?)", LIVE_INTENTS
        ).fetchall()
        conn.execute(
            "UPDATE unlock_intents SET state = ?, updated_at = ? WHERE state IN (?, ?, ?)",
            (Intent.INTERRUPTED, self._c.clock.time(), *LIVE_INTENTS),
        )
        return [row[0] for row in rows]

    def cut_short_at(self, conn: sqlite3.Connection, comp_id: str) -> UnlockIntent | None:
        """The deposit cut short at ``comp_id`` that nobody has looked into yet, if any:
        the newest intent there that could move a parcel in or out, where that is one
        (:func:`lockerd.custody.cut_short`). A technician's or remote open since is no
        answer: it moves no parcel in the store."""
        row = conn.execute(
            "SELECT * FROM unlock_intents WHERE compartment_id = ?"
            " AND purpose NOT IN ('service','remote') ORDER BY id DESC LIMIT 1",
            (comp_id,),
        ).fetchone()
        intent = None if row is None else UnlockIntent.of(row)
        if intent is None or not rules.cut_short(intent.purpose, intent.state, intent.checked):
            return None
        return intent

    def checked(
        self, conn: sqlite3.Connection, intent_id: int, found: str, parcel_id: int | None = None
    ) -> None:
        """A technician looked behind a deposit cut short: ``found`` (the parcel it stored,
        if it stored one) or ``empty``."""
        conn.execute(
            "UPDATE unlock_intents SET checked = ?, parcel_id = COALESCE(?, parcel_id)"
            " WHERE id = ?",
            (found, parcel_id, intent_id),
        )

    def last_open_seq(self) -> int:
        """The highest ``open_seq`` a remote open has used here (0: none)."""
        row = self._c.conn.execute("SELECT MAX(open_seq) FROM remote_open_seqs").fetchone()
        return int(row[0] or 0)

    def reserve_remote(
        self, conn: sqlite3.Connection, command_id: str, comp: CompartmentConfig, open_seq: int
    ) -> Reservation:
        """Commit the unlock intent of a checked, signed remote open; its number once only."""
        used = conn.execute(
            "SELECT command_id FROM remote_open_seqs WHERE open_seq = ?", (open_seq,)
        ).fetchone()
        if used is not None:
            raise Refused(f"open_seq {open_seq} was used by command {used[0]}")
        if self.live(comp.id) is not None:
            raise Refused(f"{comp.id} has a door opening or open")
        conn.execute(
            "INSERT INTO remote_open_seqs (open_seq, command_id, used_at) VALUES (?, ?, ?)",
            (open_seq, command_id, self._c.clock.time()),
        )
        intent = self.create(conn, comp, Purpose.REMOTE, f"remote:{command_id}")
        return Reservation(intent, comp.id, Purpose.REMOTE, comp.size)


def parcel_door(
    parcel_id: int | None, barcode: str | None, compartment_id: str, intent_id: int
) -> dict[str, Any]:
    """The data of an event about a parcel's door under an intent (``parcel.stuck``,
    ``pickup.reopened``)."""
    return {
        "parcel": parcel_id,
        "barcode": barcode,
        "compartment": compartment_id,
        "intent": intent_id,
    }
