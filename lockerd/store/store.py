"""The locker's durable state: opening it, and the repositories it is made of.

:class:`Store` composes one repository per kind of record (compartments,
unlock intents, parcels, couriers, the journal and its outbox, the command
inbox, the audit log) and the operations over them (custody, access,
technicians' actions); every change is a single transaction with its
journal events.
"""

from __future__ import annotations

from collections.abc import Callable

from lockerd import codes
from lockerd.clock import Clock
from lockerd.config import Config
from lockerd.config.schema import CompartmentConfig, DemoSection
from lockerd.errors import StoreError
from lockerd.store._context import Context
from lockerd.store._db import Database
from lockerd.store._files import private_key
from lockerd.store.access import AccessRepo
from lockerd.store.audit import AuditRepo
from lockerd.store.compartments import CompartmentRepo
from lockerd.store.couriers import CourierRepo
from lockerd.store.credentials import Throttles
from lockerd.store.custody import CustodyRepo
from lockerd.store.inbox import InboxRepo
from lockerd.store.intents import IntentRepo
from lockerd.store.journal import JournalRepo
from lockerd.store.outbound import OutboundRepo
from lockerd.store.parcels import ParcelRepo
from lockerd.store.records import JournalEntry
from lockerd.store.sending import SendRepo
from lockerd.store.tables import Tables
from lockerd.store.technician import TechnicianRepo


class Store:
    """The locker's durable state: its repositories over one database."""

    def __init__(self, db: Database, key: codes.DeviceKey, config: Config, clock: Clock):
        self.db, self.key, self.config = db, key, config
        self.context = context = Context(db, key, config, clock)
        self.compartments = CompartmentRepo(context)
        self.intents = IntentRepo(context, self.compartments)
        self.parcels = ParcelRepo(context)
        self.couriers = CourierRepo(context)
        self.journal = JournalRepo(context)
        self.inbox = InboxRepo(context)
        self.audit = AuditRepo(context)
        self.outbound = OutboundRepo(context)
        throttles = Throttles(context)
        tables = Tables(self.compartments, self.intents, self.parcels, throttles, self.outbound)
        self.access = AccessRepo(context, tables)
        self.custody = CustodyRepo(context, tables)
        self.sending = SendRepo(context, tables)
        self.service = TechnicianRepo(context, tables, self.custody, self.audit)

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
        store.context.keep_notices = notices
        store._seal_old_notices()
        store.audit.anchor_once()
        return store

    def _seal_old_notices(self) -> None:
        """Seal plaintext codes an older lockerd left, or drop them if nobody delivers them."""
        rows = self.db.conn.execute(
            "SELECT parcel_id, code FROM pickup_notices WHERE code NOT LIKE ?",
            (codes.SEALED + "%",),
        ).fetchall()
        if not rows and self.context.keep_notices:
            return
        with self.db.transaction() as conn:
            if not self.context.keep_notices:
                conn.execute("DELETE FROM pickup_notices")
            for parcel_id, code in rows if self.context.keep_notices else ():
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

    @property
    def layout(self) -> dict[str, CompartmentConfig]:
        """The configured compartments by id."""
        return self.context.layout

    def subscribe(self, listener: Callable[[list[JournalEntry]], None]) -> None:
        """Call ``listener(events)`` after every commit that wrote journal events."""
        self.context.listeners.append(listener)

    def close(self) -> None:
        self.db.close()

    # -- setup -----------------------------------------------------------

    def seed_demo(self, demo: DemoSection) -> None:
        """Insert the demo couriers and expected parcels that are not there yet."""
        with self.context.change() as conn:
            for courier in demo.couriers:
                self.couriers.add(
                    conn, courier.id, courier.name, courier.code, courier.rights, courier.carrier
                )
            for parcel in demo.expected_parcels:
                exists = conn.execute(
                    "SELECT 1 FROM parcels WHERE barcode = ?", (parcel.barcode,)
                ).fetchone()
                if not exists:
                    self.parcels.expect(
                        conn,
                        parcel.barcode,
                        parcel.size,
                        parcel.recipient,
                        group=parcel.group or None,
                    )
