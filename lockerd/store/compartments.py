"""The ``compartments`` rows: what each compartment holds and its custody state."""

from __future__ import annotations

import sqlite3

from lockerd.config.schema import CompartmentConfig
from lockerd.custody import Choice
from lockerd.domain import Comp, Door
from lockerd.errors import StoreError
from lockerd.store._context import Context
from lockerd.store.records import Compartment, CompartmentWithParcel


class CompartmentRepo:
    """Compartment rows, and the layout the config gives them."""

    def __init__(self, context: Context):
        self._c = context
        self._choice = Choice(context.config.compartment, context.config.size_order)
        self._keep_order()

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

    def choose(
        self, size: str, prefer_low: bool, unavailable: set[str]
    ) -> CompartmentConfig | None:
        """The free compartment a parcel of ``size`` gets (:class:`lockerd.custody.Choice`),
        but for ``unavailable`` ones; None where none is.

        SQLite walks the order, kept in a table of this connection, to the first free one
        (not the bank's rows read into Python on every drop-off)."""
        fits = self._choice.candidates(size, prefer_low)
        if not fits:
            return None
        start = len(self._choice.order(prefer_low)) - len(fits)
        rows = self._c.conn.execute(
            "SELECT o.id FROM temp.choice_order o JOIN compartments c ON c.id = o.id"
            " WHERE o.low = ? AND o.pos >= ? AND c.state = 'free' ORDER BY o.pos LIMIT ?",
            (prefer_low, start, len(unavailable) + 1),
        ).fetchall()
        chosen = next((r[0] for r in rows if r[0] not in unavailable), None)
        return None if chosen is None else self._c.layout[chosen]

    def chosen_and_other(
        self, size: str, prefer_low: bool, unavailable: set[str], named: str | None = None
    ) -> tuple[CompartmentConfig | None, CompartmentConfig | None]:
        """The compartment to reserve (None: none) and the one any height would get now.
        ``named``: only that one, if it is still free and fits (the courier accepted the
        door the question named, and no other)."""
        if named is None:
            chosen = self.choose(size, prefer_low, unavailable)
        else:
            chosen = self._still_free(named, size, unavailable)
        return chosen, chosen or self.choose(size, False, unavailable)

    def _still_free(
        self, comp_id: str, size: str, unavailable: set[str]
    ) -> CompartmentConfig | None:
        comp = self._c.layout.get(comp_id)
        if comp is None or comp_id in unavailable or comp not in self._choice.candidates(size):
            return None
        row = self._c.conn.execute(
            "SELECT state FROM compartments WHERE id = ?", (comp_id,)
        ).fetchone()
        return comp if row is not None and row[0] == "free" else None

    def _keep_order(self) -> None:
        """The choice's two orders as a table of this connection (not of the database file)."""
        conn = self._c.conn
        conn.execute(
            "CREATE TEMP TABLE IF NOT EXISTS choice_order"
            " (low INTEGER, pos INTEGER, id TEXT NOT NULL, PRIMARY KEY (low, pos))"
        )
        conn.execute("DELETE FROM temp.choice_order")
        conn.executemany(
            "INSERT INTO temp.choice_order (low, pos, id) VALUES (?, ?, ?)",
            [
                (low, pos, comp.id)
                for low in (False, True)
                for pos, comp in enumerate(self._choice.order(low))
            ],
        )

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
