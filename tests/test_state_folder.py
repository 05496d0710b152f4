"""The state folder at rest: file modes, no plaintext pickup code on disk, one daemon per folder."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
import sys
from pathlib import Path

import pytest

from lockerd.clock import FakeClock
from lockerd.errors import StoreError
from lockerd.store import Store
from tests.daemon import ROOT, Daemon
from tests.rig import Rig, bank_config, bank_text


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def on_disk(folder: Path) -> bytes:
    """Every byte of the database, its write-ahead log and shared-memory index."""
    return b"".join(
        p.read_bytes()
        for p in (folder / name for name in ("lockerd.db", "lockerd.db-wal"))
        if p.exists()
    )


async def test_a_new_state_folder_and_its_files_are_private(tmp_path) -> None:
    state = tmp_path / "state"
    rig = await Rig(bank_config(state)).start()
    try:
        await rig.stored("PCL1", "S")  # a write, so the WAL and its index exist
        assert mode(state) == 0o700
        for name in ("lockerd.db", "lockerd.db-wal", "lockerd.db-shm", "device.key"):
            assert mode(state / name) == 0o600, name
    finally:
        await rig.stop()


async def test_looser_modes_left_by_an_older_lockerd_are_tightened_at_start(tmp_path) -> None:
    state = tmp_path / "state"
    store = Store.open(bank_config(state), FakeClock())
    store.close()
    os.chmod(state, 0o755)
    for name in ("lockerd.db", "device.key"):
        os.chmod(state / name, 0o644)
    Store.open(bank_config(state), FakeClock()).close()
    assert mode(state) == 0o700
    assert mode(state / "lockerd.db") == mode(state / "device.key") == 0o600


def test_a_state_folder_that_cannot_be_made_private_is_refused(tmp_path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to give the folder to another user")
    parent = Path(f"/tmp/lockerd-not-ours-{os.getpid()}")
    parent.mkdir(mode=0o755)
    state = parent / "state"
    state.mkdir(mode=0o755)
    os.chown(state, 65534, 65534)
    # Root may chmod anything; a daemon running as another user may not: seen from
    # a child that drops to nobody's uid, the refusal names the folder.
    code = (
        "import os, sys, pathlib; from lockerd.store._files import private_folder;"
        "os.setgid(65533); os.setuid(65533); private_folder(pathlib.Path(sys.argv[1]))"
    )
    import subprocess

    done = subprocess.run(
        [sys.executable, "-c", code, str(state)], capture_output=True, text=True, cwd=ROOT
    )
    state.rmdir()
    parent.rmdir()
    assert done.returncode != 0
    assert f"{state}: cannot make the state folder private" in done.stderr


async def test_secure_delete_is_on(rig) -> None:
    assert rig.store.db.conn.execute("PRAGMA secure_delete").fetchone()[0] == 1


async def test_no_plaintext_code_in_the_database_files_before_or_after_the_pickup(rig) -> None:
    state = rig.config.database_path.parent
    comp = await rig.stored("PCL1", "S")
    code = rig.code_for("PCL1")
    assert code.encode() not in on_disk(state), "a code waiting for delivery is sealed"
    await rig.api.pickups.code(code)
    await rig.person_opens(comp)
    await rig.person_closes(comp)
    assert rig.store.parcels.all()[-1].state == "collected"
    assert code.encode() not in on_disk(state)


async def test_without_anyone_to_deliver_it_no_code_is_kept(tmp_path) -> None:
    # No back office and no demo page: nobody would ever read a notice, so none is written.
    rig = await Rig(bank_config(tmp_path), notices=None).start()
    try:
        await rig.stored("PCL1", "S")
        count = rig.store.db.conn.execute("SELECT COUNT(*) FROM pickup_notices").fetchone()
        assert tuple(count) == (0,)
        stored = next(e for e in rig.store.journal.events() if e["type"] == "parcel.stored")
        assert "pickup_code" not in stored["data"]
    finally:
        await rig.stop()


async def test_a_plaintext_notice_from_an_older_lockerd_is_sealed_at_start(tmp_path) -> None:
    rig = await Rig(bank_config(tmp_path)).start()
    await rig.stored("PCL1", "S")
    code = rig.code_for("PCL1")
    rig.store.db.conn.execute("UPDATE pickup_notices SET code = ?", (code,))
    await rig.stop()
    store = Store.open(bank_config(tmp_path), FakeClock(), notices=True)
    try:
        assert [n.code for n in store.parcels.notices()] == [code]
        raw = store.db.conn.execute("SELECT code FROM pickup_notices").fetchone()[0]
        assert code not in raw
        sent = [e["data"] for e in store.journal.unsent(100) if e["type"] == "parcel.stored"]
        assert [data["pickup_code"] for data in sent] == [code]
    finally:
        store.close()


# -- one daemon per state folder -------------------------------------------------


async def test_a_second_daemon_on_the_same_state_folder_stops_and_writes_nothing(tmp_path) -> None:
    path = tmp_path / "locker.toml"
    path.write_text(bank_text(tmp_path / "state"))
    async with Daemon(path) as first:
        status, before = await first.call("GET", "/api/status")
        assert status == 200
        second = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "lockerd",
            "run",
            str(path),
            "--port",
            "0",
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            _, err = await asyncio.wait_for(second.communicate(), 30)
        except TimeoutError:
            second.kill()
            await second.wait()
            pytest.fail("a second lockerd ran on the same state folder")
        assert second.returncode != 0
        assert f"{tmp_path / 'state'} is in use by another lockerd (pid {first.proc.pid})" in (
            err.decode()
        )
        status, after = await first.call("GET", "/api/status")
        assert after["last_seq"] == before["last_seq"]
    db = sqlite3.connect(tmp_path / "state" / "lockerd.db")
    started = db.execute("SELECT COUNT(*) FROM journal WHERE type = 'locker.started'").fetchone()
    assert started == (1,)


def test_the_lock_is_free_again_once_its_holder_is_gone(tmp_path) -> None:
    from lockerd.store._files import StateLock

    lock = StateLock.acquire(tmp_path)
    with pytest.raises(StoreError, match=f"pid {os.getpid()}"):
        StateLock.acquire(tmp_path)
    lock.release()
    StateLock.acquire(tmp_path).release()


def test_a_device_key_of_another_owner_is_kept_unless_everyone_may_read_it(tmp_path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to give the key to another user")
    Store.open(bank_config(tmp_path), FakeClock()).close()
    key = tmp_path / "device.key"
    os.chown(key, 65534, os.getegid())  # as root:lockerd 0640 in /etc/lockerd would be
    os.chmod(key, 0o640)
    Store.open(bank_config(tmp_path), FakeClock()).close()
    assert mode(key) == 0o640
    os.chmod(key, 0o644)
    with pytest.raises(StoreError, match=f"{key}: the device key is readable by every user"):
        Store.open(bank_config(tmp_path), FakeClock())
