"""Every event the suite writes, held to its schema in docs/sync-v1.openapi.json.

``tests/conftest.py`` wraps ``Database.journal`` (the one place events are
written) for the whole session: each test collects the events written while
it ran, in any thread, and fails at teardown if one does not match the
schema of its type (``components.schemas["data.<type>"]``) or has no schema
(the first 200 of each type in full, then each event of a shape not seen yet).
Daemons run as processes (``tests/daemon.py``) hand over their journal when
they stop; the in-process reference back office hands over every event it
receives, as sent (with its pickup code).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from lockerd.store._db import Database

SPEC = json.loads(
    (Path(__file__).resolve().parent.parent / "docs" / "sync-v1.openapi.json").read_text()
)
#: A heartbeat's health, for tests that write one themselves (the store adds the anchor).
HEALTH = {
    "uptime_s": 1, "compartments": {"free": 3}, "boards": {"b1": True}, "unsent": 0,
    "sync_failures": 0, "open_seq": 0,
}  # fmt: skip
#: Where each test's events go while it runs (None between tests).
_sink: list[tuple[str, dict[str, Any]]] | None = None
#: Every type seen in the session, for the coverage line at its end.
SEEN: set[str] = set()


def schema_types() -> set[str]:
    return {name[5:] for name in SPEC["components"]["schemas"] if name.startswith("data.")}


@cache
def _validator(kind: str) -> Draft202012Validator | None:
    if f"data.{kind}" not in SPEC["components"]["schemas"]:
        return None
    root = dict(SPEC, **{"$ref": f"#/components/schemas/data.{kind}"})
    return Draft202012Validator(root)


def problems(kind: str, data: Any) -> list[str]:
    """What is wrong with an event of type ``kind`` carrying ``data``; [] if nothing."""
    validator = _validator(kind)
    if validator is None:
        return [f"{kind}: no schema (components.schemas['data.{kind}'])"]
    return [
        f"{kind}: {'/'.join(map(str, error.absolute_path)) or 'data'}: {error.message}"
        for error in validator.iter_errors(data)
    ]


#: Events of one type checked in full in each test before only new shapes are (a soak
#: writes a hundred thousand; their shapes repeat).
FULL = 200


def checked(events: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """The problems of one test's events: the first FULL of each type, and every event
    whose shape (keys and value types) was not seen yet."""
    counts: dict[str, int] = {}
    shapes: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
    found: set[str] = set()
    for kind, data in events:
        shape = (kind, tuple(sorted((k, type(v).__name__) for k, v in data.items())))
        counts[kind] = counts.get(kind, 0) + 1
        if counts[kind] <= FULL or shape not in shapes:
            shapes.add(shape)
            found.update(problems(kind, data))
    return sorted(found)


def seen(kind: str, data: dict[str, Any]) -> None:
    """An event written or sent during the current test."""
    if _sink is not None:
        _sink.append((str(kind), data))


@contextmanager
def collected() -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """The events of one test."""
    global _sink
    _sink = events = []
    try:
        yield events
    finally:
        _sink = None
        SEEN.update(kind for kind, _ in events)


def install() -> None:
    """Wrap ``Database.journal`` once, so every event written passes through ``seen``."""
    original = Database.journal
    if getattr(original, "checked", False):
        return

    def journal(self: Database, at: float, kind: str, data: dict[str, Any]) -> int:
        seq = original(self, at, kind, data)
        seen(kind, json.loads(json.dumps(data)))  # as stored: JSON types only
        return seq

    journal.checked = True  # type: ignore[attr-defined]
    Database.journal = journal  # type: ignore[method-assign]


def journal_of(database: Path) -> None:
    """Hand over every event in a stopped daemon's database."""
    import sqlite3

    if not database.exists():
        return
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as conn:
        for kind, data in conn.execute("SELECT type, data FROM journal"):
            seen(kind, json.loads(data))
