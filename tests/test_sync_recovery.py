"""Sync v1's ways back: a back office restored without what the locker pruned, a lost
cursor, failing event intake, a proxy's body limit, and the reference back office's
restart."""

from __future__ import annotations

import dataclasses
import json

import pytest

from lockerd.domain import Event
from lockerd.sync import backoffice
from lockerd.sync.backoffice import ReferenceBackOffice
from tests.sync_rig import LOCKER, OFFICE_KEY, PULLS, PUSHES, TOKEN, Synced, statuses

DAY = 86400.0


async def _pruned(s: Synced) -> int:
    """Traffic, all acknowledged, then a month on: the acknowledged events are pruned.
    The lowest sequence number the locker still holds every event from."""
    await s.rig.stored("OLD1", "S")
    await s.rig.stored("OLD2", "M")
    await s.drain()
    await s.rig.jump(31 * DAY)
    s.sync._next_prune = 0
    await s.drain()
    held_from = s.rig.store.journal.held_from()
    assert held_from > 1
    assert [e["seq"] for e in s.journal() if e["seq"] >= held_from] == list(
        range(held_from, s.rig.store.journal.last_seq() + 1)
    )
    return held_from


def _alarms(s: Synced, count: int) -> None:
    """``count`` events of about 250 bytes each."""
    for n in range(count):
        data = {"board": f"board-{n:03}", "key": "closed_bit", "detail": "x" * 160}
        s.rig.store.journal.record(Event.BOARD_POLARITY_SUSPECT, data)


def _restored_empty(s: Synced) -> None:
    """The back office loses everything it knew of the locker (restored from nothing)."""
    s.office.lockers.clear()


async def test_a_back_office_restored_empty_adopts_the_locker_from_first_seq(synced_any) -> None:
    s = synced_any
    held_from = await _pruned(s)
    _restored_empty(s)
    await s.rig.stored("NEW1", "S")
    await s.sync.round()
    assert s.sync.failures == 0, s.sync.last_error  # adopted, and sent again, in one round
    await s.drain()
    record = s.record
    assert record.adopted_from == held_from - 1
    journal = [e for e in s.journal() if e["seq"] >= held_from]
    sent = record.in_order()
    assert [e["seq"] for e in sent] == [e["seq"] for e in journal]
    assert record.acked == journal[-1]["seq"] == s.rig.store.journal.sync_position()[0]
    assert record.duplicates == len([e for e in sent if e["seq"] > held_from + 2])
    barcodes = [e["data"].get("barcode") for e in sent if e["type"] == "parcel.stored"]
    assert barcodes == ["NEW1"]  # with its pickup code, the old ones' gone with them
    assert "pickup_code" in next(e for e in sent if e["type"] == "parcel.stored")["data"]
    # Commands flow again too.
    s.issue("parcel.expect", {"barcode": "EXP9", "size": "S"})
    await s.drain()
    applied = [e for e in s.record.in_order() if e["type"] == "command.applied"]
    assert [e["data"]["type"] for e in applied] == ["parcel.expect"]


async def test_a_back_office_that_will_not_adopt_fails_the_round_and_says_why(
    synced_any, monkeypatch
) -> None:
    s = synced_any
    held_from = await _pruned(s)
    _restored_empty(s)
    # A back office that ignores first_seq: its mark stays at 0.
    parse = backoffice._push
    monkeypatch.setattr(backoffice, "_push", lambda body: (1, parse(body)[1]))
    await s.rig.stored("NEW1", "S")
    for _ in range(2):
        await s.sync.round()
    assert s.sync.failures == 2
    assert f"this locker holds them only from {held_from}" in s.sync.last_error
    assert "must adopt from first_seq" in s.sync.last_error
    assert s.rig.store.journal.held_from() == held_from  # nothing more was lost on the locker
    assert s.rig.store.journal.unsent_count() > 0


async def test_an_unknown_cursor_starts_the_commands_again_and_applies_none_twice(
    synced_any,
) -> None:
    s = synced_any
    first = s.issue("courier.upsert", {"id": "c1", "code": "1111", "rights": ["deliver"]})
    await s.drain()
    cursor = s.rig.store.journal.sync_position()[1]
    assert cursor
    # The back office comes back from an older copy: another instance, every command
    # it had re-sent, and a new one.
    s.office.db.instance = "restored"
    s.office.locker(LOCKER).commands[:] = [first]
    revoke = s.issue("courier.revoke", {"id": "c1"})
    await s.drain()
    assert s.sync.failures == 0
    assert 410 in statuses(s.office, PULLS)  # over MQTT: the error answer on rpc/res
    applied = [e["data"]["id"] for e in s.journal() if e["type"] == "command.applied"]
    assert applied == [first["id"], revoke["id"]]  # the old one once, the new one once
    assert s.rig.store.journal.sync_position()[1].startswith("restored.")


async def test_a_410_to_the_empty_cursor_is_a_protocol_error(synced_any, monkeypatch) -> None:
    s = synced_any
    monkeypatch.setattr(s.office, "_position", lambda cursor, issued: None)  # knows none
    await s.sync.round()
    assert s.sync.failures == 1
    assert "does not know cursor ''" in s.sync.last_error


async def test_a_failing_event_intake_still_delivers_a_revoke(synced_any) -> None:
    s = synced_any
    s.issue("courier.upsert", {"id": "c9", "code": "9999", "rights": ["deliver"]})
    await s.drain()
    token = await s.rig.courier("9999")
    s.office.faults.fail_pushes = 10**6
    s.issue("courier.revoke", {"id": "c9"})
    await s.sync.round()
    assert s.sync.failures == 1  # the round failed on its push...
    with pytest.raises(Exception) as ended:  # ...and the revoke arrived all the same
        s.rig.locker.session(token)
    assert ended.value.code == "session_expired"
    s.office.faults.fail_pushes = 0
    await s.drain()
    s.assert_every_event_arrived_once_in_order()


async def test_pushes_keep_within_the_byte_cap(synced_any) -> None:
    s = synced_any
    s.sync.sync = dataclasses.replace(s.sync.sync, batch_bytes=4096)
    _alarms(s, 40)
    await s.drain()
    s.assert_every_event_arrived_once_in_order()
    assert s.office.push_bytes and max(s.office.push_bytes) <= 4096 + s.framing
    assert len(s.office.push_bytes) > 2


async def test_a_413_halves_the_batch_until_it_passes(synced_any) -> None:
    s = synced_any
    _alarms(s, 40)
    await s.cap_body(6000)  # a proxy in front of the back office; the broker's packet size
    await s.drain()
    s.assert_every_event_arrived_once_in_order()
    pushed = statuses(s.office, PUSHES)
    assert s.refused_too_large() and pushed[-1] == 200
    assert s.sync.batch < 100
    accepted = [n for n, st in zip(s.office.push_bytes, pushed, strict=True) if st == 200]
    assert max(accepted) <= 6000 + s.framing


async def test_a_single_event_over_a_proxys_limit_fails_the_round(synced_any) -> None:
    s = synced_any
    await s.rig.stored("ONE1", "S")
    await s.cap_body(100)
    await s.sync.round()
    if getattr(s, "version", None) == "3.1.1":
        # A 3.1.1 broker only drops the connection, which may be about anything: a push
        # dropped twice in a row, larger than any carried, is what says it is too large
        # (docs/sync-mqtt.md). Until then each drop is a failed round, and the events
        # before the large one go through in smaller pushes.
        assert s.too_large not in s.sync.last_error
        rounds = 1
        while s.too_large not in s.sync.last_error and rounds < 8:
            await s.sync.round()
            rounds += 1
        assert s.sync.failures == rounds
    else:
        assert s.sync.failures == 1
    assert s.too_large in s.sync.last_error
    assert s.sync.batch == 1


async def test_the_reference_back_office_keeps_commands_across_a_restart(
    synced_any, tmp_path
) -> None:
    s = synced_any
    database = tmp_path / "office.db"
    first = ReferenceBackOffice(TOKEN, signing_key=OFFICE_KEY, database=database)
    first.clock = s.rig.clock.time
    await s.serve(first)
    first.issue(LOCKER, "courier.upsert", {"id": "c1", "code": "1111", "rights": ["deliver"]})
    await s.drain()
    await s.unserve(first)
    first.close()

    again = ReferenceBackOffice(TOKEN, signing_key=OFFICE_KEY, database=database)
    again.clock = s.rig.clock.time
    await s.serve(again)
    try:
        revoke = again.issue(LOCKER, "courier.revoke", {"id": "c1"})
        assert revoke["id"] != first.lockers[LOCKER].commands[0]["id"]
        await s.drain()
        applied = [e["data"]["id"] for e in s.journal() if e["type"] == "command.applied"]
        assert applied[-1] == revoke["id"]
        record = again.locker(LOCKER)
        assert record.acked == s.journal()[-1]["seq"]  # it kept what it had stored
        assert statuses(again, PULLS).count(410) == 0
    finally:
        await s.unserve(again)
        again.close()


async def test_a_new_back_office_database_never_reuses_a_command_id(tmp_path) -> None:
    ids = []
    for name in ("a.db", "b.db"):
        office = ReferenceBackOffice(TOKEN, database=tmp_path / name)
        ids.append(office.issue(LOCKER, "courier.revoke", {"id": "c1"})["id"])
        office.close()
    assert ids[0] != ids[1]
    reopened = ReferenceBackOffice(TOKEN, database=tmp_path / "a.db")
    assert reopened.locker(LOCKER).commands[0]["id"] == ids[0]
    assert reopened.issue(LOCKER, "courier.revoke", {"id": "c2"})["id"] != ids[0]
    key = reopened.signing_key
    reopened.close()
    assert ReferenceBackOffice(
        TOKEN, database=tmp_path / "a.db"
    ).signing_key.private_bytes_raw() == (key.private_bytes_raw())


def test_push_bodies_are_measured_as_sent() -> None:
    from lockerd.sync.client import fitting

    events = [{"seq": n, "type": "door.closed", "at": 1.5, "data": {"compartment": "A1"}}
              for n in range(1, 40)]  # fmt: skip
    for limit in (200, 500, 1000, 2000):
        head = fitting(events, 1, limit)
        body = json.dumps({"first_seq": 1, "events": head}, separators=(",", ":"))
        assert len(body) <= limit
        longer = {"first_seq": 1, "events": events[: len(head) + 1]}
        assert len(json.dumps(longer, separators=(",", ":"))) > limit
    assert fitting(events, 1, 10) == events[:1]  # one event always goes
    assert fitting(events, 1, 10**6) == events


def test_the_back_office_command_names_a_database_it_cannot_use(tmp_path, capsys) -> None:
    from lockerd.cli import main

    token = tmp_path / "token"
    token.write_text(TOKEN)
    database = tmp_path / "missing-folder" / "office.db"
    args = ["back-office", "--token-file", str(token), "--database", str(database)]
    assert main(args) == 2
    assert f"--database: cannot use {database}" in capsys.readouterr().err
