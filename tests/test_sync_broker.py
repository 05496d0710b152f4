"""Sync over MQTT with what a fleet runs: the daemon's own reconnect policy through a broker
restart, and presence (the will and the ``online`` message, ordered by connect)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

import aiohttp
import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from lockerd.sync import topics
from lockerd.sync.backoffice import ReferenceBackOffice
from lockerd.sync.officedb import OfficeDb
from lockerd.sync.officemqtt import OfficeOnBroker
from lockerd.sync.redial import FIRST_RETRY_FLOOR, PER_MINUTE
from tests.broker import Mosquitto, needs_mosquitto
from tests.daemon import Daemon
from tests.mqtt_rig import synced_over_mqtt
from tests.sync_rig import LOCKER
from tests.test_sync_process import with_sync

WINDOW_S = 2.0


@needs_mosquitto
async def test_the_default_reconnect_policy_comes_back_after_a_broker_restart(tmp_path) -> None:
    async with synced_over_mqtt(tmp_path, first_retry_s=WINDOW_S) as s:
        redial = s.transport.redial
        assert (redial.window, redial.per_minute) == (WINDOW_S, PER_MINUTE)  # from its config
        await s.rig.stored("PCL1", "S")
        await s.drain()
        loop = asyncio.get_running_loop()
        stopping = loop.time()
        await s.broker.stop()
        await s.rig.stored("PCL2", "M")  # while the broker is away
        await s.broker.start()
        await s.broker.wait_for(f" as {LOCKER} ")  # it came back on its own, no round asked
        await asyncio.wait_for(s.transport.connected.wait(), 10)
        retries = [at for at in redial.recent if at > stopping]
        # No retry in the window's first tenth (a restarting broker is still down then).
        assert retries and retries[0] >= stopping + WINDOW_S * FIRST_RETRY_FLOOR
        assert s.transport.attempts - s.transport.connects == len(retries) - 1
        await s.drain()
        s.assert_every_event_arrived_once_in_order()


# -- presence: the will, the "online" message and the heartbeat ------------------------------


@pytest.mark.parametrize(
    ("heard", "then", "state"),
    [
        ((True, 100.0), (False, 100.0), (False, 100.0)),  # its own connection ended
        ((True, 100.0), (False, 90.0), (True, 100.0)),  # a late will of an older connection
        ((False, 100.0), (True, 100.0), (False, 100.0)),  # its online, after its will
        ((False, 100.0), (True, 110.0), (True, 110.0)),  # a new connection
        ((True, 110.0), (True, 100.0), (True, 110.0)),  # an old online, delivered late
    ],
)
def test_presence_is_ordered_by_the_connection_it_belongs_to(heard, then, state) -> None:
    db = OfficeDb(None)
    assert db.mark_presence(LOCKER, *heard, now=1.0)
    applied = db.mark_presence(LOCKER, *then, now=2.0)
    presence = db.presence(LOCKER)
    assert (presence["online"], presence["since"]) == state
    assert applied == (state == then) and presence["changed_at"] == (2.0 if applied else 1.0)


@needs_mosquitto
async def test_a_late_will_older_than_the_current_online_leaves_the_locker_online(
    tmp_path,
) -> None:
    async with synced_over_mqtt(tmp_path) as s:
        await s.drain()
        office = s.office
        await office.wait_for(lambda: (office.db.presence(LOCKER) or {}).get("online") is True)
        since = office.db.presence(LOCKER)["since"]
        heard = office.presence_heard
        late = paho.Client(CallbackAPIVersion.VERSION2, client_id="late-will")
        late.connect("127.0.0.1", s.broker.port)
        late.loop_start()
        try:  # a will of the connection before, delivered after the current online
            will = topics.encode({"online": False, "since": since - 30})
            await asyncio.to_thread(
                late.publish(topics.topic(LOCKER, topics.CONN), will, 1).wait_for_publish, 10
            )
        finally:
            late.loop_stop()
            late.disconnect()
        await office.wait_for(lambda: office.presence_heard > heard)
        presence = office.db.presence(LOCKER)
        assert (presence["online"], presence["since"]) == (True, since)


@needs_mosquitto
async def test_a_killed_locker_is_recorded_offline_from_its_will(tmp_path, office) -> None:
    broker = await Mosquitto(tmp_path / "broker").start()
    face = OfficeOnBroker(office, broker.url)
    await face.start()
    config = with_sync(tmp_path, f'transport = "mqtt"\nurl = "{broker.url}"')
    record = office.locker("demo-locker-1")
    try:
        async with Daemon(config, "--state-dir", str(tmp_path)) as daemon:
            beat = lambda: any(e["type"] == "heartbeat" for e in record.in_order())  # noqa: E731
            await office.wait_for(lambda: beat() and office.db.presence("demo-locker-1"))
            online = office.db.presence("demo-locker-1")
            assert online["online"] is True
            await daemon.kill()
            await office.wait_for(lambda: office.db.presence("demo-locker-1")["online"] is False)
    finally:
        await face.stop()
        await broker.stop()
    offline = office.db.presence("demo-locker-1")
    assert offline["since"] == online["since"]  # the will of that very connection
    beats = [e for e in record.in_order() if e["type"] == "heartbeat"]
    assert offline["heartbeat_at"] == beats[-1]["at"]
    url = f"{office.url}/control/lockers/demo-locker-1"
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        shown = (await response.json())["presence"]
    assert shown == offline


# -- one bad message: answered or dropped, never raised into paho ----------------------------


class Logged(Mosquitto):
    """Logs every packet (log_type all): the office's PUBACKs show."""

    def _config(self) -> Path:
        path = super()._config()
        path.write_text(path.read_text() + "log_type all\n")
        return path


class Pusher:
    """A locker's side in raw paho: pushes on its evt topic, answers read from its ack."""

    def __init__(self, port: int):
        self.loop = asyncio.get_running_loop()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=LOCKER)
        self.answers: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.client.on_message = lambda c, u, m: self.loop.call_soon_threadsafe(
            self.answers.put_nowait, json.loads(m.payload)
        )
        self.subscribed: asyncio.Future[None] = self.loop.create_future()
        self.client.on_subscribe = lambda *a: self.loop.call_soon_threadsafe(
            self.subscribed.set_result, None
        )
        self.port = port

    async def __aenter__(self) -> Pusher:
        self.client.connect("127.0.0.1", self.port)
        self.client.loop_start()
        self.client.subscribe(topics.topic(LOCKER, topics.ACK), 1)
        await asyncio.wait_for(self.subscribed, 10)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    async def push(self, body: dict[str, Any]) -> None:
        """Published at QoS 1; returns once the broker's PUBACK came."""
        info = self.client.publish(topics.topic(LOCKER, topics.EVT), json.dumps(body), 1)
        await asyncio.to_thread(info.wait_for_publish, 10)


def beat(seq: int, **data: Any) -> dict[str, Any]:
    """An event; a heartbeat (never stored here: it lacks the health) if ``data``."""
    if data:
        return {"seq": seq, "type": "heartbeat", "at": 1.0, "data": data}
    return {"seq": seq, "type": "door.closed", "at": 1.0, "data": {"compartment": "M1"}}


def agree(office: ReferenceBackOffice) -> None:
    """The office's record of the locker is what its database holds."""
    record = office.locker(LOCKER)
    assert dict(office.db.lockers()).get(LOCKER, record.counters()) == record.counters()
    assert office.db.events(LOCKER) == record.events


@needs_mosquitto
@pytest.mark.parametrize(
    "body",
    [
        {"first_seq": 2, "events": [beat(2), beat(2**64)]},
        {"first_seq": 2**64, "events": []},
        {"first_seq": 2, "events": [beat(2, open_seq=2**64)]},
    ],
)
async def test_a_number_past_64_bits_gets_an_error_answer(tmp_path, office, body) -> None:
    broker = await Logged(tmp_path / "broker").start()
    face = OfficeOnBroker(office, broker.url)
    await face.start()
    try:
        async with Pusher(broker.port) as locker:
            await locker.push({"req": "a", "first_seq": 1, "events": [beat(1)]})
            assert (await asyncio.wait_for(locker.answers.get(), 10))["acked_seq"] == 1
            await locker.push({"req": "b", **body})
            answer = await asyncio.wait_for(locker.answers.get(), 10)
            await broker.wait_for(f"Received PUBACK from {face.client_id}", 2)  # both taken
    finally:
        await face.stop()
        await broker.stop()
    assert answer["req"] == "b" and answer["error"]["status"] == 400, answer
    assert str(2**63 - 1) in answer["error"]["message"]
    assert office.locker(LOCKER).acked == 1
    agree(office)


@needs_mosquitto
async def test_a_message_that_raises_is_logged_acknowledged_and_changes_nothing(
    tmp_path, office, monkeypatch, caplog
) -> None:
    """The database refuses one push: one line names the topic and the reason, the broker
    gets its PUBACK, memory and database still agree, and the next push is served."""
    broker = await Logged(tmp_path / "broker").start()
    face = OfficeOnBroker(office, broker.url)
    await face.start()
    save = office.db.save

    def refuse_once(*args: Any) -> None:
        monkeypatch.setattr(office.db, "save", save)
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(office.db, "save", refuse_once)
    try:
        async with Pusher(broker.port) as locker:
            await locker.push({"req": "a", "first_seq": 1, "events": [beat(1)]})
            await broker.wait_for(f"Received PUBACK from {face.client_id}")  # the office's
            agree(office)
            await locker.push({"req": "b", "first_seq": 1, "events": [beat(1)]})
            answer = await asyncio.wait_for(locker.answers.get(), 10)
            await broker.wait_for(f"Received PUBACK from {face.client_id}", 2)
    finally:
        await face.stop()
        await broker.stop()
    assert answer == {"req": "b", "acked_seq": 1}  # the first one left nothing behind
    dropped = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
    assert dropped == [f"message on {topics.topic(LOCKER, topics.EVT)} dropped:"
                       " OperationalError: disk I/O error"]  # fmt: skip
    agree(office)
    assert set(office.locker(LOCKER).events) == {1}
