"""Sync over MQTT with what a fleet runs: the daemon's own reconnect policy through a broker
restart, and presence (the will and the ``online`` message, ordered by connect)."""

from __future__ import annotations

import asyncio

import aiohttp
import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from lockerd.sync import topics
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
