"""The sync rig's locker and reference back office talking through a real mosquitto.

The broker runs on loopback in the test's folder (tests/broker.py); the back
office serves it with ``OfficeOnBroker``, the locker with ``MqttTransport``.
Reconnects are immediate and uncapped here (``quick_redial``), so a restarted
broker is taken back at once; a test of the fleet policy itself passes
``redial`` (tests/test_sync_broker.py runs the default policy through a broker
restart). ``version`` is the MQTT version both the locker and the back office
speak. The back office's HTTP face runs too, for its ``/control`` requests.
"""

from __future__ import annotations

import dataclasses
import json
import random
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from lockerd.sync import topics
from lockerd.sync.backoffice import ReferenceBackOffice
from lockerd.sync.coordinator import SyncCoordinator
from lockerd.sync.mqtt import MqttTransport, from_config
from lockerd.sync.officemqtt import OfficeOnBroker
from lockerd.sync.redial import Redial
from tests.broker import MOSQUITTO, Mosquitto
from tests.pki import Pki
from tests.rig import Rig, bank_config
from tests.sync_rig import LOCKER, OFFICE_KEY, TOKEN, Synced, sync_section

#: What mosquitto logs when it drops a client for a publish over its ``max_packet_size``.
DROPPED_TOO_LARGE = "disconnected due to oversize packet"


def publish_packet(
    topic: str, payload: bytes, response_topic: str = "", correlation: bytes = b""
) -> bytes:
    """A QoS 1 PUBLISH as MQTT lays it out (5.0 section 3.3, 3.1.1 section 3.3), built here
    byte by byte: with a response topic and correlation data it is MQTT 5's, with neither
    3.1.1's (no properties at all)."""

    def varint(n: int) -> bytes:
        out = bytearray()
        while True:
            n, digit = divmod(n, 128)
            out.append(digit | (0x80 if n else 0))
            if not n:
                return bytes(out)

    def utf8(text: str) -> bytes:
        return len(text.encode()).to_bytes(2, "big") + text.encode()

    header = utf8(topic) + (1).to_bytes(2, "big")  # topic name, packet identifier
    if response_topic:
        props = b"\x08" + utf8(response_topic) + b"\x09"
        props += len(correlation).to_bytes(2, "big") + correlation
        header += varint(len(props)) + props
    return bytes([0x32]) + varint(len(header) + len(payload)) + header + payload


def push_packet_size(locker_id: str, events: list[dict[str, Any]], first_seq: int, v5: bool) -> int:
    """Bytes on the wire of the locker's push of ``events``."""
    req = "0123456789abcdef"
    body = json.dumps({"req": req, "first_seq": first_seq, "events": events}, separators=(",", ":"))
    return push_packet_size_of(locker_id, len(body.encode()), v5)


def push_packet_size_of(locker_id: str, payload: int, v5: bool) -> int:
    """Bytes on the wire of a push whose payload is ``payload`` bytes."""
    evt, ack = (topics.topic(locker_id, leaf) for leaf in (topics.EVT, topics.ACK))
    if not v5:
        return len(publish_packet(evt, b"x" * payload))
    return len(publish_packet(evt, b"x" * payload, ack, b"0123456789abcdef"))


def quick_redial() -> Redial:
    return Redial(0.0, 0.02, 0.2, random.Random(5), per_minute=10**6)


class SyncedOverMqtt(Synced):
    """A :class:`Synced` whose back office is reached through ``broker``."""

    def __init__(self, rig: Rig, office: ReferenceBackOffice, sync: SyncCoordinator, **parts: Any):
        super().__init__(rig, office, sync)
        self.broker: Mosquitto = parts["broker"]
        self.face: OfficeOnBroker = parts["face"]
        self.transport: MqttTransport = parts["transport"]
        self.version = "5" if self.transport.v5 else "3.1.1"

    async def away(self) -> None:
        await self.broker.stop()

    async def back(self) -> None:
        await self.broker.start()
        await self.broker.wait_for(f" as {self.face.client_id}")
        await self.face.ready.wait()

    async def serve(self, office: ReferenceBackOffice) -> None:
        """``office`` answers on the broker in place of the back office that did."""
        await self.face.stop()
        self.face = OfficeOnBroker(office, self.broker.url, version=self.version)
        await self.face.start()

    async def unserve(self, office: ReferenceBackOffice) -> None:
        assert self.face.office is office
        await self.face.stop()

    async def cap_body(self, limit: int) -> None:
        """The broker's maximum packet size (restarted with it) leaves room for push bodies
        of ``limit`` bytes: its CONNACK says so under MQTT 5, and it refuses a larger publish."""
        await self.away()
        empty = push_packet_size(LOCKER, [], 1, self.transport.v5)
        self.broker.max_packet = limit - len('{"first_seq":1,"events":[]}') + empty
        await self.back()

    def refused_too_large(self) -> bool:
        """MQTT 5: the locker took the broker's cap from its CONNACK (the broker sees no
        larger publish). MQTT 3.1.1 has no such CONNACK: the broker dropped the locker for
        a larger publish, and says so in its log."""
        if self.transport.v5:
            return 0 < self.transport.max_payload < self.broker.max_packet
        return self.broker.seen(DROPPED_TOO_LARGE) > 0

    async def refuse_credentials(self, refused: bool) -> None:
        """The broker (restarted) checks passwords, and has another for this locker: its
        CONNACK refuses the locker's."""
        await self.away()
        self.broker.passwords = {LOCKER: "not-" + TOKEN} if refused else {}
        await self.back()

    async def refusals(self) -> int:
        await self.broker.settled()  # its log may trail its CONNACK
        return self.broker.seen("disconnected, not authorised")

    refused_as = "Not authorized"
    too_large = "too large"
    framing = len(b'"req":"0123456789abcdef",')


def tls_as(pki: Pki, name: str) -> ssl.SSLContext:
    """A client's TLS: it trusts ``pki``'s CA and shows a certificate with CN ``name``."""
    context = ssl.create_default_context(cafile=str(pki.ca_file))
    context.load_cert_chain(*pki.issue(name))
    return context


def transport_for(url: str, **kwargs: Any) -> MqttTransport:
    kwargs.setdefault("redial", quick_redial())
    return MqttTransport(url, LOCKER, timeout_s=2, **kwargs)


@asynccontextmanager
async def synced_over_mqtt(
    tmp_path: Path,
    version: str = "5",
    *,
    qr_keys: tuple[str, ...] = (),
    first_retry_s: float | None = None,
    mosquitto: Mosquitto | None = None,
    **broker: Any,
) -> AsyncIterator[SyncedOverMqtt]:
    """``qr_keys``: the keys whose pickup and send codes the locker takes.
    ``first_retry_s``: the locker's transport is the daemon's own, made from its config
    with this ``sync.mqtt_first_retry_s`` (the fleet reconnect policy), not one that
    redials at once. ``mosquitto``: a broker of the test's own (not started); with TLS,
    the locker and the back office show certificates from its CA, with CN ``LOCKER`` and
    ``back-office``."""
    if MOSQUITTO is None:
        pytest.skip("mosquitto is not installed (Debian: apt-get install mosquitto)")
    mosquitto = await (mosquitto or Mosquitto(tmp_path / "broker", **broker)).start()
    url = mosquitto.url.replace("127.0.0.1", "localhost")  # the name its certificate has
    tls = mosquitto.tls
    office = ReferenceBackOffice(TOKEN, signing_key=OFFICE_KEY)
    await office.start()  # its /control face
    office_tls = tls_as(tls, "back-office") if tls else None
    face = OfficeOnBroker(office, url, version=version, tls=office_tls)
    await face.start()
    token_file = tmp_path / "sync.token"
    token_file.write_text(TOKEN + "\n")
    policy = {} if first_retry_s is None else {"mqtt_first_retry_s": first_retry_s}
    section = sync_section(url, token_file, transport="mqtt", mqtt_version=version, **policy)
    config = dataclasses.replace(bank_config(tmp_path), sync=section)
    config = dataclasses.replace(config, pickup=dataclasses.replace(config.pickup, qr_keys=qr_keys))
    rig = await Rig(config).start()
    office.clock = rig.clock.time
    locker_tls = tls_as(tls, LOCKER) if tls else None
    transport = transport_for(url, token_file=token_file, version=version, tls=locker_tls)
    if first_retry_s is not None:
        transport = from_config(config, None, lambda: None)
    sync = SyncCoordinator(
        config, rig.store, rig.locker.db, rig.locker, rig.clock, transport, random.Random(7)
    )
    transport.wake, transport.reconnected = sync._kick.set, sync.reconnected
    try:
        yield SyncedOverMqtt(rig, office, sync, broker=mosquitto, face=face, transport=transport)
    finally:
        await sync.close()
        await rig.stop()
        await face.stop()
        await mosquitto.stop()
        await office.stop()
        office.close()
