"""The ``couriers`` rows: who may deliver and collect, by the HMAC of their code."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from lockerd.domain import Event
from lockerd.errors import Refused
from lockerd.store._context import Context


class CourierRepo:
    """Courier rights, set by the back office (or the demo config)."""

    def __init__(self, context: Context):
        self._c = context

    def add(
        self,
        conn: sqlite3.Connection,
        courier_id: str,
        name: str,
        code: str,
        rights: Sequence[str],
        carrier: str = "",
    ) -> bool:
        """Add a courier unless one has that id already; whether it was added."""
        if conn.execute("SELECT 1 FROM couriers WHERE id = ?", (courier_id,)).fetchone():
            return False
        digest = self._c.key.digest("courier", code)
        can = (int("deliver" in rights), int("collect" in rights))
        conn.execute(
            "INSERT INTO couriers (id, name, code_hmac, can_deliver, can_collect, carrier)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (courier_id, name, digest, *can, carrier),
        )
        self._added(Event.COURIER_ADDED, courier_id, rights, carrier)
        return True

    def upsert(
        self,
        conn: sqlite3.Connection,
        courier_id: str,
        name: str,
        code: str,
        rights: list[str],
        carrier: str = "",
    ) -> None:
        """Add a courier, or set an existing one's name, code, rights and carrier (and
        reactivate it)."""
        digest = self._c.key.digest("courier", code)
        other = conn.execute(
            "SELECT id FROM couriers WHERE code_hmac = ? AND id != ?", (digest, courier_id)
        ).fetchone()
        if other is not None:
            raise Refused("another courier has that code")
        known = conn.execute("SELECT 1 FROM couriers WHERE id = ?", (courier_id,)).fetchone()
        can = (int("deliver" in rights), int("collect" in rights))
        values = (name, digest, *can, carrier, courier_id)
        if known:
            conn.execute(
                "UPDATE couriers SET name = ?, code_hmac = ?, can_deliver = ?, can_collect = ?,"
                " carrier = ?, active = 1 WHERE id = ?",
                values,
            )
        else:
            conn.execute(
                "INSERT INTO couriers (name, code_hmac, can_deliver, can_collect, carrier, id)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                values,
            )
        self._added(
            Event.COURIER_UPDATED if known else Event.COURIER_ADDED, courier_id, rights, carrier
        )

    def _added(self, kind: Event, courier_id: str, rights: Sequence[str], carrier: str) -> None:
        """Journal a courier added or changed (its carrier, when it has one)."""
        data: dict[str, object] = {"courier": courier_id, "rights": rights}
        self._c.event(kind, data | ({"carrier": carrier} if carrier else {}))

    def revoke(self, conn: sqlite3.Connection, courier_id: str) -> None:
        cursor = conn.execute(
            "UPDATE couriers SET active = 0 WHERE id = ? AND active", (courier_id,)
        )
        if cursor.rowcount == 0:
            raise Refused(f"no active courier {courier_id!r}")
        self._c.event(Event.COURIER_REVOKED, {"courier": courier_id})
