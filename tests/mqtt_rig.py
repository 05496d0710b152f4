"""The sync rig's locker and reference back office talking through a real mosquitto.

The broker runs on loopback in the test's folder (tests/broker.py); the back
office serves it with ``OfficeOnBroker``, the locker with ``MqttTransport``.
Reconnects are immediate and uncapped here, so a restarted broker is taken
back at once (the fleet policy, lockerd/sync/redial.py, is tested on its own).
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from lockerd.sync import topics
from lockerd.sync.backoffice import ReferenceBackOffice
from lockerd.sync.coordinator import SyncCoordinator
from lockerd.sync.mqtt import PACKET_MARGIN, MqttTransport
from lockerd.sync.officemqtt import OfficeOnBroker
from lockerd.sync.redial import Redial
from tests.broker import MOSQUITTO, Mosquitto
from tests.rig import Rig, bank_config
from tests.sync_rig import LOCKER, OFFICE_KEY, TOKEN, Synced, sync_section


def quick_redial() -> Redial:
    return Redial(0.0, 0.02, 0.2, random.Random(5), per_minute=10**6)


class SyncedOverMqtt(Synced):
    """A :class:`Synced` whose back office is reached through ``broker``."""

    def __init__(self, rig: Rig, office: ReferenceBackOffice, sync: SyncCoordinator, **parts: Any):
        super().__init__(rig, office, sync)
        self.broker: Mosquitto = parts["broker"]
        self.face: OfficeOnBroker = parts["face"]
        self.transport: MqttTransport = parts["transport"]

    async def away(self) -> None:
        await self.broker.stop()

    async def back(self) -> None:
        await self.broker.start()
        await self.broker.wait_for(f" as {self.face.client_id}")
        await self.face.ready.wait()

    async def serve(self, office: ReferenceBackOffice) -> None:
        """``office`` answers on the broker in place of the back office that did."""
        await self.face.stop()
        self.face = OfficeOnBroker(office, self.broker.url)
        await self.face.start()

    async def unserve(self, office: ReferenceBackOffice) -> None:
        assert self.face.office is office
        await self.face.stop()

    async def cap_body(self, limit: int) -> None:
        """The broker's maximum packet size (restarted with it) leaves room for push bodies
        of ``limit`` bytes: its CONNACK says so under MQTT 5, and it refuses a larger publish."""
        await self.away()
        self.broker.max_packet = limit + self.framing + PACKET_MARGIN + len(self.evt_topic)
        await self.back()

    def refused_too_large(self) -> bool:
        """The locker took the broker's cap from its CONNACK (the broker sees no larger
        publish under MQTT 5)."""
        return 0 < self.transport.max_payload < self.broker.max_packet

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
    evt_topic = topics.topic(LOCKER, topics.EVT)


def transport_for(url: str, **kwargs: Any) -> MqttTransport:
    return MqttTransport(url, LOCKER, redial=quick_redial(), timeout_s=2, **kwargs)


@asynccontextmanager
async def synced_over_mqtt(
    tmp_path: Path, version: str = "5", **broker: Any
) -> AsyncIterator[SyncedOverMqtt]:
    if MOSQUITTO is None:
        pytest.skip("mosquitto is not installed (Debian: apt-get install mosquitto)")
    mosquitto = await Mosquitto(tmp_path / "broker", **broker).start()
    office = ReferenceBackOffice(TOKEN, signing_key=OFFICE_KEY)
    face = OfficeOnBroker(office, mosquitto.url)
    await face.start()
    token_file = tmp_path / "sync.token"
    token_file.write_text(TOKEN + "\n")
    section = sync_section(mosquitto.url, token_file, transport="mqtt")
    config = dataclasses.replace(bank_config(tmp_path), sync=section)
    rig = await Rig(config).start()
    office.clock = rig.clock.time
    transport = transport_for(mosquitto.url, token_file=token_file, version=version)
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
        office.close()
