"""Sync v1 over MQTT against a real mosquitto: restarts, duplicates, reordering, bad messages,
acknowledgement, mTLS, WebSockets (caps: test_sync_mqtt_caps.py; the AsyncAPI file:
test_sync_mqtt_asyncapi.py). Every message published here is held to the AsyncAPI file."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import ssl
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import paho.mqtt.client as paho
import pytest
from aiohttp import WSMsgType, web
from paho.mqtt.enums import CallbackAPIVersion

from lockerd.clock import FakeClock
from lockerd.sync import topics
from lockerd.sync.backoffice import ReferenceBackOffice
from lockerd.sync.client import (
    AuthRejected,
    ServerError,
    UnknownCursor,
    Unreachable,
)
from lockerd.sync.mqtt import MqttTransport
from lockerd.sync.officemqtt import OfficeOnBroker
from lockerd.sync.redial import FIRST_RETRY_FLOOR, MINUTE, PER_MINUTE, Redial
from tests.asyncapi import every_publish_is_as_the_asyncapi_file_says  # noqa: F401 (autouse)
from tests.broker import Mosquitto, needs_mosquitto
from tests.mqtt_rig import (
    quick_redial,
    synced_over_mqtt,
    transport_for,
)
from tests.pki import Pki
from tests.sync_rig import LOCKER, OFFICE_KEY, TOKEN
from tests.test_sync_client import PUSH_ANSWERS


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
        s.transport.timeout_s = 10  # 25 commands stored first, on a loaded machine too
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
