"""The store: durability settings, migrations, atomic journal, device key, reconciliation."""

import dataclasses
import sqlite3

import pytest

from lockerd.clock import FakeClock
from lockerd.domain import Door, Event
from lockerd.errors import DeviceKeyError, Refused, StoreError
from lockerd.store import Database, Store
from lockerd.store.migrations import MIGRATIONS
from tests.rig import bank_config
from tests.schemas import as_schema


@pytest.fixture
def store(tmp_path):
    s = Store.open(bank_config(tmp_path), FakeClock())
    s.compartments.sync_layout()
    yield s
    s.close()


def test_durability_settings_are_on(store) -> None:
    conn = store.db.conn
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert store.db.schema_version == len(MIGRATIONS)


def test_a_newer_schema_is_refused(tmp_path) -> None:
    path = tmp_path / "lockerd.db"
    sqlite3.connect(path).execute(f"PRAGMA user_version={len(MIGRATIONS) + 1}")
    with pytest.raises(StoreError, match="newer than this lockerd"):
        Database(path)


def test_migrations_are_idempotent_on_reopen(tmp_path) -> None:
    Database(tmp_path / "x.db").close()
    db = Database(tmp_path / "x.db")
    assert db.schema_version == len(MIGRATIONS)


def test_a_parcel_stored_before_code_lengths_were_recorded_counts_as_eight_digits(
    tmp_path, monkeypatch
) -> None:
    # A schema-6 database with a parcel in it, as the lockerd of fixed 8-digit codes left it.
    config = bank_config(tmp_path)
    config = dataclasses.replace(config, pickup=dataclasses.replace(config.pickup, code_length=10))
    as_schema(monkeypatch, 8)
    Store.open(config, FakeClock()).close()
    db = Database(config.database_path)
    db.conn.execute("ALTER TABLE parcels DROP COLUMN code_length")
    db.conn.execute(
        "INSERT INTO parcels (barcode, state, code_hmac, created_at, updated_at)"
        " VALUES ('PCL1', 'stored', x'00', 0, 0)"
    )
    db.conn.execute("PRAGMA user_version = 6")
    db.close()
    monkeypatch.undo()
    store = Store.open(config, FakeClock())
    try:
        assert store.db.schema_version == len(MIGRATIONS) == 11
        assert store.parcels.code_lengths() == [8, 10]
    finally:
        store.close()


def test_outbound_parcels_of_schema_10_keep_their_rows_and_references(
    tmp_path, monkeypatch
) -> None:
    """Migration 11 rebuilds the outbound table (for the state 'removed'): every row, and
    the unlock intents that name one, come through; the foreign keys hold."""
    config = bank_config(tmp_path)
    as_schema(monkeypatch, 10)
    store = Store.open(config, FakeClock())
    store.compartments.sync_layout()
    store.close()
    db = Database(config.database_path)
    db.conn.execute(
        "INSERT INTO outbound (id, kind, reference, size, carrier, state, compartment_id, code_id,"
        " code_expires, created_at, updated_at) VALUES (7, 'send', 'SHIP0007', 'S', 'DHL',"
        " 'awaiting_collection', 'S1', 'k-7', 9, 1, 2)"
    )
    db.conn.execute(
        "INSERT INTO unlock_intents (compartment_id, purpose, state, actor, created_at,"
        " updated_at, outbound_id) VALUES ('S1', 'dropoff', 'done', 'public', 1, 2, 7)"
    )
    rows = [tuple(r) for r in db.conn.execute("SELECT * FROM outbound")]
    db.close()
    monkeypatch.undo()
    store = Store.open(config, FakeClock())
    try:
        conn = store.db.conn
        assert [tuple(r) for r in conn.execute("SELECT * FROM outbound")] == rows
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        with pytest.raises(sqlite3.IntegrityError):  # the intent's reference is enforced
            conn.execute("DELETE FROM outbound WHERE id = 7")
        conn.execute("UPDATE outbound SET state = 'removed' WHERE id = 7")
        with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
            conn.execute("UPDATE outbound SET state = 'lost' WHERE id = 7")
    finally:
        store.close()


def test_deposits_cut_short_before_schema_11_hold_only_compartments_not_yet_checked(
    tmp_path, monkeypatch
) -> None:
    """Before migration 11, putting a compartment back in use was the technician's word
    that it was empty: its deposits cut short count as answered. One whose compartment
    still waits for its check holds it, as a new one would."""
    config = bank_config(tmp_path)
    as_schema(monkeypatch, 10)
    store = Store.open(config, FakeClock())
    store.compartments.sync_layout()
    store.close()
    db = Database(config.database_path)
    db.conn.execute("UPDATE compartments SET state = 'needs_check' WHERE id = 'S2'")
    for comp in ("S1", "S2"):
        db.conn.execute(
            "INSERT INTO unlock_intents (compartment_id, purpose, state, barcode, actor,"
            " created_at, updated_at) VALUES (?, 'dropoff', 'interrupted', ?, 'c1', 1, 2)",
            (comp, f"OLD-{comp}"),
        )
    db.close()
    monkeypatch.undo()
    store = Store.open(config, FakeClock())
    try:
        conn = store.db.conn
        assert store.intents.cut_short_at(conn, "S1") is None
        held = store.intents.cut_short_at(conn, "S2")
        assert held is not None and held.barcode == "OLD-S2"
        with pytest.raises(Refused, match="S2 may hold parcel OLD-S2"):
            store.custody.return_to_service("S2", "back office")
    finally:
        store.close()


def test_a_journal_pruned_before_migration_8_says_where_it_holds_every_event(
    tmp_path, monkeypatch
) -> None:
    config = bank_config(tmp_path)
    as_schema(monkeypatch, 8)
    store = Store.open(config, FakeClock())
    for n in range(12):
        store.journal.record(Event.STORAGE_OVER_BUDGET, {"bytes": n, "budget": 1, "unsent": 0})
    last = store.journal.last_seq()
    store.close()
    db = Database(config.database_path)  # an older lockerd pruned all but one early event
    db.conn.execute("DELETE FROM journal WHERE seq > 2 AND seq < ?", (last - 4,))
    db.conn.execute("DELETE FROM meta WHERE key = 'sync.pruned_to'")
    db.conn.execute("PRAGMA user_version = 7")
    db.close()
    monkeypatch.undo()
    store = Store.open(config, FakeClock())
    try:
        assert store.journal.held_from() == last - 4
    finally:
        store.close()


def test_state_change_and_event_commit_together(store) -> None:
    before = store.journal.events()
    with pytest.raises(RuntimeError), store.context.change() as conn:
        store.compartments.set(conn, "S1", "out_of_service", "test")
        store.context.event(Event.OUT_OF_SERVICE, {"compartment": "S1", "reason": "test"})
        raise RuntimeError("power cut mid-transaction")
    assert store.compartments.get("S1").state == "free"
    assert store.journal.events() == before


def test_journal_has_no_gaps_after_a_rollback(store) -> None:
    with store.context.change():
        store.context.event(Event.IN_SERVICE, {"compartment": "S1", "state": "free", "actor": "t1"})
    with pytest.raises(RuntimeError), store.context.change():
        store.context.event(Event.IN_SERVICE, {"compartment": "S1", "state": "free", "actor": "t2"})
        raise RuntimeError
    with store.context.change():
        store.context.event(Event.IN_SERVICE, {"compartment": "S1", "state": "free", "actor": "t3"})
    seqs = [e["seq"] for e in store.journal.events()]
    assert seqs == list(range(1, len(seqs) + 1))


def test_journal_outside_a_transaction_is_refused(store) -> None:
    with pytest.raises(StoreError):
        store.db.journal(0.0, "x", {})


def test_check_constraints_hold(store) -> None:
    with pytest.raises(sqlite3.IntegrityError), store.context.change() as conn:
        conn.execute("UPDATE compartments SET state = 'bogus' WHERE id = 'S1'")


def test_device_key_file_is_private_and_outside_the_database(store) -> None:
    key_path = store.config.key_path
    assert key_path.stat().st_mode & 0o777 == 0o600
    assert key_path.read_bytes() not in store.config.database_path.read_bytes()


def test_wrong_key_is_refused(tmp_path) -> None:
    config = bank_config(tmp_path)
    Store.open(config, FakeClock()).close()
    config.key_path.write_bytes(b"k" * 32)
    with pytest.raises(StoreError, match="not the device key this database was made with"):
        Store.open(config, FakeClock())


def test_missing_key_with_codes_in_the_database_is_refused(tmp_path) -> None:
    config = bank_config(tmp_path)
    store = Store.open(config, FakeClock())
    store.compartments.sync_layout()
    store.seed_demo(config.demo)  # couriers' codes are HMACs under the key
    store.close()
    config.key_path.unlink()
    with pytest.raises(DeviceKeyError, match="restore the key file"):
        Store.open(config, FakeClock())


def test_dropping_a_compartment_that_holds_a_parcel_is_refused(tmp_path) -> None:
    from lockerd.config import parse
    from tests.rig import bank_text

    config = bank_config(tmp_path)
    store = Store.open(config, FakeClock())
    store.compartments.sync_layout()
    r = store.custody.reserve_for_dropoff("c1", "PCL1", "L")
    store.custody.door_opened(r.compartment_id)
    store.custody.door_closed(r.compartment_id)
    store.close()
    text = bank_text(tmp_path)
    smaller = parse(text[: text.index('[[compartment]]\nid = "L1"')], tmp_path / "b.toml")
    with pytest.raises(StoreError, match="L1 holds parcel PCL1"):
        Store.open(smaller, FakeClock()).compartments.sync_layout()


@pytest.mark.parametrize(
    ("setup", "door", "expected", "reason"),
    [
        ("free", Door.CLOSED, "free", None),
        ("free", Door.UNKNOWN, "free", None),
        ("free", Door.OPEN, "needs_check", "open_at_start"),
        ("occupied", Door.CLOSED, "occupied", None),
        ("occupied", Door.OPEN, "needs_check", "open_at_start"),
        ("reserved", Door.CLOSED, "needs_check", "interrupted_unlock"),
        ("opened", Door.CLOSED, "needs_check", "interrupted_unlock"),
        ("opened", Door.OPEN, "needs_check", "interrupted_unlock"),
        ("out_of_service", Door.OPEN, "out_of_service", "door_did_not_open"),
    ],
)
def test_reconcile_after_restart(store, setup, door, expected, reason) -> None:
    if setup in ("occupied", "reserved", "opened", "out_of_service"):
        r = store.custody.reserve_for_dropoff("c1", "PCL1", "S")
        if setup == "out_of_service":
            store.custody.unlock_failed(r.intent_id)
        if setup in ("occupied", "opened"):
            store.custody.door_opened("S1")
        if setup == "occupied":
            store.custody.door_closed("S1")
    store.custody.reconcile({"S1": door})
    row = store.compartments.get("S1")
    assert (row.state, row.reason) == (expected, reason)
    live = store.db.conn.execute(
        "SELECT COUNT(*) FROM unlock_intents WHERE state IN ('pending','opened','released')"
    ).fetchone()[0]
    assert live == 0
