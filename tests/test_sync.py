"""Sync v1 against the reference back office: nothing lost, nothing applied twice.

Every test that involves a transport runs over each of ``TRANSPORTS`` (tests/sync_rig.py:
HTTPS, MQTT 5 and, in the slow group, MQTT 3.1.1, through a real mosquitto). Those that
do not:

- ``test_backoff_is_capped_exponential_with_full_jitter``: the pure backoff policy;
- ``test_a_command_without_an_id_is_refused_and_not_recorded``: hands the command to the
  coordinator's ``apply`` itself, with no transport between.

Two run over HTTPS and MQTT 5 only, saying why where they are: the flapping network
(25 s a transport) and the 14 rejection reasons.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from lockerd.domain import Comp, Event
from lockerd.sync.coordinator import Backoff
from tests.sync_rig import LOCKER, OFFICE_KEY, Synced

DAY = 86400.0


async def traffic(s: Synced, tag: str, collect: list[str] = ()) -> list[str]:
    """Residents collect ``collect`` with their codes; a courier drops off two more.

    A code comes from the back office once it was sent there, else from the locker's outbox.
    """
    rig = s.rig
    sent = office_codes(s)
    for barcode in collect:
        code = sent.get(barcode) or rig.code_for(barcode)
        flow = await rig.api.pickups.code(code)
        await rig.person_opens(flow.compartment)
        await rig.person_closes(flow.compartment)
        assert flow.state == "collected"
    barcodes = [f"{tag}-{n:03}" for n in range(2)]
    for n, barcode in enumerate(barcodes):
        await rig.stored(barcode, "S" if n else "M")
    return barcodes


def office_codes(s: Synced) -> dict[str, str]:
    return {
        e["data"]["barcode"]: e["data"]["pickup_code"]
        for e in s.record.in_order()
        if e["type"] == "parcel.stored" and "pickup_code" in e["data"]
    }


async def test_a_week_away_then_every_event_arrives_once_in_order(synced_any) -> None:
    s = synced_any
    await s.drain()
    await s.away()
    delays, inside = [], []
    for day in range(7):
        inside = await traffic(s, f"D{day}", inside)
        for _ in range(3):
            delays.append(await s.sync.round())
        await s.rig.jump(DAY)
    assert s.sync.failures == 21
    assert all(0 <= d <= s.sync.sync.backoff_max_s for d in delays)
    backlog = s.rig.store.journal.unsent_count()
    assert backlog > 100

    await s.back()
    await s.drain()
    s.assert_every_event_arrived_once_in_order()
    pushes = s.pushes()
    assert len(pushes) <= backlog // 100 + 3  # batches of 100, not one request an event
    # The codes of the parcels still inside reached the back office; the locker forgot them.
    assert set(office_codes(s)) == set(inside)
    assert s.rig.store.parcels.notices() == []


async def test_the_codes_the_back_office_was_sent_open_the_doors(synced_any) -> None:
    s = synced_any
    comp = await s.rig.stored("PCL1", "S")
    await s.drain()
    assert s.rig.store.parcels.notices() == []  # gone from the locker once acknowledged
    flow = await s.rig.api.pickups.code(office_codes(s)["PCL1"])
    assert flow.compartment == comp


# MQTT 3.1.1 changes only the carrier's framing, which every other test here runs over;
# this one takes 25 s a transport, so it runs over HTTPS and MQTT 5 only.
@pytest.mark.parametrize("synced_any", ["https", "mqtt"], indirect=True)
async def test_a_flapping_network_loses_and_repeats_nothing(synced_any) -> None:
    s = synced_any
    faults = [
        {"fail_next": 1, "fail_status": 503},
        {"drop_next": 1},
        {"store_at_most": 7},
        {"fail_next": 1, "fail_status": 500},
        {"delay_s": 2.5},  # past the locker's 2 s time limit
        {},
        {"store_at_most": 1},
        {"lose_answers": 1},  # stored, but the answer never came back
    ]
    inside: list[str] = []
    for round_no in range(16):
        inside = await traffic(s, f"F{round_no}", inside)
        s.office.faults = dataclasses.replace(s.office.faults, **faults[round_no % len(faults)])
        await s.sync.round()
        used = s.office.faults  # each fault met a request, over either transport
        assert (used.fail_next, used.drop_next, used.lose_answers) == (0, 0, 0), round_no
        s.office.faults = type(s.office.faults)()
        acked, _ = s.rig.store.journal.sync_position()
        assert acked <= s.record.acked  # the locker never counts an event the office lacks
    await s.drain()
    s.assert_every_event_arrived_once_in_order()
    assert s.record.duplicates > 0  # events were sent again, and stored once


async def test_backoff_is_capped_exponential_with_full_jitter() -> None:
    import random

    backoff = Backoff(2.0, 60.0, random.Random(3))
    for failures, ceiling in [(1, 2), (2, 4), (3, 8), (6, 60), (40, 60)]:
        delays = [backoff.delay(failures) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling * 0.8 and min(delays) < ceiling * 0.2  # spread, not fixed


async def test_refused_credentials_raise_one_alarm_and_no_hammering(synced_any) -> None:
    s = synced_any
    await s.refuse_credentials(True)  # MQTT: the broker's CONNACK refuses them
    delays = [await s.sync.round() for _ in range(4)]
    assert delays == [s.sync.sync.backoff_max_s] * 4
    assert await s.refusals() == 4  # one refused request (or connect) a round, then the long wait
    assert all(status == 401 for _, _, status in s.office.requests)  # and nothing else
    alarms = [e for e in s.journal() if e["type"] == "sync.auth_failed"]
    assert len(alarms) == 1 and s.refused_as in alarms[0]["data"]["error"]
    await s.refuse_credentials(False)
    await s.drain()
    assert not s.sync.auth_failed


async def test_a_missing_token_file_is_an_auth_alarm_that_names_it(synced_any, tmp_path) -> None:
    s = synced_any
    (tmp_path / "sync.token").unlink()
    await s.sync.round()
    [alarm] = [e for e in s.journal() if e["type"] == "sync.auth_failed"]
    assert "sync.token" in alarm["data"]["error"]
    assert s.office.requests == []


async def test_commands_issued_while_offline_apply_once_in_order(synced_any) -> None:
    s = synced_any
    s.office.faults.fail_next = 10**6  # the locker cannot get through
    issued = [
        s.issue(
            "courier.upsert", {"id": "c9", "name": "Nine", "code": "9999", "rights": ["deliver"]}
        ),
        s.issue("parcel.expect", {"barcode": "EXP1", "size": "L", "recipient": "flat-9"}),
        s.issue("parcel.expect", {"barcode": "EXP1", "size": "M", "hold_hours": 24}),
        s.issue("compartment.disable", {"compartment": "S2", "reason": "hinge broken"}),
        s.issue("parcel.expect", {"barcode": "EXP2"}),
        s.issue("parcel.cancel", {"barcode": "EXP2"}),
        s.issue("courier.revoke", {"id": "c9"}),
    ]
    for _ in range(3):
        await s.sync.round()
    assert s.sync.failures == 3
    s.office.faults = type(s.office.faults)(duplicate_commands=True)
    await s.drain()
    await s.drain()  # the duplicate page comes round again
    applied = [e["data"]["id"] for e in s.journal() if e["type"] == "command.applied"]
    assert applied == [c["id"] for c in issued]
    assert s.rig.store.compartments.get("S2").state == Comp.OUT_OF_SERVICE
    parcels = {p.barcode: p for p in s.rig.store.parcels.all()}
    assert (parcels["EXP1"].size, parcels["EXP1"].hold_hours) == ("M", 24)
    assert parcels["EXP2"].state == "cancelled"
    rows = s.rig.store.db.conn.execute("SELECT id, outcome FROM inbox ORDER BY rowid").fetchall()
    assert [tuple(r) for r in rows] == [(c["id"], "applied") for c in issued]

    # The back office delivers the same command again: nothing happens a second time.
    s.office.locker("test-locker").commands.append(issued[3])
    before = len(s.journal())
    await s.drain()
    assert [e["type"] for e in s.journal()[before:]] == []


async def test_an_expected_parcel_keeps_its_hold_time_when_stored(synced_any) -> None:
    s = synced_any
    s.issue("parcel.expect", {"barcode": "EXP1", "size": "S", "hold_hours": 6})
    await s.drain()
    await s.rig.stored("EXP1")
    stored = next(e for e in s.journal() if e["type"] == "parcel.stored")
    assert stored["data"]["pickup_by"] == pytest.approx(stored["at"] + 6 * 3600)


async def test_a_revoked_courier_is_logged_out_and_cannot_log_in(synced_any) -> None:
    s = synced_any
    s.issue("courier.upsert", {"id": "c9", "code": "9999", "rights": ["deliver", "collect"]})
    await s.drain()
    token = await s.rig.courier("9999")
    s.issue("courier.revoke", {"id": "c9"})
    await s.drain()
    with pytest.raises(Exception) as ended:
        s.rig.locker.session(token)
    assert ended.value.code == "session_expired"
    with pytest.raises(Exception) as refused:
        await s.rig.courier("9999")
    assert refused.value.code == "wrong_code"


# The reasons are the coordinator's whatever carried the command: 14 cases over HTTPS and
# MQTT 5 (MQTT 3.1.1 carries rejections in test_an_expired_command_is_rejected_unapplied).
@pytest.mark.parametrize("synced_any", ["https", "mqtt"], indirect=True)
@pytest.mark.parametrize(
    ("kind", "data", "reason"),
    [
        ("parcel.expect", {"barcode": "XL01", "size": "XXL"}, "no size 'XXL'"),
        ("parcel.cancel", {"barcode": "NOPE1"}, "no expected parcel NOPE1"),
        ("parcel.extend", {"barcode": "NOPE1", "pickup_by": 1900000000}, "not in the locker"),
        ("courier.revoke", {"id": "nobody"}, "no active courier 'nobody'"),
        ("compartment.disable", {"compartment": "Z9"}, "no compartment 'Z9'"),
        ("compartment.enable", {"compartment": "S1"}, "S1 is free, not out of service"),
        ("parcel.expect", {"barcode": "XL01", "colour": "red"}, "invalid: data has unknown field"),
        ("parcel.expect", {}, "invalid: data.barcode is missing"),
        ("parcel.expect", {"barcode": "a b"}, "invalid: data.barcode 'a b' is not valid"),
        ("parcel.expect", {"barcode": "G0001", "group": "flat 12"}, "invalid: data.group"),
        ("courier.upsert", {"id": "c", "code": "1234", "rights": []}, "invalid: data.rights"),
        ("locker.reboot", {}, "invalid: unknown command type 'locker.reboot'"),
        # found by the fuzz (tests/test_fuzz_sync.py): a type that is a list or an
        # object ended the round with a TypeError, so the command came back every round
        ([], {}, "invalid: unknown command type []"),
        ({"parcel": 1}, {}, "invalid: unknown command type {'parcel': 1}"),
    ],
)
async def test_a_command_that_cannot_apply_is_rejected_with_its_reason(
    synced_any, kind, data, reason
) -> None:
    s = synced_any
    before = s.rig.store.parcels.all()
    command = s.issue(kind, data)
    await s.drain()
    await s.drain()  # the rejection event itself reaches the back office
    [rejected] = [e for e in s.record.in_order() if e["type"] == "command.rejected"]
    assert rejected["data"]["id"] == command["id"] and reason in rejected["data"]["reason"]
    assert s.rig.store.parcels.all() == before


async def test_an_expired_command_is_rejected_unapplied(synced_any) -> None:
    s = synced_any
    before = s.rig.store.parcels.all()
    s.issue("parcel.expect", {"barcode": "LATE1"}, expires_in=-5)
    await s.drain()
    [rejected] = [e for e in s.journal() if e["type"] == "command.rejected"]
    assert rejected["data"]["reason"] == "expired before it arrived"
    assert s.rig.store.parcels.all() == before


async def test_a_command_without_an_id_is_refused_and_not_recorded(synced) -> None:
    s = synced
    assert await s.sync.apply({"type": "parcel.expect", "data": {"barcode": "X1"}}) == "rejected"
    assert await s.sync.apply("not an object") == "rejected"
    assert s.rig.store.db.conn.execute("SELECT COUNT(*) FROM inbox").fetchone()[0] == 0


# -- remote opens --------------------------------------------------------------------


async def test_a_signed_remote_open_opens_once_and_asks_for_a_check(synced_any) -> None:
    s = synced_any
    s.issue("compartment.open", {"compartment": "M1", "reason": "parcel stuck"})
    await s.drain()
    assert s.rig.unlocks_of("M1") == 1
    [intent] = [e for e in s.journal() if e["type"] == "unlock.intent"]
    assert intent["data"]["purpose"] == "remote"
    await s.rig.person_opens("M1")
    await s.rig.person_closes("M1")
    assert s.rig.state("M1") == Comp.NEEDS_CHECK


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        ("forged", "the signature does not verify"),
        ("other-locker", "the signature does not verify"),
        ("altered", "the signature does not verify"),
        ("replayed", "open_seq 1 was used by command"),
        ("expired", "expired before it arrived"),
        ("unsigned", "invalid: signature must be a base64 Ed25519 signature"),
    ],
)
async def test_forged_replayed_and_expired_remote_opens_energize_nothing(
    synced_any, tamper, reason
) -> None:
    s = synced_any
    if tamper == "replayed":
        s.issue("compartment.open", {"compartment": "S1"})
        await s.drain()
        await s.rig.person_opens("S1")
        await s.rig.person_closes("S1")
    pulses = s.rig.unlocks_of("M1")
    expires_in = -5 if tamper == "expired" else 3600
    seq = {"open_seq": 1} if tamper == "replayed" else {}
    command = s.issue("compartment.open", {"compartment": "M1", **seq}, expires_in=expires_in)
    if tamper == "forged":
        s.office.signing_key = Ed25519PrivateKey.generate()
        command["signature"] = s.office.sign("test-locker", command)
        s.office.signing_key = OFFICE_KEY
    elif tamper == "other-locker":
        command["signature"] = s.office.sign("another-locker", command)
    elif tamper == "altered":
        command["data"]["compartment"] = "L1"
    elif tamper == "unsigned":
        command["signature"] = ""
    await s.drain()
    assert s.rig.unlocks_of("M1") == pulses and s.rig.unlocks_of("L1") == 0
    [rejected] = [e for e in s.journal() if e["type"] == "command.rejected"]
    assert rejected["data"]["id"] == command["id"] and reason in rejected["data"]["reason"]
    assert rejected["data"]["type"] == "compartment.open"


async def test_remote_opens_are_refused_where_no_key_is_configured(synced_any) -> None:
    s = synced_any
    s.sync.keys = []
    s.issue("compartment.open", {"compartment": "M1"})
    await s.drain()
    assert s.rig.unlocks_of("M1") == 0
    [rejected] = [e for e in s.journal() if e["type"] == "command.rejected"]
    assert rejected["data"]["reason"] == "remote opens are not enabled here"


# -- retention, budget, heartbeat, and never waiting -------------------------------------


async def test_acknowledged_events_are_pruned_and_unsent_ones_never(synced_any) -> None:
    s = synced_any
    await s.rig.stored("OLD1", "S")
    await s.drain()
    acked = s.rig.store.journal.sync_position()[0]
    await s.away()
    await s.rig.stored("NEW1", "S")
    await s.rig.jump(31 * DAY)
    s.sync._next_prune = 0
    await s.sync.round()  # offline: housekeeping still runs
    seqs = [e["seq"] for e in s.journal()]
    assert min(seqs) > acked  # the old, acknowledged events are gone
    assert any(e["data"].get("barcode") == "NEW1" for e in s.journal())
    await s.back()
    await s.drain()
    assert [e["seq"] for e in s.record.in_order()][-len(seqs) :] == seqs[-len(seqs) :]


async def test_a_database_over_its_budget_raises_one_alarm(synced_any) -> None:
    s = synced_any
    s.sync.sync = dataclasses.replace(s.sync.sync, disk_budget_mb=0.01)
    for _ in range(3):
        await s.sync.round()
    alarms = [e for e in s.journal() if e["type"] == str(Event.STORAGE_OVER_BUDGET)]
    assert len(alarms) == 1 and alarms[0]["data"]["bytes"] > alarms[0]["data"]["budget"]


async def test_heartbeats_report_health_on_their_period(synced_any) -> None:
    s = synced_any
    await s.sync.round()
    await s.sync.round()
    await s.rig.jump(s.sync.sync.heartbeat_s)
    await s.sync.round()
    beats = [e for e in s.journal() if e["type"] == "heartbeat"]
    assert len(beats) == 2
    assert beats[0]["data"]["compartments"] == {"free": 5}
    assert beats[0]["data"]["boards"] == {"cu0": True}
    assert beats[0]["data"]["audit_head"] == "0" * 64  # no technician has acted yet
    assert beats[0]["data"]["audit_seq"] == 0
    # Every field the code sends is the one the OpenAPI file documents.
    spec = json.loads((Path(__file__).parent.parent / "docs" / "sync-v1.openapi.json").read_text())
    schemas = spec["components"]["schemas"]
    documented = set(schemas["AuditAnchor"]["properties"])
    documented |= set(schemas["Heartbeat"]["allOf"][1]["properties"])
    assert set(beats[0]["data"]) == documented


async def test_the_back_office_keeps_the_last_heartbeat_as_half_of_presence(synced_any) -> None:
    s = synced_any
    await s.drain()
    await s.rig.jump(s.sync.sync.heartbeat_s)
    await s.drain()
    beats = [e for e in s.record.in_order() if e["type"] == "heartbeat"]
    assert len(beats) == 2
    assert s.office.db.presence(LOCKER)["heartbeat_at"] == beats[-1]["at"]


async def test_a_slow_back_office_never_holds_up_a_pickup(synced_any) -> None:
    s = synced_any
    comp = await s.rig.stored("PCL1", "S")
    code = s.rig.code_for("PCL1")
    s.office.faults.delay_s = 1.5
    syncing = asyncio.ensure_future(s.sync.round())
    await s.office.wait_for(lambda: s.office.arrivals > 0)
    flow = await s.rig.api.pickups.code(code)
    await s.rig.person_opens(comp)
    await s.rig.person_closes(comp)
    assert flow.state == "collected" and not syncing.done()
    await syncing


async def test_an_unexpected_fault_in_a_round_backs_off_instead_of_ending_sync(synced_any) -> None:
    s = synced_any

    def broken(limit: int) -> list:
        raise RuntimeError("disk on fire")

    s.rig.store.journal.unsent = broken
    delay = await s.sync.round()
    assert 0 <= delay <= s.sync.sync.backoff_base_s and "disk on fire" in s.sync.last_error
    del s.rig.store.journal.unsent
    await s.drain()


async def test_a_compartment_is_enabled_remotely_only_with_its_door_shut(synced_any) -> None:
    s = synced_any
    s.rig.door("S1").force()  # opened with no unlock: it needs a check
    await s.rig.polls()
    assert s.rig.state("S1") == Comp.NEEDS_CHECK
    s.issue("compartment.enable", {"compartment": "S1"})
    await s.drain()
    [rejected] = [e for e in s.journal() if e["type"] == "command.rejected"]
    assert rejected["data"]["reason"] == "close S1 before putting it back in use"
    await s.rig.person_closes("S1")
    s.issue("compartment.enable", {"compartment": "S1"})
    await s.drain()
    assert s.rig.state("S1") == Comp.FREE
