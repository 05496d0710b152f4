"""The ``compartments`` rows: what each compartment holds and its custody state."""

from __future__ import annotations

import sqlite3

from lockerd.domain import Comp, Door
from lockerd.errors import StoreError
from lockerd.store._context import Context
from lockerd.store.records import Compartment, CompartmentWithParcel


class CompartmentRepo:
    """Compartment rows, and the layout the config gives them."""

    def __init__(self, context: Context):
        self._c = context

    def all(self) -> list[CompartmentWithParcel]:
        """Every compartment with the parcel it holds (stored or expired), or the outbound
        one awaiting its carrier, by id."""
        rows = self._c.conn.execute(
            "SELECT c.*, p.id AS parcel_id, p.barcode AS parcel_barcode, p.state AS parcel_state,"
            " o.kind AS outbound_kind, o.reference AS outbound_reference,"
            " o.carrier AS outbound_carrier"
            " FROM compartments c LEFT JOIN parcels p"
            " ON p.compartment_id = c.id AND p.state IN ('stored','expired')"
            " LEFT JOIN outbound o ON o.compartment_id = c.id AND o.state = 'awaiting_collection'"
            " ORDER BY c.id"
        ).fetchall()
        return [CompartmentWithParcel.of(r) for r in rows]

    def get(self, comp_id: str) -> Compartment:
        row = self._c.conn.execute("SELECT * FROM compartments WHERE id = ?", (comp_id,)).fetchone()
        if row is None:
            raise StoreError(f"no compartment {comp_id!r}")
        return Compartment.of(row)

    def free(self, unavailable: set[str]) -> set[str]:
        """The free compartments, but for ``unavailable`` ones."""
        cursor = self._c.conn.cursor()
        cursor.row_factory = None  # plain tuples: a bank's worth of rows, read on every drop-off
        rows = cursor.execute("SELECT id FROM compartments WHERE state = 'free'").fetchall()
        return {r[0] for r in rows} - unavailable

    def holds_parcel(self, conn: sqlite3.Connection, comp_id: str) -> bool:
        row = conn.execute(
            "SELECT 1 FROM parcels WHERE compartment_id = ? AND state IN ('stored','expired')"
            " UNION ALL SELECT 1 FROM outbound WHERE compartment_id = ?"
            " AND state = 'awaiting_collection'",
            (comp_id, comp_id),
        ).fetchone()
        return row is not None

    def set(
        self,
        conn: sqlite3.Connection,
        comp_id: str,
        state: Comp,
        reason: str | None = None,
        door: Door | None = None,
    ) -> None:
        """Write a compartment's custody state (and the door, when given)."""
        conn.execute(
            "UPDATE compartments SET state = ?, reason = ?, door = COALESCE(?, door),"
            " updated_at = ? WHERE id = ?",
            (state, reason, door, self._c.clock.time(), comp_id),
        )

    def set_door(self, conn: sqlite3.Connection, comp_id: str, door: Door) -> None:
        conn.execute("UPDATE compartments SET door = ? WHERE id = ?", (door, comp_id))

    def sync_layout(self) -> None:
        """Add configured compartments the database lacks; never drop one holding a parcel."""
        config = self._c.config
        known = {r.id: r for r in self.all()}
        for comp_id, row in known.items():
            if comp_id in self._c.layout or not self.holds_parcel(self._c.conn, comp_id):
                continue
            held = "a parcel to send" if row.parcel_id is None else f"parcel {row.parcel_barcode}"
            raise StoreError(
                f"compartment {comp_id} holds {held} but is not in "
                f"{config.path}; put it back in the config or empty it first"
            )
        with self._c.change() as conn:
            for comp in config.compartment:
                if comp.id in known:
                    conn.execute(
                        "UPDATE compartments SET size = ? WHERE id = ?", (comp.size, comp.id)
                    )
                    continue
                conn.execute(
                    "INSERT INTO compartments (id, size, state, updated_at) VALUES (?, ?, ?, ?)",
                    (comp.id, comp.size, Comp.FREE, self._c.clock.time()),
                )
