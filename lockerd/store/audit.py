"""The technicians' audit chain: keyed entries, and the anchors that pin its head in the journal.

Each entry's ``hash`` is HMAC-SHA256, under the device key (a file kept
outside the database), of the previous entry's hash and the entry's own
fields: nobody without the key can change an entry and recompute the chain.
Entries an older lockerd wrote (before ``audit.keyed_from``) keep their
unkeyed SHA-256 links; the first keyed entry's MAC covers their head.

The head (last ``seq`` and its hash) is anchored in the journal: every
``service.action`` event, every ``heartbeat`` and an ``audit.anchor`` event
at the first start carry ``audit_seq``, ``audit_head``, ``audit_keyed_from``
and ``audit_anchor``, a MAC over the three, the head read in the event's own
transaction. Every anchor must name an entry the chain has, as it is; the
highest ``audit_seq`` bounds its end (not the newest event: a heartbeat an
older lockerd wrote may anchor a head read before an action that committed
first). Removing the newest entries, or all of them, leaves that anchor
naming a head the chain no longer has; a forged anchor does not verify.
Deleting the anchors as well means rewriting the journal, which the back
office already holds (heartbeats and ``service.action`` events).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from lockerd.codes import DeviceKey
from lockerd.domain import Event
from lockerd.store._context import Context

T = TypeVar("T")

GENESIS = "0" * 64
FIELDS = ("seq", "at", "actor", "origin", "action", "target", "reason")
KEYED_FROM = "audit.keyed_from"
#: Journal events that carry an anchor (``audit_anchor`` in their data).
ANCHORING = ("service.action", "heartbeat", "audit.anchor")


def _body(entry: dict[str, Any]) -> str:
    return json.dumps({k: entry[k] for k in FIELDS}, sort_keys=True, separators=(",", ":"))


def legacy_hash(prev: str, entry: dict[str, Any]) -> str:
    """The unkeyed link older lockerd versions wrote."""
    return hashlib.sha256(f"{prev}\n{_body(entry)}".encode()).hexdigest()


def entry_mac(key: DeviceKey, prev: str, entry: dict[str, Any]) -> str:
    return key.digest("audit", f"{prev}\n{_body(entry)}").hex()


def anchor(key: DeviceKey, conn: sqlite3.Connection) -> dict[str, Any]:
    """The chain's head and its MAC, for a journal event's data."""
    row = conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    seq, head = (int(row[0]), str(row[1])) if row else (0, GENESIS)
    keyed_from = keyed_since(conn)
    return {
        "audit_seq": seq,
        "audit_head": head,
        "audit_keyed_from": keyed_from,
        "audit_anchor": _anchor_mac(key, seq, head, keyed_from),
    }


def _anchor_mac(key: DeviceKey, seq: int, head: str, keyed_from: int) -> str:
    return key.digest("audit-anchor", f"{seq}:{head}:{keyed_from}").hex()


def keyed_since(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (KEYED_FROM,)).fetchone()
    return int(row[0]) if row else 1


def verify(key: DeviceKey, conn: sqlite3.Connection) -> dict[str, Any]:
    """Recompute the chain and hold it against every anchor; where it breaks, and its head."""
    rows = [dict(r) for r in conn.execute("SELECT * FROM audit ORDER BY rowid")]
    keyed_from = keyed_since(conn)
    problems, prev, expected_seq = [], GENESIS, 1
    for row in rows:
        if row["seq"] != expected_seq:
            problems.append(f"entry {row['seq']}: expected entry {expected_seq} here")
        if row["prev"] != prev:
            problems.append(f"entry {row['seq']}: does not follow the entry before it")
        keyed = row["seq"] >= keyed_from
        link = entry_mac(key, row["prev"], row) if keyed else legacy_hash(row["prev"], row)
        if link != row["hash"]:
            problems.append(f"entry {row['seq']}: its contents were changed")
        prev, expected_seq = row["hash"], row["seq"] + 1
    problems += _against_anchors(key, conn, {r["seq"]: r["hash"] for r in rows}, keyed_from)
    return {"entries": len(rows), "head": prev, "problems": problems}


def _against_anchors(
    key: DeviceKey, conn: sqlite3.Connection, chain: dict[int, str], keyed_from: int
) -> list[str]:
    """Every genuine anchor must name an entry the chain has, as it is; the one with the
    highest ``audit_seq`` (not the newest event: a heartbeat may have read the head just
    before an action committed) bounds the chain's end."""
    problems: dict[str, None] = {}  # in order, each once
    last = max(chain, default=0)
    seen: set[tuple[int, str, int]] = set()
    top: tuple[int, int] | None = None  # (audit_seq, journal event) of the highest anchor
    for event_seq, data in anchors(conn):
        anchored = _genuine(key, data)
        if anchored is None:
            problems[f"journal event {event_seq}: its audit anchor was forged or changed"] = None
            continue
        if top is None or anchored[0] > top[0]:
            top = (anchored[0], event_seq)
        if anchored not in seen:
            seen.add(anchored)
            for problem in _anchor_problems(anchored, event_seq, chain, last, keyed_from):
                problems[problem] = None
    if top is None:
        if not problems:
            return ["the journal holds no anchor of the audit log (its events were removed)"]
        return list(problems)
    problems.update(dict.fromkeys(_end_problems(top, last)))
    return list(problems)


def _genuine(key: DeviceKey, data: dict[str, Any]) -> tuple[int, str, int] | None:
    """An anchor's (audit_seq, audit_head, audit_keyed_from) if its MAC holds, else None."""
    try:
        seq, head = int(data["audit_seq"]), str(data["audit_head"])
        anchored_from = int(data["audit_keyed_from"])
        genuine = _anchor_mac(key, seq, head, anchored_from) == data["audit_anchor"]
    except (KeyError, TypeError, ValueError):
        return None
    return (seq, head, anchored_from) if genuine else None


def _anchor_problems(
    anchored: tuple[int, str, int],
    event_seq: int,
    chain: dict[int, str],
    last: int,
    keyed_from: int,
) -> list[str]:
    seq, head, anchored_from = anchored
    problems = []
    if anchored_from != keyed_from:
        problems.append(f"the keyed chain should start at entry {anchored_from}, not {keyed_from}")
    if seq and seq in chain and chain[seq] != head:
        problems.append(f"entry {seq}: differs from the one journal event {event_seq} anchors")
    elif seq and seq not in chain and seq < last:
        problems.append(f"entry {seq} is missing (journal event {event_seq} anchors it)")
    return problems


def _end_problems(top: tuple[int, int], last: int) -> list[str]:
    """Where the chain ends against the highest anchor."""
    seq, event_seq = top
    if seq > last:
        first = last + 1
        gone = f"entry {seq} is" if first == seq else f"entries {first}..{seq} are"
        return [f"{gone} missing (journal event {event_seq} anchors entry {seq})"]
    if last > seq:
        return [f"entries {seq + 1}..{last} are not anchored in the journal"]
    return []


def anchors(conn: sqlite3.Connection) -> Iterator[tuple[int, dict[str, Any]]]:
    """The journal events carrying an anchor, newest first: (their seq, their data)."""
    marks = ", ".join("?" * len(ANCHORING))
    for seq, data in conn.execute(
        f"SELECT seq, data FROM journal WHERE type IN ({marks}) ORDER BY seq DESC", ANCHORING
    ):
        body = json.loads(data)
        if isinstance(body, dict) and "audit_anchor" in body:
            yield int(seq), body


def kept_anchors(conn: sqlite3.Connection) -> list[int]:
    """The anchoring events pruning keeps: the newest, and the one with the highest
    ``audit_seq`` (the newest of those), which bounds the chain's end."""
    newest, top, top_seq = None, None, -1
    for event_seq, data in anchors(conn):
        newest = event_seq if newest is None else newest
        try:
            seq = int(data["audit_seq"])
        except (KeyError, TypeError, ValueError):
            continue
        if seq > top_seq:
            top, top_seq = event_seq, seq
    return [s for s in (newest, top) if s is not None]


class AuditRepo:
    """The audit log's rows: each technician's action commits with its entry."""

    def __init__(self, context: Context):
        self._c = context

    def audited(
        self,
        actor: str,
        origin: str,
        action: str,
        target: str,
        reason: str,
        effect: Callable[[sqlite3.Connection], T],
    ) -> T:
        with self._c.change() as conn:
            result = effect(conn)
            self._append(conn, actor, origin, action, target, reason)
        return result

    def _append(
        self,
        conn: sqlite3.Connection,
        actor: str,
        origin: str,
        action: str,
        target: str,
        reason: str,
    ) -> None:
        """The entry chained to the one before, and its ``service.action`` event."""
        row = conn.execute("SELECT hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
        prev = row[0] if row else GENESIS
        seq = int(conn.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM audit").fetchone()[0])
        entry = {"seq": seq, "at": self._c.clock.time(), "actor": actor, "origin": origin}
        entry |= {"action": action, "target": target, "reason": reason}
        digest = entry_mac(self._c.key, prev, entry)
        conn.execute(
            "INSERT INTO audit (seq, at, actor, origin, action, target, reason, prev, hash)"
            " VALUES (:seq, :at, :actor, :origin, :action, :target, :reason, :prev, :hash)",
            entry | {"prev": prev, "hash": digest},
        )
        action_event = {k: v for k, v in entry.items() if k not in ("seq", "at")}
        head = anchor(self._c.key, conn)
        self._c.event(Event.SERVICE_ACTION, action_event | {"audit_hash": digest} | head)

    def anchor_once(self) -> None:
        """At the first start (or the first after an upgrade): anchor the chain in the journal."""
        if self._c.db.meta("audit.anchored") is not None:
            return
        with self._c.change() as conn:
            self._c.event(Event.AUDIT_ANCHOR, anchor(self._c.key, conn))
            self._c.db.set_meta("audit.anchored", "1")

    def entries(self, limit: int = 1000) -> list[dict[str, Any]]:
        rows = self._c.db.conn.execute(
            "SELECT * FROM audit ORDER BY seq DESC LIMIT ?", (limit,)
        ).fetchall()
        return [dict(r) for r in reversed(rows)]

    def verify(self) -> dict[str, Any]:
        """Recompute the chain and check it against every anchor in the journal."""
        return verify(self._c.key, self._c.db.conn)
