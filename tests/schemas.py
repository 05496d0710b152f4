"""Databases as an older lockerd made them, for the tests of upgrades: the database
code runs only that lockerd's migrations and expects only its tables."""

from __future__ import annotations

from typing import Any

from lockerd.store import _db
from lockerd.store.migrations import MIGRATIONS

#: The tables each migration added after the schemas the upgrade tests start from.
ADDED_BY = {9: {"outbound", "send_codes"}}


def as_schema(monkeypatch: Any, version: int) -> None:
    """Until ``monkeypatch.undo()``, databases are opened (and made) at schema ``version``."""
    later = {t for number, added in ADDED_BY.items() if number > version for t in added}
    monkeypatch.setattr(_db, "MIGRATIONS", MIGRATIONS[:version])
    monkeypatch.setattr(_db, "EXPECTED_TABLES", _db.EXPECTED_TABLES - later)
