"""Versioned forward migrations; ``PRAGMA user_version`` holds the applied count.

Each migration is a list of statements run inside one transaction with the
version bump. Never edit a released migration: append a new one.
"""

from __future__ import annotations

MIGRATIONS: list[list[str]] = [
    # 1: custody, journal, credentials
    [
        """CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)""",
        """CREATE TABLE compartments (
            id TEXT PRIMARY KEY,
            size TEXT NOT NULL,
            state TEXT NOT NULL CHECK (state IN
                ('free','reserved','open','occupied','out_of_service','needs_check')),
            door TEXT NOT NULL DEFAULT 'unknown' CHECK (door IN ('open','closed','unknown')),
            reason TEXT,
            updated_at REAL NOT NULL)""",
        """CREATE TABLE parcels (
            id INTEGER PRIMARY KEY,
            barcode TEXT NOT NULL,
            size TEXT,
            recipient TEXT NOT NULL DEFAULT '',
            state TEXT NOT NULL CHECK (state IN
                ('expected','stored','collected','expired','returned','cancelled')),
            compartment_id TEXT REFERENCES compartments(id),
            code_hmac BLOB,
            courier_id TEXT,
            pickup_by REAL,
            stored_at REAL,
            closed_at REAL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL)""",
        """CREATE UNIQUE INDEX parcels_live_barcode ON parcels(barcode)
            WHERE state IN ('expected','stored','expired')""",
        """CREATE UNIQUE INDEX parcels_live_code ON parcels(code_hmac)
            WHERE state IN ('stored','expired')""",
        """CREATE UNIQUE INDEX parcels_one_per_compartment ON parcels(compartment_id)
            WHERE state IN ('stored','expired')""",
        """CREATE TABLE unlock_intents (
            id INTEGER PRIMARY KEY,
            compartment_id TEXT NOT NULL REFERENCES compartments(id),
            purpose TEXT NOT NULL CHECK (purpose IN
                ('dropoff','pickup','collect','service','remote')),
            state TEXT NOT NULL CHECK (state IN
                ('pending','opened','done','released','failed','interrupted')),
            parcel_id INTEGER REFERENCES parcels(id),
            barcode TEXT,
            size TEXT,
            actor TEXT NOT NULL DEFAULT '',
            alarm TEXT,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL)""",
        """CREATE UNIQUE INDEX intents_one_live ON unlock_intents(compartment_id)
            WHERE state IN ('pending','opened','released')""",
        """CREATE TABLE journal (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            at REAL NOT NULL,
            type TEXT NOT NULL,
            data TEXT NOT NULL)""",
        """CREATE TABLE pickup_notices (
            parcel_id INTEGER PRIMARY KEY REFERENCES parcels(id),
            seq INTEGER NOT NULL REFERENCES journal(seq),
            code TEXT NOT NULL)""",
        """CREATE TABLE couriers (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL DEFAULT '',
            code_hmac BLOB NOT NULL UNIQUE,
            can_deliver INTEGER NOT NULL DEFAULT 1,
            can_collect INTEGER NOT NULL DEFAULT 0,
            active INTEGER NOT NULL DEFAULT 1)""",
        """CREATE TABLE throttle (
            scope TEXT PRIMARY KEY,
            failures INTEGER NOT NULL,
            blocked_until REAL NOT NULL,
            locked_out INTEGER NOT NULL)""",
    ],
    # 2: pickup QR tokens are single use
    [
        """CREATE TABLE used_tokens (
            jti TEXT PRIMARY KEY,
            parcel_id INTEGER REFERENCES parcels(id),
            expires REAL NOT NULL,
            used_at REAL NOT NULL)""",
    ],
    # 3: back-office sync: applied commands, spent remote-open numbers, per-parcel hold time
    [
        """CREATE TABLE inbox (
            id TEXT PRIMARY KEY,
            type TEXT NOT NULL,
            outcome TEXT NOT NULL CHECK (outcome IN ('applied','rejected')),
            reason TEXT,
            applied_at REAL NOT NULL)""",
        """CREATE TABLE remote_open_seqs (
            open_seq INTEGER PRIMARY KEY,
            command_id TEXT NOT NULL,
            used_at REAL NOT NULL)""",
        """ALTER TABLE parcels ADD COLUMN hold_hours REAL""",
    ],
    # 4: the technicians' audit log, each entry chained to the one before by a hash
    [
        """CREATE TABLE audit (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            at REAL NOT NULL,
            actor TEXT NOT NULL,
            origin TEXT NOT NULL,
            action TEXT NOT NULL,
            target TEXT NOT NULL,
            reason TEXT NOT NULL,
            prev TEXT NOT NULL,
            hash TEXT NOT NULL)""",
    ],
    # 5: the wrong-code budget: when it is full again (only time refills it)
    [
        """ALTER TABLE throttle ADD COLUMN budget_full_at REAL NOT NULL DEFAULT 0""",
    ],
    # 6: the audit chain is keyed with the device key from the next entry on; older
    # entries keep their unkeyed links (lockerd/store/audit.py)
    [
        """INSERT INTO meta (key, value)
            SELECT 'audit.keyed_from', COALESCE(MAX(seq), 0) + 1 FROM audit""",
    ],
    # 7: each parcel's code length, so a code stays typeable when the configured (or
    # derived) length changes; NULL for codes issued before: taken as the old default
    # of 8 digits or the configured length (ParcelRepo.code_lengths)
    [
        """ALTER TABLE parcels ADD COLUMN code_length INTEGER""",
    ],
    # 8: the highest sequence number pruning deleted, so a push can say from where the
    # journal holds every event (first_seq) without a scan: for a database pruned before,
    # the journal's last gap, or the last number issued when the events after the newest
    # one kept are gone
    [
        """INSERT OR IGNORE INTO meta (key, value)
            SELECT 'sync.pruned_to', MAX(
                (SELECT COALESCE(MAX(seq), 1) - 1 FROM journal AS j
                 WHERE seq > 1 AND NOT EXISTS (SELECT 1 FROM journal WHERE seq = j.seq - 1)),
                (SELECT COALESCE(MAX(seq), 0) FROM sqlite_sequence WHERE name = 'journal'
                 AND seq > (SELECT COALESCE(MAX(seq), 0) FROM journal)))""",
    ],
    # 9: outbound parcels (sent or returned by the public, collected by their carrier's
    # courier), the intent that deposits or collects one, and carriers on couriers and
    # on the parcels they drop off
    [
        """CREATE TABLE outbound (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL CHECK (kind IN ('send','return')),
            reference TEXT NOT NULL,
            size TEXT NOT NULL,
            carrier TEXT NOT NULL,
            state TEXT NOT NULL CHECK (state IN
                ('depositing','awaiting_collection','collected','cancelled')),
            compartment_id TEXT REFERENCES compartments(id),
            code_id TEXT NOT NULL,
            code_expires REAL NOT NULL,
            returned_parcel_id INTEGER REFERENCES parcels(id),
            collected_by TEXT,
            stored_at REAL,
            closed_at REAL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL)""",
        """CREATE UNIQUE INDEX outbound_code_once ON outbound(code_id)
            WHERE state IN ('awaiting_collection','collected')""",
        """CREATE UNIQUE INDEX outbound_one_per_compartment ON outbound(compartment_id)
            WHERE state = 'awaiting_collection'""",
        """ALTER TABLE unlock_intents ADD COLUMN outbound_id INTEGER REFERENCES outbound(id)""",
        """ALTER TABLE couriers ADD COLUMN carrier TEXT NOT NULL DEFAULT ''""",
        """ALTER TABLE parcels ADD COLUMN carrier TEXT""",
        """CREATE TABLE send_codes (
            code_hmac BLOB PRIMARY KEY,
            kind TEXT NOT NULL CHECK (kind IN ('send','return')),
            reference TEXT NOT NULL,
            size TEXT NOT NULL,
            carrier TEXT NOT NULL,
            valid_until REAL NOT NULL)""",
    ],
    # 10: parcels the back office announced for one recipient share a pickup group: any
    # of their codes opens each of them in turn (NULL: a parcel on its own)
    [
        """ALTER TABLE parcels ADD COLUMN pickup_group TEXT""",
        """CREATE INDEX parcels_live_group ON parcels(pickup_group)
            WHERE state = 'stored' AND pickup_group IS NOT NULL""",
    ],
    # 11: an outbound parcel a technician took out by hand is 'removed' (the table is
    # rebuilt for its CHECK, as SQLite's ALTER TABLE documents); the intents of an
    # outbound parcel are found by an index (a deposit cut short holds its send code);
    # what a technician found in the compartment of a deposit cut short
    [
        """CREATE TABLE outbound_new (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL CHECK (kind IN ('send','return')),
            reference TEXT NOT NULL,
            size TEXT NOT NULL,
            carrier TEXT NOT NULL,
            state TEXT NOT NULL CHECK (state IN
                ('depositing','awaiting_collection','collected','cancelled','removed')),
            compartment_id TEXT REFERENCES compartments(id),
            code_id TEXT NOT NULL,
            code_expires REAL NOT NULL,
            returned_parcel_id INTEGER REFERENCES parcels(id),
            collected_by TEXT,
            stored_at REAL,
            closed_at REAL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL)""",
        """INSERT INTO outbound_new SELECT * FROM outbound""",
        """DROP TABLE outbound""",
        """ALTER TABLE outbound_new RENAME TO outbound""",
        """CREATE UNIQUE INDEX outbound_code_once ON outbound(code_id)
            WHERE state IN ('awaiting_collection','collected','removed')""",
        """CREATE UNIQUE INDEX outbound_one_per_compartment ON outbound(compartment_id)
            WHERE state = 'awaiting_collection'""",
        """CREATE INDEX unlock_intents_outbound ON unlock_intents(outbound_id)
            WHERE outbound_id IS NOT NULL""",
        """ALTER TABLE unlock_intents ADD COLUMN checked TEXT
            CHECK (checked IN ('found','empty'))""",
        # A compartment a technician already put back in use was confirmed empty then
        # (the rule before this one): its deposits cut short are answered.
        """UPDATE unlock_intents SET checked = 'empty' WHERE state = 'interrupted'
            AND purpose = 'dropoff' AND compartment_id IN
            (SELECT id FROM compartments WHERE state NOT IN ('needs_check','out_of_service'))""",
    ],
]
