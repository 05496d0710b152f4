"""Sync v1 over MQTT against a real mosquitto: restarts, duplicates, reordering, mTLS, caps."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import socket
import ssl
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from aiohttp import WSMsgType, web
from jsonschema import Draft202012Validator
from paho.mqtt.enums import CallbackAPIVersion
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from lockerd.clock import FakeClock
from lockerd.config import parse
from lockerd.config.schema import SyncSection
from lockerd.domain import Event
from lockerd.sync import topics
from lockerd.sync.backoffice import ReferenceBackOffice
from lockerd.sync.client import (
    AuthRejected,
    ServerError,
    TooLarge,
    UnknownCursor,
    Unreachable,
)
from lockerd.sync.mqtt import MqttTransport
from lockerd.sync.officemqtt import OfficeOnBroker
from lockerd.sync.redial import FIRST_RETRY_FLOOR, MINUTE, PER_MINUTE, Redial
from tests.broker import Mosquitto, needs_mosquitto
from tests.event_schemas import SPEC
from tests.mqtt_rig import (
    push_packet_size,
    push_packet_size_of,
    quick_redial,
    synced_over_mqtt,
    transport_for,
)
from tests.pki import Pki
from tests.sync_rig import LOCKER, OFFICE_KEY, TOKEN
from tests.test_config import problems
from tests.test_sync_client import PUSH_ANSWERS
from tests.test_sync_config import with_sync


def events(first: int, last: int) -> list[dict]:
    return [
        {
            "seq": n,
            "type": "door.opened",
            "at": float(n),
            "data": {"compartment": "S1", "intent": n, "purpose": "pickup"},
        }
        for n in range(first, last + 1)
    ]


# -- the reconnect policy (pure: told the time) ------------------------------------------


def test_the_first_retry_after_a_drop_is_spread_over_the_window() -> None:
    draws = []
    for seed in range(300):
        redial = Redial(60.0, 2.0, 300.0, random.Random(seed))
        redial.attempted(0.0, ok=True)
        redial.lost()
        draws.append(redial.next_attempt(1000.0) - 1000.0)
    assert all(6 <= d <= 60 for d in draws)  # never in the window's first tenth
    assert min(draws) < 12 and max(draws) > 54  # spread over the rest, not lock-step
    assert len({round(d, 3) for d in draws}) > 250


def test_a_fleet_dropped_by_a_restarting_broker_makes_no_attempt_while_it_is_down() -> None:
    """10,000 lockers lose the broker at once; it listens again 1.2 s later (mosquitto's
    restart in benchmarks/fleet_storm.py). On a fake clock, every first retry lands after
    that, the fleet is back within the window, and no second spreads more than its share."""
    clock, window, fleet = FakeClock(), 60.0, 10_000
    rng = random.Random(13)
    redials = [Redial(window, 2.0, 300.0, random.Random(rng.random())) for _ in range(fleet)]
    for redial in redials:
        redial.attempted(clock.monotonic(), ok=True)
    clock.spend(3600.0)  # an hour connected, then the broker goes
    dropped = clock.monotonic()
    for redial in redials:
        redial.lost()
    firsts = [redial.next_attempt(clock.monotonic()) - dropped for redial in redials]
    assert min(firsts) >= window * FIRST_RETRY_FLOOR > 1.2  # never while the broker is down
    assert max(firsts) <= window  # all back within the window
    per_second = Counter(int(t) for t in firsts)
    assert max(per_second.values()) <= 1.3 * fleet / (window * (1 - FIRST_RETRY_FLOOR))
    assert min(firsts) < window * FIRST_RETRY_FLOOR + 1 and max(firsts) > window - 1  # spread


def test_never_more_than_four_connects_a_minute_whatever_fails() -> None:
    redial = Redial(0.0, 0.001, 0.01, random.Random(1))
    assert redial.next_attempt(0.0) == 0.0  # the first connect of all: at once
    now, times = 0.0, []
    for _ in range(40):
        now = redial.next_attempt(now)
        times.append(now)
        redial.attempted(now, ok=False)
    for index in range(len(times) - PER_MINUTE):
        assert times[index + PER_MINUTE] - times[index] >= MINUTE - 1e-6
    # Later failures back off with full jitter, capped.
    redial = Redial(1.0, 1.0, 8.0, random.Random(2))
    for failures in range(1, 9):
        redial.failures = failures
        redial.recent.clear()
        assert 0 <= redial.next_attempt(0.0) <= min(8.0, 2 ** (failures - 1))


def test_paho_is_imported_only_when_mqtt_is_configured() -> None:
    code = "import lockerd.daemon, sys; print('paho' in ' '.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# -- against a broker -------------------------------------------------------------------


@needs_mosquitto
async def test_a_poke_is_acknowledged_at_once_and_a_page_of_commands_once_it_is_saved(
    tmp_path,
) -> None:
    """Each PUBACK the locker sends, with what its store held at that moment: a poke is
    acknowledged as it arrives; a pull's answer that carries a command only once that
    command's inbox row and the page's cursor are committed."""
    async with synced_over_mqtt(tmp_path) as s:
        await s.drain()
        s.sync._kick.clear()
        client = s.transport._driver.client
        take, puback = client.on_message, client.ack
        received: dict[int, tuple[str, dict]] = {}
        acks: list[tuple[int, set[str], str]] = []

        def on_message(c, userdata, message) -> None:
            received[message.mid] = (topics.split(message.topic)[1], json.loads(message.payload))
            take(c, userdata, message)

        def ack(mid: int, qos: int) -> int:
            inbox = {row[0] for row in s.rig.store.db.conn.execute("SELECT id FROM inbox")}
            acks.append((mid, inbox, s.rig.store.journal.sync_position()[1]))
            return puback(mid, qos)

        client.on_message, client.ack = on_message, ack
        command = s.issue("parcel.expect", {"barcode": "POKE1"})
        await asyncio.wait_for(s.sync._kick.wait(), 10)  # the poke woke the coordinator
        [poke] = [mid for mid, (leaf, _) in received.items() if leaf == topics.CMD]
        assert [mid for mid, *_ in acks] == [poke]  # at once, before any round
        await s.sync.round()
        [(page, answer)] = [
            (mid, body) for mid, (leaf, body) in received.items()
            if leaf == topics.RPC_RES and body.get("commands")
        ]  # fmt: skip
        [(_, inbox, cursor)] = [a for a in acks if a[0] == page]
        assert command["id"] in inbox and cursor == answer["cursor"]
        assert [e for e in s.journal() if e["type"] == "command.applied"]
        assert set(received) == {mid for mid, *_ in acks}  # nothing left held
        await s.drain()
        s.assert_every_event_arrived_once_in_order()


@needs_mosquitto
async def test_a_page_that_fails_part_way_is_acknowledged_at_the_next_pull_and_asked_again(
    tmp_path,
) -> None:
    """Applying the second of three commands fails (the store, say): the first keeps its
    inbox row, the cursor stays, the page's answer is not acknowledged in that round; the
    next round's pull asks from the saved cursor, acknowledges it, and all three apply once."""
    async with synced_over_mqtt(tmp_path) as s:
        await s.drain()
        client = s.transport._driver.client
        take, puback, apply = client.on_message, client.ack, s.sync.apply
        pages: list[int] = []
        acked: list[int] = []

        def on_message(c, userdata, message) -> None:
            if message.topic.endswith("/rpc/res") and b'"commands":[{' in message.payload:
                pages.append(message.mid)
            take(c, userdata, message)

        def ack(mid: int, qos: int) -> int:
            acked.append(mid)
            return puback(mid, qos)

        async def failing_once(raw):
            if raw["data"]["barcode"] == "PART2" and not failing_once.failed:
                failing_once.failed = True
                raise OSError("disk I/O error")
            return await apply(raw)

        failing_once.failed = False
        client.on_message, client.ack, s.sync.apply = on_message, ack, failing_once
        cursor = s.rig.store.journal.sync_position()[1]
        issued = [s.issue("parcel.expect", {"barcode": f"PART{n}"}) for n in (1, 2, 3)]
        await s.sync.round()
        assert s.sync.failures == 1 and "disk I/O error" in s.sync.last_error
        inbox = {row[0] for row in s.rig.store.db.conn.execute("SELECT id FROM inbox")}
        assert issued[0]["id"] in inbox and issued[1]["id"] not in inbox
        assert s.rig.store.journal.sync_position()[1] == cursor
        assert len(pages) == 1 and pages[0] not in acked
        await s.drain()
        assert pages[0] in acked and set(pages) <= set(acked)
        applied = [e["data"]["id"] for e in s.journal() if e["type"] == "command.applied"]
        assert applied == [c["id"] for c in issued]


@needs_mosquitto
async def test_commands_issued_while_a_push_waits_do_not_hold_up_its_answer(tmp_path) -> None:
    """The back office issues 25 commands (25 pokes on ``cmd``) before it answers a push:
    more than mosquitto lets wait unacknowledged (20). The answer still arrives."""
    async with synced_over_mqtt(tmp_path) as s:
        await s.drain()
        answer, issued = s.face._handle, []

        def issue_then_answer(locker, leaf, message, body) -> None:
            if leaf == topics.EVT and not issued:
                issued.extend(s.issue("parcel.expect", {"barcode": f"MANY{n}"}) for n in range(25))
            answer(locker, leaf, message, body)

        s.face._handle = issue_then_answer
        await s.rig.stored("PUSH1", "S")
        await s.sync.round()
        assert s.sync.failures == 0, s.sync.last_error
        await s.drain()
        applied = [e["data"]["id"] for e in s.journal() if e["type"] == "command.applied"]
        assert sorted(applied) == sorted(c["id"] for c in issued)
        s.assert_every_event_arrived_once_in_order()


class Heard(logging.Handler):
    """Log records as they are written, and an event set when one says ``text``."""

    def __init__(self, text: str):
        super().__init__(logging.DEBUG)
        self.text, self.records, self.said = text, [], asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        if self.text in record.getMessage():
            self.said.set()


@contextmanager
def heard(text: str) -> Iterator[Heard]:
    handler = Heard(text)
    logging.getLogger().addHandler(handler)
    try:
        yield handler
    finally:
        logging.getLogger().removeHandler(handler)


def publish_raw(port: int, topic: str, payload: bytes) -> None:
    """Publish as a stranger on the broker would (at QoS 1, waiting for the broker's PUBACK)."""
    raw = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"raw-{random.randrange(10**6)}")
    raw.connect("127.0.0.1", port)
    raw.loop_start()
    try:
        raw.publish(topic, payload, 1).wait_for_publish(10)
    finally:
        raw.loop_stop()
        raw.disconnect()


@needs_mosquitto
@pytest.mark.parametrize("leaf", [topics.CMD, topics.RPC_RES, topics.ACK])
async def test_a_message_that_cannot_be_read_is_refused_and_sync_carries_on(tmp_path, leaf) -> None:
    """200 KB of ``[`` (JSON nested too deep for Python) on each topic the locker hears:
    one log line names the topic and the reason, and the next rounds sync as before."""
    async with synced_over_mqtt(tmp_path) as s:
        await s.drain()
        connects = s.transport.connects
        where = topics.topic(LOCKER, leaf)
        with heard(f"refused a message on {where}") as log:
            await asyncio.to_thread(publish_raw, s.broker.port, where, b"[" * 200_000)
            await asyncio.wait_for(log.said.wait(), 10)
            command = s.issue("parcel.expect", {"barcode": "AFTER1"})
            await s.rig.stored("AFTER2", "S")
            await s.drain()
        said = [r.getMessage() for r in log.records if r.levelno >= logging.WARNING]
        assert [m for m in said if where in m] == [
            f"sync: refused a message on {where}: nested too deep to read"
        ], said
        assert not [m for m in said if "Exception in callback" in m], said
        applied = [e["data"]["id"] for e in s.journal() if e["type"] == "command.applied"]
        assert applied == [command["id"]]
        s.assert_every_event_arrived_once_in_order()
        assert s.transport.connects == connects  # the connection carried on


@needs_mosquitto
async def test_a_broker_restart_loses_and_repeats_nothing(tmp_path) -> None:
    async with synced_over_mqtt(tmp_path) as s:
        await s.rig.stored("BRK1", "S")
        await s.drain()
        connects = s.transport.connects
        await s.away()
        issued = s.issue("parcel.expect", {"barcode": "WHILE1"})
        await s.rig.stored("BRK2", "M")
        await s.sync.round()
        assert s.sync.failures == 1 and "connect" in s.sync.last_error
        await s.back()
        await s.drain()
        await s.drain()
        assert s.transport.connects == connects + 1
        s.assert_every_event_arrived_once_in_order()
        applied = [e["data"]["id"] for e in s.journal() if e["type"] == "command.applied"]
        assert applied == [issued["id"]]
        await s.broker.settled()
        assert s.broker.seen(f"as {LOCKER}") == 1  # one connect to the new broker


@needs_mosquitto
async def test_a_refused_connack_ends_the_dialing_until_the_next_request(tmp_path) -> None:
    broker = Mosquitto(tmp_path / "broker")
    broker.passwords = {LOCKER: "another-password"}
    await broker.start()
    (tmp_path / "token").write_text(TOKEN)
    t = transport_for(broker.url, token_file=tmp_path / "token")
    try:
        with pytest.raises(AuthRejected, match="Not authorized"):
            await t.pull("")
        with pytest.raises(TimeoutError):  # no attempt of its own (quick_redial: 0.2 s at most)
            await broker.wait_for("not authorised", count=2, within=1.0)
        with pytest.raises(AuthRejected):
            await t.pull("")  # the next request dials once more
        await broker.settled()  # its log may trail its CONNACK
        assert broker.seen("not authorised") == 2
    finally:
        await t.close()
        await broker.stop()


@needs_mosquitto
async def test_duplicate_and_out_of_order_pushes_are_stored_once_in_order(tmp_path) -> None:
    async with synced_over_mqtt(tmp_path) as s:
        t = transport_for(s.broker.url)
        try:
            assert await t.push(events(6, 10), 1) == 0  # a later batch first: nothing contiguous
            assert await t.push(events(1, 5), 1) == 10
            assert await t.push(events(1, 10), 1) == 10  # all again
            assert await t.push(events(4, 12), 1) == 12
        finally:
            await t.close()
        assert [e["seq"] for e in s.record.in_order()] == list(range(1, 13))
        assert s.record.duplicates == 10 + 7


@needs_mosquitto
async def test_stale_and_repeated_answers_are_ignored_and_commands_apply_once(tmp_path) -> None:
    async with synced_over_mqtt(tmp_path) as s:
        command = s.issue("parcel.expect", {"barcode": "ONCE1"})
        await s.drain()
        # An answer to no request (an old one, redelivered) carrying the same command again.
        raw = paho.Client(CallbackAPIVersion.VERSION2, client_id="replayer")
        raw.connect("127.0.0.1", s.broker.port)
        raw.loop_start()
        stale = {"req": "0123456789abcdef", "commands": [command], "cursor": "x.9"}
        for leaf in (topics.RPC_RES, topics.ACK, topics.CMD):
            raw.publish(topics.topic(LOCKER, leaf), topics.encode(stale), 1).wait_for_publish(5)
        raw.loop_stop()
        raw.disconnect()
        s.office.faults.duplicate_commands = True
        s.office.locker(LOCKER).commands.append(command)  # and the office sends it again
        await s.drain()
        await s.drain()
        applied = [e for e in s.journal() if e["type"] == "command.applied"]
        assert [e["data"]["id"] for e in applied] == [command["id"]]
        assert s.rig.store.journal.sync_position()[1] != "x.9"


@needs_mosquitto
async def test_office_answers_carry_the_https_meanings(tmp_path) -> None:
    async with synced_over_mqtt(tmp_path) as s:
        t = transport_for(s.broker.url)
        try:
            with pytest.raises(UnknownCursor):
                await t.pull("nobody.7")
            s.office.faults.fail_next = 1
            with pytest.raises(ServerError):
                await t.push(events(1, 1), 1)
            s.office.faults.refuse_auth = True
            with pytest.raises(AuthRejected):
                await t.pull("")
        finally:
            await t.close()


def answer_on_broker(req: str, status: int, body: str) -> bytes:
    """The MQTT form of an HTTP answer (docs/sync-mqtt.md): an error carries its status;
    a body that is no JSON object is sent as it is (and can name no request)."""
    if status != 200:
        return topics.encode({"req": req, "error": {"status": status, "message": body}})
    value = json.loads(body) if body.startswith(("{", "[")) else None
    return topics.encode({"req": req, **value}) if isinstance(value, dict) else body.encode()


@needs_mosquitto
@pytest.mark.parametrize(("status", "body", "error", "says"), PUSH_ANSWERS)
async def test_each_push_answer_has_its_meaning_over_mqtt(
    tmp_path, status, body, error, says
) -> None:
    broker = await Mosquitto(tmp_path / "broker").start()
    office = paho.Client(CallbackAPIVersion.VERSION2, client_id="answering")

    def answer(client, userdata, message) -> None:
        req = json.loads(message.payload)["req"]
        client.publish(topics.topic(LOCKER, topics.ACK), answer_on_broker(req, status, body), 1)

    subscribed = threading.Event()  # the broker's SUBACK: the office hears from here on
    office.on_message = answer
    office.on_subscribe = lambda *args: subscribed.set()
    office.connect("127.0.0.1", broker.port)
    office.loop_start()
    office.subscribe(topics.topic(LOCKER, topics.EVT), 1)
    assert await asyncio.to_thread(subscribed.wait, 10)
    unnamed = status == 200 and not body.startswith("{")
    # An answer that names no request is no answer: only then is the wait run out.
    t = MqttTransport(broker.url, LOCKER, redial=quick_redial(), timeout_s=0.5 if unnamed else 10)
    if unnamed:
        error, says = Unreachable, "no answer to evt within 0.5 s"
    try:
        with pytest.raises(error, match=says if status == 200 else f"answered {status}"):
            await t.push(events(1, 1), 1)
    finally:
        await t.close()
        office.loop_stop()
        office.disconnect()
        await broker.stop()


@needs_mosquitto
@pytest.mark.parametrize("version", ["5", "3.1.1"])
async def test_a_broker_packet_cap_halves_the_batch_and_loses_nothing(tmp_path, version) -> None:
    async with synced_over_mqtt(tmp_path, version, max_packet=8192) as s:
        for n in range(200):
            detail = f"{n:03} " + "x" * 100
            data = {"board": "b1", "key": "closed_bit", "detail": detail}
            s.rig.store.journal.record(Event.BOARD_POLARITY_SUSPECT, data)
        assert s.rig.store.journal.unsent_count() > 200
        await s.drain()
        if version == "5":  # its CONNACK says so; under 3.1.1 it drops the connection
            assert s.transport.max_payload < 8192
        assert max(s.office.push_bytes) <= min(s.transport.max_payload, 8192)
        s.assert_every_event_arrived_once_in_order()


@needs_mosquitto
async def test_under_mqtt_311_a_drop_not_about_size_does_not_halve_the_batch(tmp_path) -> None:
    """The broker restarts while the first push of the connection waits for its answer:
    the round fails as unreachable, the batch is not cut, and the same batch goes next."""
    async with synced_over_mqtt(tmp_path, "3.1.1") as s:
        for n in range(40):
            data = {"board": "b1", "key": "closed_bit", "detail": f"{n:03} " + "x" * 100}
            s.rig.store.journal.record(Event.BOARD_POLARITY_SUSPECT, data)
        answer, arrived, first = s.face._handle, asyncio.Event(), []

        def unanswered_first(locker, leaf, message, body) -> None:
            if leaf == topics.EVT and not arrived.is_set():
                first.append(len(message.payload))
                arrived.set()  # this push is never answered: the broker goes first
                return
            answer(locker, leaf, message, body)

        s.face._handle = unanswered_first
        batch = s.sync.batch
        with heard("too large") as log:
            round_ = asyncio.ensure_future(s.sync.round())
            await asyncio.wait_for(arrived.wait(), 10)
            await s.away()
            await s.back()
            await round_
            assert s.sync.failures == 1 and s.sync.batch == batch, s.sync.last_error
            await s.drain()
        assert s.sync.batch == batch and not log.said.is_set()
        assert s.office.push_bytes == first  # the same batch, once more, and taken
        s.assert_every_event_arrived_once_in_order()


LONGEST_ID = "site-0042-" + "x" * 118  # locker.id's 128 characters at most


def events_of_packet(
    locker_id: str, size: int, count: int, first_seq: int = 1, v5: bool = True
) -> list[dict]:
    """``count`` events whose push is a PUBLISH of exactly ``size`` bytes on the wire
    (tests/mqtt_rig.py lays the packet out by hand): the last event is padded to fit."""

    def padded(pad: int) -> list[dict]:
        batch = events(first_seq, first_seq + count - 1)
        batch[-1]["type"] = "board.polarity_suspect"
        batch[-1]["data"] = {"board": "b1", "key": "closed_bit", "detail": "p" * pad}
        return batch

    pad = size - push_packet_size(locker_id, padded(0), first_seq, v5)
    while push_packet_size(locker_id, padded(pad), first_seq, v5) > size:
        pad -= 1  # the remaining length took one more byte
    assert push_packet_size(locker_id, padded(pad), first_seq, v5) == size
    return padded(pad)


@needs_mosquitto
@pytest.mark.parametrize("locker_id", ["LK01", LONGEST_ID])
async def test_a_push_of_exactly_the_brokers_maximum_packet_size_passes_and_no_larger(
    tmp_path, locker_id
) -> None:
    """mosquitto ``max_packet_size 8192``: a push whose PUBLISH is 8192 bytes is taken;
    one of 8193 bytes is too large for the locker (the coordinator halves the batch), and
    never reaches the broker (which would close the connection)."""
    async with synced_over_mqtt(tmp_path, max_packet=8192) as s:
        t = MqttTransport(s.broker.url, locker_id, redial=quick_redial(), timeout_s=5)
        try:
            await t.pull("")  # connected: the CONNACK says 8192
            assert await t.push(events_of_packet(locker_id, 8192, 2), 1) == 2
            over = events_of_packet(locker_id, 8193, 2, first_seq=3)
            with pytest.raises(TooLarge):
                await t.push(over, 3)
            assert await t.push(over[:1], 3) == 3 and await t.push(over[1:], 3) == 4  # halved
            assert t.connects == 1 and t.connected.is_set()
        finally:
            await t.close()
        await s.broker.settled()
        gone = [line.split(": ", 1)[1] for line in s.broker.log if f"{locker_id} disc" in line]
        assert gone == [f"Client {locker_id} disconnected."]  # only by its close
        assert s.broker.seen("oversize packet") == 0  # what mosquitto says when it drops


@needs_mosquitto
@pytest.mark.parametrize("version", ["5", "3.1.1"])
async def test_no_push_is_a_packet_over_96_kib_even_with_the_longest_locker_id(
    tmp_path, version
) -> None:
    """96 KiB is the whole PUBLISH (topic, properties and all): a push of exactly 98,304
    bytes goes as one; one byte more and the locker sends the events that fit first."""
    v5 = version == "5"
    async with synced_over_mqtt(tmp_path) as s:
        t = MqttTransport(s.broker.url, LONGEST_ID, redial=quick_redial(), version=version)
        try:
            assert await t.push(events_of_packet(LONGEST_ID, 98304, 3, 1, v5), 1) == 3
            over = events_of_packet(LONGEST_ID, 98305, 3, 4, v5)
            assert await t.push(over, 4) == 5  # the first two; the last goes next
            assert await t.push(over[2:], 4) == 6
        finally:
            await t.close()
        record = s.office.locker(LONGEST_ID)
        assert sorted(record.events) == list(range(1, 7))
        packets = [push_packet_size_of(LONGEST_ID, n, v5) for n in s.office.push_bytes]
        assert packets[0] == 98304 and max(packets) == 98304, packets


def mqtt_config_with_id(tmp_path, locker_id: str) -> str:
    config = with_sync(tmp_path, 'transport = "mqtt"\nurl = "mqtt://127.0.0.1:1883"')
    assert 'id = "test-locker"' in config
    return config.replace('id = "test-locker"', f"id = {json.dumps(locker_id)}", 1)


@pytest.mark.parametrize(
    "locker_id",
    [
        "site\u00011",
        "site\t1",
        "site 1",
        "site\x7f1",
        "site\n1",
        "s/1",
        "s+1",
        "s#1",
        "sité",
        "x" * 129,
    ],
)
def test_check_config_refuses_a_locker_id_an_mqtt_topic_cannot_carry(tmp_path, locker_id) -> None:
    found = problems(mqtt_config_with_id(tmp_path, locker_id), tmp_path)
    said = [line for line in found if f"locker.id: {locker_id!r}: " in line]
    assert said and "printable ASCII" in said[0] and said[0].endswith("none of / + #"), found


def test_the_longest_locker_id_keeps_every_topic_within_aws_limits(tmp_path) -> None:
    """AWS IoT Core: a client id of at most 128 bytes; topics of at most 256 bytes and 7
    slashes (filters included)."""
    config = parse(mqtt_config_with_id(tmp_path, LONGEST_ID), tmp_path / "bank.toml")
    assert config.locker.id == LONGEST_ID and len(LONGEST_ID.encode()) == 128
    leaves = [*topics.DEVICE_SUBSCRIBES, *topics.OFFICE_SUBSCRIBES]
    names = [topics.topic(LONGEST_ID, leaf) for leaf in leaves]
    names += [topics.topic("+", leaf) for leaf in topics.OFFICE_SUBSCRIBES]
    assert len(names) == 9
    for name in names:
        assert len(name.encode()) <= 256 and name.count("/") <= 7, name
    assert max(len(name.encode()) for name in names) == len("lockers//rpc/req") + 128


# -- mutual TLS ---------------------------------------------------------------------------


def tls_for(pki: Pki, cert_name: str | None, issuer: Pki | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki.ca_file))
    if cert_name is not None:
        context.load_cert_chain(*(issuer or pki).issue(cert_name))
    return context


@pytest.fixture
async def tls_broker(tmp_path):
    pki = Pki(tmp_path)
    broker = await Mosquitto(tmp_path / "broker", tls=pki).start()
    office = ReferenceBackOffice(TOKEN, signing_key=OFFICE_KEY)
    face = OfficeOnBroker(office, broker.url.replace("127.0.0.1", "localhost"),
                          tls=tls_for(pki, "back-office"))  # fmt: skip
    await face.start()
    yield broker, pki, office
    await face.stop()
    await broker.stop()
    office.close()


@needs_mosquitto
@pytest.mark.parametrize("who", ["own-ca", "other-ca", "no-certificate"])
async def test_mutual_tls_takes_only_certificates_from_its_ca(tls_broker, tmp_path, who) -> None:
    broker, pki, office = tls_broker
    other = None
    if who == "other-ca":
        (tmp_path / "other").mkdir()
        other = Pki(tmp_path / "other")
    cert = None if who == "no-certificate" else LOCKER
    context = tls_for(pki, cert, issuer=other)
    t = transport_for(broker.url.replace("127.0.0.1", "localhost"), tls=context)
    try:
        if who == "own-ca":
            assert await t.push(events(1, 3), 1) == 3
            assert office.locker(LOCKER).acked == 3
        else:
            with pytest.raises(Unreachable):
                await t.push(events(1, 3), 1)
            assert t.connects == 0 and LOCKER not in office.lockers
    finally:
        await t.close()


@needs_mosquitto
async def test_a_server_certificate_from_another_ca_is_refused(tls_broker, tmp_path) -> None:
    broker, pki, _ = tls_broker
    (tmp_path / "elsewhere").mkdir()
    elsewhere = Pki(tmp_path / "elsewhere")
    context = ssl.create_default_context(cafile=str(elsewhere.ca_file))
    context.load_cert_chain(*pki.issue(LOCKER))
    t = transport_for(broker.url.replace("127.0.0.1", "localhost"), tls=context)
    try:
        with pytest.raises(Unreachable, match="certificate"):
            await t.push(events(1, 1), 1)
    finally:
        await t.close()


# -- the documents say what the code sends --------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent
ASYNCAPI = json.loads((ROOT / "docs" / "sync-mqtt.asyncapi.json").read_text())


def test_the_asyncapi_channels_are_the_topics_of_the_code() -> None:
    leaves = set(topics.DEVICE_SUBSCRIBES) | set(topics.OFFICE_SUBSCRIBES)
    assert set(ASYNCAPI["channels"]) == leaves
    for leaf, channel in ASYNCAPI["channels"].items():
        assert channel["address"] == topics.topic("{locker_id}", leaf)
    prose = (ROOT / "docs" / "sync-mqtt.md").read_text()
    assert all(f"`lockers/{{id}}/{leaf}`" in prose for leaf in leaves)


BASE = "https://lockerd.invalid/docs/"
#: The AsyncAPI file's schemas, with the OpenAPI file's they refer to.
REGISTRY = Registry().with_resources(
    [
        (BASE + "sync-mqtt.asyncapi.json", Resource.from_contents(ASYNCAPI, DRAFT202012)),
        (BASE + "sync-v1.openapi.json", Resource.from_contents(SPEC, DRAFT202012)),
    ]
)


def message_of(leaf: str) -> dict:
    """The AsyncAPI message on ``leaf``'s channel."""
    [ref] = ASYNCAPI["channels"][leaf]["messages"].values()
    return ASYNCAPI["components"]["messages"][ref["$ref"].rsplit("/", 1)[1]]


def asyncapi_problems(topic: str, payload: bytes, properties: Any = None) -> list[str]:
    """What is wrong with a message on the wire, by the AsyncAPI file: its payload against
    its JSON Schema, and under MQTT 5 its response topic and correlation data."""
    where = topics.split(topic)
    if where is None:
        return [f"{topic}: not a topic of the file"]
    locker_id, leaf = where
    message = message_of(leaf)
    body = json.loads(payload)
    name = message["name"]
    root = {"$ref": f"{BASE}sync-mqtt.asyncapi.json#/components/messages/{name}/payload"}
    validator = Draft202012Validator(root, registry=REGISTRY)
    found = [f"{leaf}: {e.json_path}: {e.message}" for e in validator.iter_errors(body)]
    found += [
        f"{leaf}: {key} is not in the file"
        for key in set(body) - set(message["payload"]["properties"])
    ]
    mqtt = message.get("bindings", {}).get("mqtt", {})
    response = getattr(properties, "ResponseTopic", None)
    expected = mqtt.get("responseTopic", "").replace("{locker_id}", locker_id) or None
    if properties is not None and response != expected:
        found.append(f"{leaf}: response topic {response!r}, the file says {expected!r}")
    correlation = getattr(properties, "CorrelationData", None)
    if correlation is not None and correlation.decode() != body.get("req"):
        found.append(f"{leaf}: correlation data {correlation!r} is not req")
    return found


@pytest.fixture(autouse=True)
def every_publish_is_as_the_asyncapi_file_says(monkeypatch) -> Iterator[None]:
    """Every message the locker's transport and the reference back office publish in these
    tests, checked against the file at the test's end."""
    sent: list[tuple[str, bytes, Any]] = []
    by_locker, by_office = MqttTransport._publish, OfficeOnBroker._publish

    def locker(self, leaf: str, payload: bytes, req: str) -> None:
        sent.append((self._topic(leaf), payload, self._properties(leaf, req)))
        by_locker(self, leaf, payload, req)

    def office(self, topic: str, payload: bytes, properties: Any) -> None:
        sent.append((topic, payload, properties))
        by_office(self, topic, payload, properties)

    monkeypatch.setattr(MqttTransport, "_publish", locker)
    monkeypatch.setattr(OfficeOnBroker, "_publish", office)
    yield
    assert not [p for message in sent for p in asyncapi_problems(*message)]


def test_the_asyncapi_bindings_are_the_codes() -> None:
    """QoS 1 and no retain for every operation; the will, clean session and keep-alive of
    the client the transport makes; the response topics it sets."""
    for name, operation in ASYNCAPI["operations"].items():
        mqtt = operation["bindings"]["mqtt"]
        assert (mqtt["qos"], mqtt["retain"]) == (topics.QOS, False), name
    t = MqttTransport("mqtt://127.0.0.1:1", "{locker_id}", redial=quick_redial())
    client = t._client()
    server = ASYNCAPI["servers"]["broker"]["bindings"]["mqtt"]
    will = server["lastWill"]
    assert will["topic"] == client._will_topic.decode() == topics.topic("{locker_id}", topics.CONN)
    assert will["message"].encode() == client._will_payload
    assert (will["qos"], will["retain"]) == (client._will_qos, client._will_retain) == (1, False)
    assert server["clientId"] == client._client_id.decode()
    assert server["keepAlive"] == t.keepalive_s == SyncSection().mqtt_keepalive_s
    v311 = MqttTransport("mqtt://127.0.0.1:1", "x", redial=quick_redial(), version="3.1.1")
    assert server["cleanSession"] is True and v311._client()._clean_session is True
    for leaf, answer in ((topics.EVT, topics.ACK), (topics.RPC_REQ, topics.RPC_RES)):
        mqtt = message_of(leaf)["bindings"]["mqtt"]
        assert mqtt["responseTopic"] == t._properties(leaf, "0" * 16).ResponseTopic
        assert mqtt["responseTopic"] == topics.topic("{locker_id}", answer)
        assert message_of(answer)["correlationId"] == message_of(leaf)["correlationId"]


@needs_mosquitto
async def test_every_message_on_the_wire_is_as_the_asyncapi_file_says(tmp_path) -> None:
    """A tap (MQTT 5, so it sees properties) hears every kind of message, the will too, and
    each is as the file says: payload, response topic, correlation data, QoS 1, no retain."""
    async with synced_over_mqtt(tmp_path) as s:
        seen: list[tuple[str, bytes, Any, int, bool]] = []
        every_kind = threading.Event()
        tap = paho.Client(CallbackAPIVersion.VERSION2, client_id="tap", protocol=paho.MQTTv5)

        def heard(client, userdata, message) -> None:
            seen.append(
                (message.topic, message.payload, message.properties, message.qos, message.retain)
            )
            leaves = {topics.split(topic)[1] for topic, *_ in seen}
            will = any(b'"online":false' in payload for _, payload, *_ in seen)
            every_kind.set() if len(leaves) == len(ASYNCAPI["channels"]) and will else None

        tap.on_message = heard
        tap.connect("127.0.0.1", s.broker.port)
        tap.loop_start()
        try:
            await asyncio.to_thread(tap.subscribe, "lockers/#", 1)
            await s.rig.stored("WIRE1", "S")
            s.issue("parcel.expect", {"barcode": "WIRE2"})
            await s.drain()
            s.office.faults.fail_next = 2
            await s.sync.round()
            await s.transport.close()  # and back: presence again
            await s.drain()
            s.transport._driver.client.socket().shutdown(socket.SHUT_RDWR)  # the will
            await s.drain()
            assert await asyncio.to_thread(every_kind.wait, 10), sorted(seen)
        finally:
            tap.loop_stop()
            tap.disconnect()
        assert not [
            p
            for topic, payload, props, *_ in seen
            for p in asyncapi_problems(topic, payload, props)
        ]
        assert {(qos, retain) for *_, qos, retain in seen} == {(1, False)}
        server = ASYNCAPI["servers"]["broker"]["bindings"]["mqtt"]
        await s.broker.settled()  # each connect clean (c1), with the file's keep-alive
        assert s.broker.seen(f"as {LOCKER} (p5, c1, k{server['keepAlive']},") == 3
        assert s.broker.seen(f"as {LOCKER} (") == 3
        bodies = {
            leaf: [json.loads(p) for t, p, *_ in seen if t.endswith("/" + leaf)]
            for leaf in ASYNCAPI["channels"]
        }
        assert any("error" in body for body in bodies[topics.ACK] + bodies[topics.RPC_RES])
        assert {"online": False} in bodies[topics.CONN]
        requests = [props for t, _, props, *_ in seen if t.endswith(("/evt", "/rpc/req"))]
        assert requests and all(getattr(p, "CorrelationData", None) for p in requests)


# -- MQTT over WebSockets -------------------------------------------------------------------


@asynccontextmanager
async def websocket_gateway(broker_port: int) -> AsyncIterator[str]:
    """A WebSocket endpoint piping MQTT to the broker's TCP port (Debian's mosquitto cannot
    open a WebSocket listener here), as a load balancer in front of a broker would."""

    async def pipe(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(protocols=("mqtt",))
        await ws.prepare(request)
        reader, writer = await asyncio.open_connection("127.0.0.1", broker_port)

        async def down() -> None:
            while data := await reader.read(65536):
                await ws.send_bytes(data)
            await ws.close()

        downward = asyncio.ensure_future(down())
        async for message in ws:
            if message.type == WSMsgType.BINARY:
                writer.write(message.data)
        writer.close()
        downward.cancel()
        await asyncio.gather(downward, return_exceptions=True)
        return ws

    app = web.Application()
    app.router.add_get("/mqtt", pipe)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        yield f"ws://127.0.0.1:{port}/mqtt"
    finally:
        await runner.cleanup()


@needs_mosquitto
async def test_mqtt_over_websockets_carries_the_same_sync(tmp_path) -> None:
    async with synced_over_mqtt(tmp_path) as s, websocket_gateway(s.broker.port) as url:
        s.issue("parcel.expect", {"barcode": "WSOK1"})
        t = transport_for(url)
        try:
            assert await t.push(events(1, 4), 1) == 4
            commands, cursor = await t.pull("")
            assert [c["data"]["barcode"] for c in commands] == ["WSOK1"] and cursor
        finally:
            await t.close()
        await s.broker.settled()
        assert s.broker.seen(f"as {LOCKER}") == 1
