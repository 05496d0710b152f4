"""The SQLite connection: durability settings checked at start, migrations, transactions.

One connection, one writer. The connection is in autocommit mode and every
change goes through :meth:`Database.transaction` (``BEGIN IMMEDIATE`` ...
``COMMIT``), so a state change and its journal event commit together or not
at all. The daemon calls it from one dedicated thread only.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lockerd.errors import StoreError
from lockerd.store._files import private_file, private_folder, tighten_if_present
from lockerd.store.migrations import MIGRATIONS

EXPECTED_TABLES = {
    "meta",
    "compartments",
    "parcels",
    "unlock_intents",
    "outbound",
    "journal",
    "pickup_notices",
    "couriers",
    "throttle",
    "used_tokens",
    "inbox",
    "remote_open_seqs",
    "audit",
}
#: The tables the bank view reads (a compartment's state, and the parcel in it, inbound
#: or outbound awaiting its carrier).
VIEW_TABLES = ("compartments", "parcels", "outbound")


class Database:
    """A verified connection to the locker's database file."""

    def __init__(self, path: Path):
        private_folder(path.parent)
        private_file(path)  # SQLite gives the WAL and its index the database's mode
        for suffix in ("-wal", "-shm"):
            tighten_if_present(path.with_name(path.name + suffix))
        self.path = path
        #: Transactions committed.
        self.commits = 0
        #: Rows written to :data:`VIEW_TABLES`: the version of the bank view readers cache
        #: (the kiosk's status), so that a commit elsewhere (a refused code) keeps it.
        self.view_changes = 0
        #: The newest journal sequence number committed (0: none yet).
        self.last_seq = 0
        self._written_seq = 0
        try:
            self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise StoreError(f"{path}: cannot open database: {exc}") from exc
        self.conn.row_factory = sqlite3.Row
        self._configure()
        self._migrate()
        self._verify_schema()
        self._watch_view()
        self.last_seq = int(
            self.conn.execute("SELECT COALESCE(MAX(seq), 0) FROM journal").fetchone()[0]
        )

    def _configure(self) -> None:
        conn = self.conn
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=5000")
        # Deleted rows (a delivered pickup code) are overwritten, not left in free pages.
        conn.execute("PRAGMA secure_delete=ON")
        settings = {
            "journal_mode": mode,
            "synchronous": conn.execute("PRAGMA synchronous").fetchone()[0],
            "foreign_keys": conn.execute("PRAGMA foreign_keys").fetchone()[0],
            "secure_delete": conn.execute("PRAGMA secure_delete").fetchone()[0],
        }
        wanted = {"journal_mode": "wal", "synchronous": 2, "foreign_keys": 1, "secure_delete": 1}
        if settings != wanted:
            raise StoreError(f"{self.path}: durability settings did not take: {settings}")

    def _migrate(self) -> None:
        version = self.conn.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise StoreError(
                f"{self.path}: database schema {version} is newer than this lockerd "
                f"({len(MIGRATIONS)}); upgrade lockerd or restore a matching backup"
            )
        if version == len(MIGRATIONS):
            return
        # A migration may rebuild a table that others reference (SQLite's documented
        # procedure): foreign keys off around it, every reference checked before commit.
        self.conn.execute("PRAGMA foreign_keys=OFF")
        try:
            for number in range(version, len(MIGRATIONS)):
                with self.transaction():
                    for statement in MIGRATIONS[number]:
                        self.conn.execute(statement)
                    if self.conn.execute("PRAGMA foreign_key_check").fetchone() is not None:
                        raise StoreError(f"{self.path}: migration {number + 1} broke references")
                    self.conn.execute(f"PRAGMA user_version={number + 1}")
        finally:
            self.conn.execute("PRAGMA foreign_keys=ON")

    def _verify_schema(self) -> None:
        # sqlite_master directly: importing sqlite-utils (and numpy with it) costs 0.15 s.
        rows = self.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        tables = {str(row[0]) for row in rows}
        missing = EXPECTED_TABLES - tables
        if missing:
            raise StoreError(f"{self.path}: tables missing: {', '.join(sorted(missing))}")
        problems = self.conn.execute("PRAGMA foreign_key_check").fetchall()
        if problems:
            raise StoreError(f"{self.path}: foreign key violations: {len(problems)} rows")

    def _watch_view(self) -> None:
        """Count the rows written to :data:`VIEW_TABLES`, with triggers of this connection
        only (TEMP: nothing of them is in the database file) calling back into Python."""
        self.conn.create_function("lockerd_view_changed", 0, self._view_changed)
        rows = self.conn.execute("SELECT name FROM main.sqlite_master WHERE type = 'table'")
        present = {str(row[0]) for row in rows}  # a database made by an older lockerd may lack one
        for table in (t for t in VIEW_TABLES if t in present):
            for op in ("INSERT", "UPDATE", "DELETE"):
                self.conn.execute(
                    f"CREATE TEMP TRIGGER IF NOT EXISTS view_{table}_{op.lower()} AFTER {op}"
                    f" ON main.{table} BEGIN SELECT lockerd_view_changed(); END"
                )

    def _view_changed(self) -> None:
        self.view_changes += 1

    @property
    def schema_version(self) -> int:
        return int(self.conn.execute("PRAGMA user_version").fetchone()[0])

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back on any exception."""
        if self.conn.in_transaction:
            raise StoreError("nested transaction")
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            self._written_seq = 0
            raise
        self.conn.execute("COMMIT")
        self.commits += 1
        self.last_seq, self._written_seq = max(self.last_seq, self._written_seq), 0

    def journal(self, at: float, kind: str, data: dict[str, Any]) -> int:
        """Append an event inside the current transaction; return its sequence number."""
        if not self.conn.in_transaction:
            raise StoreError("journal events are written inside a state change's transaction")
        cursor = self.conn.execute(
            "INSERT INTO journal (at, type, data) VALUES (?, ?, ?)",
            (at, kind, json.dumps(data, separators=(",", ":"), sort_keys=True)),
        )
        self._written_seq = int(cursor.lastrowid or 0)
        return self._written_seq

    def set_meta(self, key: str, value: str) -> None:
        """Set a bookkeeping value inside the current transaction."""
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?)"
            " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def close(self) -> None:
        self.conn.close()
