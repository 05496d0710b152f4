"""The audit chain in the store: keyed links, journal anchors, the upgrade from unkeyed links."""

from __future__ import annotations

from lockerd.clock import FakeClock
from lockerd.domain import Event
from lockerd.store import Store
from lockerd.store.audit import GENESIS, anchor, legacy_hash
from lockerd.store.migrations import MIGRATIONS
from tests.event_schemas import HEALTH
from tests.rig import bank_config


def old_database(state) -> None:
    """A database as lockerd wrote it before the chain was keyed: schema 5, two SHA-256 links."""
    store = Store.open(bank_config(state), FakeClock())
    conn = store.db.conn
    conn.execute("DELETE FROM meta WHERE key IN ('audit.keyed_from', 'audit.anchored')")
    conn.execute("DELETE FROM journal WHERE type = 'audit.anchor'")
    prev = GENESIS
    for seq, target in ((1, "A1"), (2, "A2")):
        entry = {"seq": seq, "at": 1.0, "actor": "root", "origin": "local", "action": "disable"}
        entry |= {"target": target, "reason": "old"}
        digest = legacy_hash(prev, entry)
        conn.execute(
            "INSERT INTO audit (seq, at, actor, origin, action, target, reason, prev, hash)"
            " VALUES (:seq, :at, :actor, :origin, :action, :target, :reason, :prev, :hash)",
            entry | {"prev": prev, "hash": digest},
        )
        prev = digest
    conn.execute("ALTER TABLE parcels DROP COLUMN code_length")  # added by migration 7
    conn.execute("DROP INDEX parcels_live_group")  # added by migration 9
    conn.execute("ALTER TABLE parcels DROP COLUMN pickup_group")
    conn.execute("PRAGMA user_version = 5")
    store.close()


def test_an_old_unkeyed_chain_is_kept_anchored_and_continued_with_keyed_links(tmp_path) -> None:
    old_database(tmp_path)
    store = Store.open(bank_config(tmp_path), FakeClock())
    store.compartments.sync_layout()
    try:
        assert store.db.schema_version == len(MIGRATIONS)
        assert store.db.meta("audit.keyed_from") == "3"
        anchors = [e for e in store.journal.events() if e["type"] == "audit.anchor"]
        assert [(a["data"]["audit_seq"], a["data"]["audit_keyed_from"]) for a in anchors] == [
            (2, 3)
        ]
        assert store.audit.verify()["problems"] == []
        store.service.disable("M1", "root", "local", "new")
        row = store.db.conn.execute("SELECT * FROM audit WHERE seq = 3").fetchone()
        assert row["hash"] != legacy_hash(row["prev"], dict(row)), "the new link is keyed"
        assert store.audit.verify() == {"entries": 3, "head": row["hash"], "problems": []}
    finally:
        store.close()


def test_an_old_entry_edited_with_its_links_recomputed_is_found(tmp_path) -> None:
    old_database(tmp_path)
    store = Store.open(bank_config(tmp_path), FakeClock())
    try:
        conn = store.db.conn
        prev = GENESIS
        for row in conn.execute("SELECT * FROM audit ORDER BY seq").fetchall():
            entry = dict(row) | {"reason": "nothing happened", "prev": prev}
            prev = legacy_hash(prev, entry)
            conn.execute(
                "UPDATE audit SET reason = ?, prev = ?, hash = ? WHERE seq = ?",
                (entry["reason"], entry["prev"], prev, entry["seq"]),
            )
        problems = store.audit.verify()["problems"]
        assert any("entry 2: differs from the one journal event" in p for p in problems), problems
    finally:
        store.close()


def test_pruning_keeps_the_newest_anchor(tmp_path) -> None:
    clock = FakeClock()
    store = Store.open(bank_config(tmp_path), clock)
    store.compartments.sync_layout()
    try:
        store.service.disable("S1", "root", "local", "one")
        last = store.journal.last_seq()
        store.journal.acknowledge(last)
        store.journal.prune_acked(older_than=float("inf"))
        assert [e["type"] for e in store.journal.events()] == ["service.action"]
        assert store.audit.verify()["problems"] == []
    finally:
        store.close()


def test_a_heartbeat_anchoring_an_older_head_than_the_action_before_it(tmp_path) -> None:
    """A heartbeat whose anchor was read before a technician's action committed (as
    lockerd 0.x wrote them): newer in the journal, older in the chain. The chain is
    intact, and removing the action's entry is still found."""
    store = Store.open(bank_config(tmp_path), FakeClock())
    store.compartments.sync_layout()
    try:
        stale = anchor(store.key, store.db.conn)  # read while the chain is empty
        store.service.disable("S1", "root", "local", "one")
        with store.db.transaction():
            store.db.journal(1.0, Event.HEARTBEAT, HEALTH | stale)
        beats = [e for e in store.journal.events() if e["type"] == "heartbeat"]
        assert beats[-1]["data"]["audit_seq"] == 0 and beats[-1]["seq"] == store.journal.last_seq()
        assert store.audit.verify()["problems"] == []
        store.db.conn.execute("DELETE FROM audit WHERE seq = 1")
        problems = store.audit.verify()["problems"]
        assert any(p.startswith("entry 1 is missing") for p in problems), problems
    finally:
        store.close()


def test_a_heartbeat_anchors_the_head_as_it_commits(tmp_path) -> None:
    """The heartbeat's health is gathered, a technician acts, then the heartbeat is written:
    it anchors the entry written before it, whatever its health data held."""
    store = Store.open(bank_config(tmp_path), FakeClock())
    store.compartments.sync_layout()
    try:
        health = HEALTH | anchor(store.key, store.db.conn)  # read before the action
        store.service.disable("S1", "root", "local", "one")
        store.journal.record(Event.HEARTBEAT, health)
        beat = store.journal.events()[-1]
        assert beat["type"] == "heartbeat" and beat["data"]["uptime_s"] == 1
        head = store.db.conn.execute("SELECT hash FROM audit WHERE seq = 1").fetchone()[0]
        assert (beat["data"]["audit_seq"], beat["data"]["audit_head"]) == (1, head)
        assert store.audit.verify()["problems"] == []
    finally:
        store.close()


def test_pruning_keeps_the_anchor_that_bounds_the_chain(tmp_path) -> None:
    """An entry removed, then a heartbeat anchoring what is left: pruning keeps the older
    anchor of the removed entry, so the removal is still found."""
    store = Store.open(bank_config(tmp_path), FakeClock())
    store.compartments.sync_layout()
    try:
        store.service.disable("S1", "root", "local", "one")
        store.db.conn.execute("DELETE FROM audit WHERE seq = 1")
        store.journal.record(Event.HEARTBEAT, HEALTH)
        store.journal.acknowledge(store.journal.last_seq())
        store.journal.prune_acked(older_than=float("inf"))
        assert [e["type"] for e in store.journal.events()] == ["service.action", "heartbeat"]
        problems = store.audit.verify()["problems"]
        assert any(p.startswith("entry 1 is missing") for p in problems), problems
    finally:
        store.close()
