"""The ``parcels`` rows: expected, stored, expired and gone parcels, and their pickup notices."""

from __future__ import annotations

import sqlite3
from typing import Any, cast

from lockerd import codes
from lockerd import custody as rules
from lockerd.domain import Event, Parcel
from lockerd.errors import FlowError, Refused, StoreError
from lockerd.store._context import Context
from lockerd.store.records import (
    Collectable,
    ParcelRecord,
    PickupCode,
    PickupNotice,
    UnlockIntent,
)

#: The length of every code issued before parcels recorded theirs (the old fixed default).
LEGACY_CODE_LENGTH = 8


class ParcelRepo:
    """Parcel rows: reads, announcements from the back office, deadlines."""

    def __init__(self, context: Context):
        self._c = context

    def get(self, parcel_id: int) -> ParcelRecord | None:
        row = self._c.conn.execute("SELECT * FROM parcels WHERE id = ?", (parcel_id,)).fetchone()
        return None if row is None else ParcelRecord.of(row)

    def all(self, state: Parcel | None = None) -> list[ParcelRecord]:
        sql, args = "SELECT * FROM parcels", cast(tuple[str, ...], ())
        if state is not None:
            sql, args = sql + " WHERE state = ?", (str(state),)
        return [ParcelRecord.of(r) for r in self._c.conn.execute(sql + " ORDER BY id", args)]

    def newest_id(self, barcode: str) -> int | None:
        """The id of the newest parcel with ``barcode``."""
        row = self._c.conn.execute(
            "SELECT id FROM parcels WHERE barcode = ? ORDER BY id DESC LIMIT 1", (barcode,)
        ).fetchone()
        return None if row is None else int(row[0])

    def live(self, conn: sqlite3.Connection, barcode: str) -> Any:
        """The expected, stored or expired parcel with ``barcode`` (its id, state and
        compartment), or None."""
        return conn.execute(
            "SELECT id, state, compartment_id FROM parcels WHERE barcode = ? AND state IN"
            " ('expected','stored','expired')",
            (barcode,),
        ).fetchone()

    def notices(self) -> list[PickupNotice]:
        """Pickup codes waiting to be delivered, unsealed, oldest first."""
        rows = self._c.conn.execute(
            "SELECT n.parcel_id, n.seq, n.code, p.barcode, p.recipient, p.compartment_id,"
            " p.pickup_by, p.pickup_group FROM pickup_notices n JOIN parcels p"
            " ON p.id = n.parcel_id ORDER BY n.seq"
        ).fetchall()
        unseal = self._c.key.unseal
        return [PickupNotice(r[0], r[1], unseal(r[2], r[0]), *r[3:]) for r in rows]

    def expected_size(self, barcode: str) -> str | None:
        """The announced size of an expected parcel; refuses a barcode already in the locker."""
        row = self._c.conn.execute(
            "SELECT state, size FROM parcels WHERE barcode = ? AND state IN ('expected','stored',"
            "'expired')",
            (barcode,),
        ).fetchone()
        if row is None:
            return None
        if row[0] != Parcel.EXPECTED:
            raise FlowError("already_stored", f"parcel {barcode} is already in the locker")
        return str(row[1]) if row[1] else None

    def code_lengths(self) -> list[int]:
        """The pickup-code lengths the keypad takes: the configured one, and any that a
        parcel still in the locker was issued with (a length changed since, by an
        upgrade that derives it, a grown bank or another throttle). A code from before
        lengths were recorded counts as the old default's 8 digits."""
        rows = self._c.conn.execute(
            "SELECT DISTINCT code_length FROM parcels"
            " WHERE state IN ('stored','expired') AND code_hmac IS NOT NULL"
        ).fetchall()
        lengths = {self._c.config.pickup.code_length}
        lengths.update(LEGACY_CODE_LENGTH if r[0] is None else int(r[0]) for r in rows)
        return sorted(lengths)

    def collectable(self, carrier: str | None = None) -> list[Collectable]:
        """Expired parcels still in the locker, for a courier with the right to collect
        (of ``carrier``: only the parcels its couriers brought, or nobody's carrier's)."""
        rows = self._c.conn.execute(
            "SELECT id, barcode, compartment_id, pickup_by FROM parcels WHERE state = 'expired'"
            " AND (? IS NULL OR COALESCE(carrier, '') IN ('', ?)) ORDER BY pickup_by",
            (carrier, carrier),
        ).fetchall()
        return [Collectable(*r) for r in rows]

    def expire_due(self) -> list[int]:
        """Mark stored parcels past their pickup deadline as expired."""
        now = self._c.clock.time()
        with self._c.change() as conn:
            due = conn.execute(
                "SELECT id, barcode, compartment_id FROM parcels WHERE state = 'stored'"
                " AND pickup_by <= ?",
                (now,),
            ).fetchall()
            for parcel in due:
                conn.execute(
                    "UPDATE parcels SET state = 'expired', updated_at = ? WHERE id = ?",
                    (now, parcel[0]),
                )
                conn.execute("DELETE FROM pickup_notices WHERE parcel_id = ?", (parcel[0],))
                self._c.event(
                    Event.PARCEL_EXPIRED,
                    {"parcel": parcel[0], "barcode": parcel[1], "compartment": parcel[2]},
                )
        return [p[0] for p in due]

    # -- inside a transaction -------------------------------------------------

    def expect(
        self,
        conn: sqlite3.Connection,
        barcode: str,
        size: str | None,
        recipient: str,
        hold_hours: float | None = None,
        *,
        group: str | None = None,
    ) -> None:
        now = self._c.clock.time()
        cursor = conn.execute(
            "INSERT INTO parcels (barcode, size, recipient, hold_hours, pickup_group, state,"
            " created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'expected', ?, ?)",
            (barcode, size, recipient, hold_hours, group, now, now),
        )
        self._c.event(
            Event.PARCEL_EXPECTED,
            {"parcel": cursor.lastrowid, "barcode": barcode, "size": size},
        )

    def announce(
        self,
        conn: sqlite3.Connection,
        barcode: str,
        size: str | None,
        recipient: str,
        hold_hours: float | None,
        *,
        group: str | None = None,
    ) -> None:
        """The back office announces a parcel, or announces an expected one anew;
        ``group``: its pickup group (one recipient's parcels, collected with one code)."""
        order = self._c.config.size_order
        if size is not None and size not in order:
            raise Refused(f"no size {size!r} here ({', '.join(order)})")
        row = self.live(conn, barcode)
        if row is not None and row["state"] != Parcel.EXPECTED:
            raise Refused(f"parcel {barcode} is already in the locker")
        if row is None:
            self.expect(conn, barcode, size, recipient, hold_hours, group=group)
            return
        conn.execute(
            "UPDATE parcels SET size = ?, recipient = ?, hold_hours = ?, pickup_group = ?,"
            " updated_at = ? WHERE id = ?",
            (size, recipient, hold_hours, group, self._c.clock.time(), row["id"]),
        )
        self._c.event(
            Event.PARCEL_EXPECTED,
            {"parcel": row["id"], "barcode": barcode, "size": size, "updated": True},
        )

    def cancel(self, conn: sqlite3.Connection, barcode: str) -> None:
        """The back office cancels an expected parcel (only expected ones cancel)."""
        row = self.live(conn, barcode)
        if row is None or row["state"] != Parcel.EXPECTED:
            raise Refused(f"no expected parcel {barcode} (only expected ones cancel)")
        conn.execute(
            "UPDATE parcels SET state = 'cancelled', updated_at = ? WHERE id = ?",
            (self._c.clock.time(), row["id"]),
        )
        self._c.event(Event.PARCEL_CANCELLED, {"parcel": row["id"], "barcode": barcode})

    def extend(self, conn: sqlite3.Connection, barcode: str, pickup_by: float) -> None:
        """A new pickup deadline for a parcel in the locker; a future one stores it again."""
        row = self.live(conn, barcode)
        if row is None or row["state"] == Parcel.EXPECTED:
            raise Refused(f"parcel {barcode} is not in the locker")
        now = self._c.clock.time()
        state = rules.extended(pickup_by, now, Parcel(row["state"]))
        conn.execute(
            "UPDATE parcels SET pickup_by = ?, state = ?, updated_at = ? WHERE id = ?",
            (pickup_by, state, now, row["id"]),
        )
        self._c.event(
            Event.PARCEL_EXTENDED,
            {"parcel": row["id"], "barcode": barcode, "pickup_by": pickup_by, "state": str(state)},
        )

    def draw_code(self) -> PickupCode:
        """A candidate pickup code and its HMAC: Python work done before the transaction
        that stores the parcel (:meth:`store` checks it is unused, inside)."""
        code = codes.new_pickup_code(self._c.config.pickup.code_length)
        return PickupCode(code, self._c.key.digest("pickup", code))

    def store(self, conn: sqlite3.Connection, intent: UnlockIntent, drawn: PickupCode) -> int:
        """The drop-off's parcel is in: stored with a new pickup code (``drawn``, unless
        another parcel in the locker has it) and its notice, recording the carrier of the
        courier who brought it."""
        now = self._c.clock.time()
        pickup = self._unique_code(conn, drawn)
        expected = conn.execute(
            "SELECT id, recipient, hold_hours FROM parcels WHERE barcode = ? AND state = 'expected'"
            " AND state IN ('expected','stored','expired')",  # the index parcels_live_barcode
            (intent.barcode,),
        ).fetchone()
        hours = expected["hold_hours"] if expected is not None and expected["hold_hours"] else None
        pickup_by = now + (hours or self._c.config.pickup.hold_hours) * 3600
        fields: tuple[Any, ...] = (intent.actor, intent.compartment_id, pickup.digest)
        fields += (len(pickup.code), intent.actor, pickup_by, now, now)
        parcel_id = self._write_stored(conn, intent, expected, fields)
        seq = self._c.event(
            Event.PARCEL_STORED,
            {
                "parcel": parcel_id,
                "barcode": intent.barcode,
                "compartment": intent.compartment_id,
                "size": intent.size,
                "recipient": "" if expected is None else expected[1],
                "courier": intent.actor,
                "pickup_by": pickup_by,
            },
        )
        if self._c.keep_notices:  # someone delivers it: kept, sealed, until they have it
            conn.execute(
                "INSERT INTO pickup_notices (parcel_id, seq, code) VALUES (?, ?, ?)",
                (parcel_id, seq, self._c.key.seal(pickup.code, parcel_id)),
            )
        return parcel_id

    def _write_stored(
        self,
        conn: sqlite3.Connection,
        intent: UnlockIntent,
        expected: sqlite3.Row | None,
        fields: tuple[Any, ...],
    ) -> int:
        """The stored parcel's row, new or the expected one's: ``fields`` are the courier
        whose carrier it records, its compartment, code HMAC, code length, courier, pickup
        deadline, stored and updated times."""
        if expected is None:
            cursor = conn.execute(
                "INSERT INTO parcels (barcode, size, state, carrier, compartment_id, code_hmac,"
                " code_length, courier_id, pickup_by, stored_at, updated_at, created_at)"
                " VALUES (?, ?, 'stored', (SELECT carrier FROM couriers WHERE id = ?),"
                " ?, ?, ?, ?, ?, ?, ?, ?)",
                (intent.barcode, intent.size, *fields, fields[-1]),
            )
            return int(cursor.lastrowid or 0)
        conn.execute(
            "UPDATE parcels SET state = 'stored', carrier = (SELECT carrier FROM couriers"
            " WHERE id = ?), compartment_id = ?, code_hmac = ?, code_length = ?, courier_id = ?,"
            " pickup_by = ?, stored_at = ?, updated_at = ? WHERE id = ?",
            (*fields, expected[0]),
        )
        return int(expected[0])

    def _unique_code(self, conn: sqlite3.Connection, drawn: PickupCode) -> PickupCode:
        """``drawn``, or the first of up to 99 more draws no parcel in the locker has."""
        for _ in range(100):
            taken = conn.execute(
                "SELECT 1 FROM parcels WHERE code_hmac = ? AND state IN ('stored','expired')",
                (drawn.digest,),
            ).fetchone()
            if not taken:
                return drawn
            drawn = self.draw_code()
        raise StoreError("could not find an unused pickup code; code_length is too short")

    def close(self, conn: sqlite3.Connection, parcel_id: int | None, state: Parcel) -> None:
        """The parcel left the locker (collected or returned): its notice goes."""
        now = self._c.clock.time()
        conn.execute(
            "UPDATE parcels SET state = ?, closed_at = ?, updated_at = ? WHERE id = ?",
            (state, now, now, parcel_id),
        )
        conn.execute("DELETE FROM pickup_notices WHERE parcel_id = ?", (parcel_id,))
