"""The locker's durable state: opening it, setting it up, and reconciling it after a start.

:class:`Store` brings together the custody and access operations; every
operation is a single transaction with its journal events.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lockerd import codes
from lockerd.clock import Clock
from lockerd.config import Config
from lockerd.config.schema import DemoSection
from lockerd.domain import LIVE_INTENTS, Comp, Door, Event, Intent
from lockerd.errors import StoreError
from lockerd.store._db import Database
from lockerd.store._files import private_key
from lockerd.store.access import Access
from lockerd.store.technician import ServiceStore


class Store(ServiceStore, Access):
    """The locker's durable state."""

    @classmethod
    def open(cls, config: Config, clock: Clock, *, notices: bool | None = None) -> Store:
        """Open (or create) the database and device key, and check they belong together.

        ``notices``: keep pickup codes (sealed) until delivered; by default only
        when someone delivers them, a back office (``sync.url``) or the demo page.
        """
        db = Database(config.database_path)
        holds_codes = db.conn.execute(
            "SELECT EXISTS (SELECT 1 FROM parcels WHERE code_hmac IS NOT NULL)"
            " OR EXISTS (SELECT 1 FROM couriers)"
        ).fetchone()[0]
        key = codes.DeviceKey.load(config.key_path, create=not holds_codes)
        private_key(config.key_path)
        store = cls(db, key, config, clock)
        store._check_key_fingerprint()
        if notices is None:
            notices = bool(config.sync.url) or config.kiosk.demo
        store.keep_notices = notices
        store._seal_old_notices()
        store.anchor_audit_once()
        return store

    def _seal_old_notices(self) -> None:
        """Seal plaintext codes an older lockerd left, or drop them if nobody delivers them."""
        rows = self.db.conn.execute(
            "SELECT parcel_id, code FROM pickup_notices WHERE code NOT LIKE ?",
            (codes.SEALED + "%",),
        ).fetchall()
        if not rows and self.keep_notices:
            return
        with self.db.transaction() as conn:
            if not self.keep_notices:
                conn.execute("DELETE FROM pickup_notices")
            for parcel_id, code in rows if self.keep_notices else ():
                conn.execute(
                    "UPDATE pickup_notices SET code = ? WHERE parcel_id = ?",
                    (self.key.seal(code, parcel_id), parcel_id),
                )
        # The old pages (overwritten: secure_delete) replace the file's, and the WAL empties.
        self.db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def _check_key_fingerprint(self) -> None:
        known = self.db.meta("key_fingerprint")
        if known is None:
            with self.db.transaction() as conn:
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('key_fingerprint', ?)",
                    (self.key.fingerprint,),
                )
        elif known != self.key.fingerprint:
            raise StoreError(
                f"{self.config.key_path} is not the device key this database was made with"
            )

    # -- setup -----------------------------------------------------------

    def sync_layout(self) -> None:
        """Add configured compartments the database lacks; never drop one holding a parcel."""
        known = {r["id"]: r for r in self.compartments()}
        for comp_id, row in known.items():
            if comp_id not in self._layout and row["parcel_id"] is not None:
                raise StoreError(
                    f"compartment {comp_id} holds parcel {row['parcel_barcode']} but is not in "
                    f"{self.config.path}; put it back in the config or empty it first"
                )
        with self._change() as conn:
            for comp in self.config.compartment:
                if comp.id in known:
                    conn.execute(
                        "UPDATE compartments SET size = ? WHERE id = ?", (comp.size, comp.id)
                    )
                    continue
                conn.execute(
                    "INSERT INTO compartments (id, size, state, updated_at) VALUES (?, ?, ?, ?)",
                    (comp.id, comp.size, Comp.FREE, self.clock.time()),
                )

    def seed_demo(self, demo: DemoSection) -> None:
        """Insert the demo couriers and expected parcels that are not there yet."""
        with self._change() as conn:
            for courier in demo.couriers:
                exists = conn.execute("SELECT 1 FROM couriers WHERE id = ?", (courier.id,))
                if exists.fetchone():
                    continue
                conn.execute(
                    "INSERT INTO couriers (id, name, code_hmac, can_deliver, can_collect)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (
                        courier.id,
                        courier.name,
                        self.key.digest("courier", courier.code),
                        int("deliver" in courier.rights),
                        int("collect" in courier.rights),
                    ),
                )
                self._event(Event.COURIER_ADDED, {"courier": courier.id, "rights": courier.rights})
            for parcel in demo.expected_parcels:
                exists = conn.execute(
                    "SELECT 1 FROM parcels WHERE barcode = ?", (parcel.barcode,)
                ).fetchone()
                if not exists:
                    self._expect(conn, parcel.barcode, parcel.size, parcel.recipient)

    def reconcile(
        self, doors: Mapping[str, Door], items: Mapping[str, bool | None] | None = None
    ) -> list[dict[str, Any]]:
        """After a start: settle every compartment from the store and a fresh sensor read
        (``items``: what each item sensor sees, where there is one)."""
        items = items or {}
        changes = []
        with self._change() as conn:
            interrupted = conn.execute(
                "SELECT id, compartment_id, purpose FROM unlock_intents WHERE state IN (?, ?, ?)",
                LIVE_INTENTS,
            ).fetchall()
            pending = {row[1]: row for row in interrupted}
            conn.execute(
                "UPDATE unlock_intents SET state = ?, updated_at = ? WHERE state IN (?, ?, ?)",
                (Intent.INTERRUPTED, self.clock.time(), *LIVE_INTENTS),
            )
            for row in self.compartments():
                door = doors.get(row["id"], Door.UNKNOWN)
                target, reason = _reconciled(row, door, row["id"] in pending, items.get(row["id"]))
                self._set(conn, row["id"], target, reason, door)
                if target != row["state"]:
                    change = {"compartment": row["id"], "from": row["state"], "to": str(target)}
                    change |= {"door": str(door), "reason": reason}
                    self._event(Event.RECONCILED, change)
                    changes.append(change)
            self._event(Event.STARTED, {"changed": len(changes), "interrupted": len(interrupted)})
        return changes


def _reconciled(
    row: dict[str, Any], door: Door, interrupted: bool, item: bool | None = None
) -> tuple[Comp, str | None]:
    """Where a compartment stands after a restart (DESIGN.md invariant 3)."""
    state = Comp(row["state"])
    if state in (Comp.OUT_OF_SERVICE, Comp.NEEDS_CHECK):
        return state, row["reason"]
    if interrupted or state in (Comp.RESERVED, Comp.OPEN):
        return Comp.NEEDS_CHECK, "interrupted_unlock"
    if door == Door.OPEN:
        return Comp.NEEDS_CHECK, "open_at_start"
    if state == Comp.FREE and item:
        return Comp.NEEDS_CHECK, "item_at_start"
    if state == Comp.OCCUPIED and item is False:
        return Comp.NEEDS_CHECK, "empty_at_start"
    return state, None
