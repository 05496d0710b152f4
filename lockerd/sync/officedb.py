"""The reference back office's memory: one SQLite file (or memory, for tests).

It keeps, per locker, the events received, the acknowledged mark, where the
office adopted the locker from, the commands issued (in issue order) and the
last remote-open number, so a restarted back office carries on where it
stopped; and each locker's presence (docs/sync-mqtt.md, "Presence"): online
or not, since which connection, when that was heard, and its last heartbeat.
Each database has an instance name, made when it is created, that starts
every cursor; a cursor also names the last command it delivered, and command
ids end in random digits. So a back office started afresh, or restored from a
backup, never reuses an id a locker has applied, and recognises a locker's
cursor from another database, or from after its backup, as unknown.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS lockers (
    id TEXT PRIMARY KEY, acked INTEGER NOT NULL, adopted_from INTEGER NOT NULL,
    received INTEGER NOT NULL, duplicates INTEGER NOT NULL, open_seq INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    locker TEXT NOT NULL, seq INTEGER NOT NULL, body TEXT NOT NULL, PRIMARY KEY (locker, seq)
);
CREATE TABLE IF NOT EXISTS commands (
    n INTEGER PRIMARY KEY AUTOINCREMENT, locker TEXT NOT NULL, body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS presence (
    locker TEXT PRIMARY KEY, online INTEGER, since REAL, changed_at REAL, heartbeat_at REAL
);
"""
PRESENCE = ("online", "since", "changed_at", "heartbeat_at")


class OfficeDb:
    def __init__(self, path: Path | None):
        self.conn = sqlite3.connect(":memory:" if path is None else str(path), isolation_level=None)
        # An acknowledged event must survive a power cut: the locker prunes what is acked.
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute("PRAGMA synchronous = FULL")
        self.conn.executescript(SCHEMA)
        row = self.conn.execute("SELECT value FROM meta WHERE key = 'instance'").fetchone()
        if row is None:
            row = (secrets.token_hex(4),)
            self.conn.execute("INSERT INTO meta (key, value) VALUES ('instance', ?)", row)
        #: Starts every command id and cursor of this database.
        self.instance = str(row[0])

    def close(self) -> None:
        self.conn.close()

    def signing_key(self) -> Ed25519PrivateKey:
        """The key remote opens are signed with when none is given: made with the database,
        so lockers holding its public key keep accepting opens after a restart."""
        row = self.conn.execute("SELECT value FROM meta WHERE key = 'signing_key'").fetchone()
        if row is not None:
            return Ed25519PrivateKey.from_private_bytes(bytes.fromhex(row[0]))
        key = Ed25519PrivateKey.generate()
        raw = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        self.conn.execute("INSERT INTO meta (key, value) VALUES ('signing_key', ?)", (raw.hex(),))
        return key

    def lockers(self) -> list[tuple[str, dict[str, int]]]:
        """Each locker's counters, by id."""
        rows = self.conn.execute(
            "SELECT id, acked, adopted_from, received, duplicates, open_seq FROM lockers"
        ).fetchall()
        keys = ("acked", "adopted_from", "received", "duplicates", "open_seq")
        return [(row[0], dict(zip(keys, row[1:], strict=True))) for row in rows]

    def events(self, locker: str) -> dict[int, dict[str, Any]]:
        rows = self.conn.execute("SELECT seq, body FROM events WHERE locker = ?", (locker,))
        return {seq: json.loads(body) for seq, body in rows}

    def commands(self, locker: str) -> list[dict[str, Any]]:
        rows = self.conn.execute("SELECT body FROM commands WHERE locker = ? ORDER BY n", (locker,))
        return [json.loads(body) for (body,) in rows]

    def presence(self, locker: str) -> dict[str, Any] | None:
        """``{"online", "since", "changed_at", "heartbeat_at"}`` (None: nothing heard yet;
        ``online`` None: heartbeats but no presence message)."""
        row = self.conn.execute(
            "SELECT online, since, changed_at, heartbeat_at FROM presence WHERE locker = ?",
            (locker,),
        ).fetchone()
        if row is None:
            return None
        found = dict(zip(PRESENCE, row, strict=True))
        found["online"] = None if row[0] is None else bool(row[0])
        return found

    def mark_presence(self, locker: str, online: bool, since: float, now: float) -> bool:
        """Take a presence message unless one of a later connection (a greater ``since``), or
        this connection's end (its will: offline), was taken already. Whether it was."""
        with self._transaction():
            current = self.presence(locker) or {"since": None}
            last = current["since"] is not None and (current["since"], not current["online"])
            if last and (since, not online) <= last:
                return False
            self.conn.execute(
                "INSERT INTO presence (locker, online, since, changed_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (locker) DO UPDATE SET online = excluded.online,"
                " since = excluded.since, changed_at = excluded.changed_at",
                (locker, int(online), since, now),
            )
        return True

    def mark_heartbeat(self, locker: str, at: float) -> None:
        """The locker's latest heartbeat was sent at ``at`` (its clock)."""
        self.conn.execute(
            "INSERT INTO presence (locker, heartbeat_at) VALUES (?, ?) ON CONFLICT (locker)"
            " DO UPDATE SET heartbeat_at = max(coalesce(heartbeat_at, 0), excluded.heartbeat_at)",
            (locker, at),
        )

    def next_command_number(self) -> int:
        row = self.conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'commands'")
        found = row.fetchone()
        return (found[0] if found else 0) + 1

    def save(self, locker: str, counters: dict[str, int], events: list[dict[str, Any]]) -> None:
        """A locker's counters and newly stored events, in one transaction."""
        with self._transaction():
            self._put(locker, counters)
            self.conn.executemany(
                "INSERT OR IGNORE INTO events (locker, seq, body) VALUES (?, ?, ?)",
                [(locker, e["seq"], json.dumps(e)) for e in events],
            )

    def add_command(self, locker: str, counters: dict[str, int], command: dict[str, Any]) -> None:
        with self._transaction():
            self._put(locker, counters)
            self.conn.execute(
                "INSERT INTO commands (locker, body) VALUES (?, ?)", (locker, json.dumps(command))
            )

    def _put(self, locker: str, counters: dict[str, int]) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO lockers (id, acked, adopted_from, received, duplicates,"
            " open_seq) VALUES (:id, :acked, :adopted_from, :received, :duplicates, :open_seq)",
            {"id": locker} | counters,
        )

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")
