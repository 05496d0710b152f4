"""docs/sync-mqtt.asyncapi.json against the code and the wire: channels, bindings, schemas."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from lockerd.config.schema import SyncSection
from lockerd.sync import topics
from lockerd.sync.mqtt import MqttTransport
from tests.asyncapi import (  # noqa: F401 (an autouse fixture)
    ASYNCAPI,
    ROOT,
    asyncapi_problems,
    every_publish_is_as_the_asyncapi_file_says,
    message_of,
)
from tests.broker import needs_mosquitto
from tests.mqtt_rig import quick_redial, synced_over_mqtt
from tests.sync_rig import LOCKER


def test_the_asyncapi_channels_are_the_topics_of_the_code() -> None:
    leaves = set(topics.DEVICE_SUBSCRIBES) | set(topics.OFFICE_SUBSCRIBES)
    assert set(ASYNCAPI["channels"]) == leaves
    for leaf, channel in ASYNCAPI["channels"].items():
        assert channel["address"] == topics.topic("{locker_id}", leaf)
    prose = (ROOT / "docs" / "sync-mqtt.md").read_text()
    assert all(f"`lockers/{{id}}/{leaf}`" in prose for leaf in leaves)


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
    # The file shows a will made before any connection; each connect sets its own since.
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
        # The will carries the since of the online it follows (docs/sync-mqtt.md, Presence).
        [offline] = [body for body in bodies[topics.CONN] if not body["online"]]
        assert {**offline, "online": True} in bodies[topics.CONN]
        requests = [props for t, _, props, *_ in seen if t.endswith(("/evt", "/rpc/req"))]
        assert requests and all(getattr(p, "CorrelationData", None) for p in requests)
