"""Restores and the pruning mark: a back office restored from a backup, a restored back
office counting remote opens on, first_seq after a go-back, migration 8 after a pruned tail."""

from lockerd.clock import FakeClock
from lockerd.domain import Event
from lockerd.store import Database, Store
from lockerd.sync.backoffice import ReferenceBackOffice
from tests.rig import bank_config
from tests.sync_rig import LOCKER, OFFICE_KEY, TOKEN
from tests.test_store import before_migration_9


def test_migration_8_when_the_journal_tail_was_pruned(tmp_path) -> None:
    """An older lockerd pruned every acknowledged event but the newest anchor (seq 1 here,
    keep_acked_days = 0): the journal holds [1], the sequence is at 13. first_seq never
    claims that the locker holds every event from 1."""
    config = bank_config(tmp_path)
    store = Store.open(config, FakeClock())
    for n in range(12):
        store.journal.record(Event.STORAGE_OVER_BUDGET, {"bytes": n, "budget": 1, "unsent": 0})
    last = store.journal.last_seq()
    store.journal.acknowledge(last)
    store.close()
    db = Database(config.database_path)  # what an older prune_acked left
    db.conn.execute("DELETE FROM journal WHERE seq > 1")
    db.conn.execute("DELETE FROM meta WHERE key = 'sync.pruned_to'")
    before_migration_9(db)
    db.conn.execute("PRAGMA user_version = 7")
    db.close()
    store = Store.open(config, FakeClock())
    try:
        store.journal.record(Event.STORAGE_OVER_BUDGET, {"bytes": 0, "budget": 1, "unsent": 0})
        held_from = store.journal.held_from()
        seqs = [e["seq"] for e in store.journal.events() if e["seq"] >= held_from]
        assert seqs == list(range(held_from, store.journal.last_seq() + 1)), (held_from, seqs)
    finally:
        store.close()


async def test_a_restored_reference_back_office_counts_remote_opens_on(synced) -> None:
    """Every heartbeat carries open_seq, so a back office restored from an older copy
    counts on from there (docs/sync-protocol.md); the reference back office does."""
    s = synced
    s.issue("compartment.open", {"compartment": "S1"})
    await s.drain()
    await s.rig.person_opens("S1")
    await s.rig.person_closes("S1")
    s.office.lockers.clear()  # restored from nothing (as test_sync_recovery does)
    s.sync._next_heartbeat = 0
    await s.drain()  # the heartbeat with open_seq 1 reaches it
    s.issue("compartment.open", {"compartment": "M1"})
    await s.rig.run(s.drain())  # time passes: the power group rests after S1's pulse
    rejected = [e["data"]["reason"] for e in s.journal() if e["type"] == "command.rejected"]
    assert s.rig.unlocks_of("M1") == 1, rejected


async def test_a_reference_back_office_restored_from_a_backup_delivers_new_commands(
    synced, tmp_path
) -> None:
    """A back office restored from an older copy answers the locker's newer cursor 410 and
    never reuses an id the locker applied: the command it issues next is delivered."""
    import sqlite3

    s = synced
    database, backup = tmp_path / "office.db", tmp_path / "backup.db"
    first = ReferenceBackOffice(TOKEN, signing_key=OFFICE_KEY, database=database)
    first.clock = s.rig.clock.time
    await first.start()
    sync = s.coordinator(first.url)
    first.issue(LOCKER, "courier.upsert", {"id": "r1", "code": "91111", "rights": ["deliver"]})
    with sqlite3.connect(backup) as copy:  # the nightly backup, taken here
        first.db.conn.backup(copy)
    first.issue(LOCKER, "courier.upsert", {"id": "r2", "code": "92222", "rights": ["deliver"]})
    await s.drain(sync=sync)
    await first.stop()
    first.close()
    backup.replace(database)  # the back office is restored from that backup

    again = ReferenceBackOffice(TOKEN, signing_key=OFFICE_KEY, database=database)
    again.clock = s.rig.clock.time
    await again.start()
    try:
        sync.client.base = sync.client.base.replace(first.url, again.url)
        new = again.issue(
            LOCKER, "courier.upsert", {"id": "r3", "code": "93333", "rights": ["deliver"]}
        )
        await s.drain(sync=sync)
        added = [e["data"]["courier"] for e in s.journal() if e["type"] == "courier.added"]
        assert "r3" in added, (new["id"], added)
    finally:
        await sync.close()
        await again.stop()
        again.close()


def test_first_seq_when_only_kept_anchors_remain_after_a_go_back(tmp_path) -> None:
    """All acknowledged events pruned but the kept anchor (seq 1); the back office then
    goes back to 0. The next push carries a first_seq of 1 or more and sends nothing from
    below the pruning mark."""
    store = Store.open(bank_config(tmp_path), FakeClock())
    try:
        for n in range(5):
            store.journal.record(Event.STORAGE_OVER_BUDGET, {"bytes": n, "budget": 1, "unsent": 0})
        store.journal.acknowledge(store.journal.last_seq())
        store.journal.prune_acked(older_than=1e12)
        store.journal.acknowledge(0)  # _acknowledged() moves the mark back
        first_seq = store.journal.held_from()
        sent = [e["seq"] for e in store.journal.unsent(100)]
        assert first_seq >= 1 and all(seq >= first_seq for seq in sent), (first_seq, sent)
    finally:
        store.close()
