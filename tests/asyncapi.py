"""docs/sync-mqtt.asyncapi.json as tests use it: each message on the wire held to its schemas.

``every_publish_is_as_the_asyncapi_file_says`` (autouse where a test module
imports it) checks every message the locker's transport and the reference
back office publish during a test: its payload against the file's JSON Schema
(with the OpenAPI file's event and command schemas), and under MQTT 5 its
response topic and correlation data against the message's mqtt binding.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from lockerd.sync import topics
from lockerd.sync.mqtt import MqttTransport
from lockerd.sync.officemqtt import OfficeOnBroker
from tests.event_schemas import SPEC

ROOT = Path(__file__).resolve().parent.parent
ASYNCAPI = json.loads((ROOT / "docs" / "sync-mqtt.asyncapi.json").read_text())


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
    found = [p for message in sent for p in asyncapi_problems(*message)]
    assert not found, f"messages published that are not as the AsyncAPI file says: {found}"
