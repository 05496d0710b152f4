"""A locker on the fake clock syncing with the reference back office over real HTTP on loopback.

The coordinator's rounds are driven by the test (``await sync.round()``):
time in the locker is the fake clock's, the network is real.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from lockerd.config.schema import SyncSection
from lockerd.qrtoken import public_text
from lockerd.sync.backoffice import ReferenceBackOffice
from lockerd.sync.coordinator import SyncCoordinator
from tests.rig import Rig, bank_config

TOKEN = "locker-token-0123456789"
OFFICE_KEY = Ed25519PrivateKey.generate()
LOCKER = "test-locker"


class Synced:
    def __init__(self, rig: Rig, office: ReferenceBackOffice, sync: SyncCoordinator):
        self.rig, self.office, self.sync = rig, office, sync

    async def away(self) -> None:
        """The back office can no longer be reached."""
        await self.office.stop()

    async def back(self) -> None:
        await self.office.restart()

    def pushes(self) -> list[tuple[str, str, int]]:
        """The pushes the back office answered, over either transport."""
        return [r for r in self.office.requests if r[1].endswith(PUSHES)]

    async def serve(self, office: ReferenceBackOffice) -> None:
        """Make ``office`` (started here) the back office the locker reaches, in place of
        the one it reached so far (a back office restarted, or restored)."""
        await office.start()
        self.sync.client.base = f"{office.url}/v1/lockers/{LOCKER}"  # type: ignore[attr-defined]

    async def unserve(self, office: ReferenceBackOffice) -> None:
        """``office`` can no longer be reached."""
        await office.stop()

    async def cap_body(self, limit: int) -> None:
        """Push bodies over ``limit`` bytes are refused on the way (a proxy's 413)."""
        self.office.faults.max_body = limit

    def refused_too_large(self) -> bool:
        """A push was refused as too large where the carrier refuses it."""
        return 413 in statuses(self.office, PUSHES)

    async def refuse_credentials(self, refused: bool) -> None:
        """The locker's credentials are refused (HTTPS: 401 to every request)."""
        self.office.faults.refuse_auth = refused

    async def refusals(self) -> int:
        """Requests (or connects) refused for their credentials."""
        return statuses(self.office, PUSHES + PULLS).count(401)

    #: How the coordinator's error names refused credentials.
    refused_as = "401"
    #: How the coordinator's error names a push refused as too large.
    too_large = "413"
    #: Bytes a push carries besides its body (MQTT: the ``req`` member).
    framing = 0

    @property
    def record(self) -> Any:
        return self.office.locker(LOCKER)

    def journal(self) -> list[dict[str, Any]]:
        return self.rig.store.journal.events(0, limit=10**9)

    async def drain(self, rounds: int = 50) -> None:
        """Rounds until nothing is unsent and a round succeeded."""
        sync = self.sync
        for _ in range(rounds):
            await sync.round()
            if sync.failures == 0 and self.rig.store.journal.unsent_count() == 0:
                return
        raise AssertionError(f"not drained: {sync.status()}")

    def issue(self, kind: str, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return self.office.issue(LOCKER, kind, data, **kwargs)

    def assert_every_event_arrived_once_in_order(self) -> None:
        sent = self.record.in_order()
        journal = self.journal()
        assert [e["seq"] for e in sent] == [e["seq"] for e in journal]
        for got, kept in zip(sent, journal, strict=True):
            data = {k: v for k, v in got["data"].items() if k != "pickup_code"}
            assert (got["type"], got["at"], data) == (kept["type"], kept["at"], kept["data"])
        assert self.record.acked == journal[-1]["seq"]


PUSHES = ("/events", "/evt")
PULLS = ("/commands", "/rpc/req")


def statuses(office: ReferenceBackOffice, kind: tuple[str, ...]) -> list[int]:
    """The statuses of the requests of ``kind`` (PUSHES or PULLS) ``office`` answered, over
    either transport (MQTT answers carry the HTTPS status, docs/sync-mqtt.md)."""
    return [status for _, path, status in office.requests if path.endswith(kind)]


def sync_section(url: str, token_file: Path, **values: Any) -> SyncSection:
    return SyncSection(
        url=url,
        token_file=str(token_file),
        command_keys=(public_text(OFFICE_KEY),),
        batch=100,
        timeout_s=2,
        **values,
    )


@pytest.fixture
async def office() -> AsyncIterator[ReferenceBackOffice]:
    server = ReferenceBackOffice(TOKEN, signing_key=OFFICE_KEY)
    await server.start()
    yield server
    await server.stop()


@asynccontextmanager
async def synced_over_https(
    tmp_path: Path, office: ReferenceBackOffice, qr_keys: tuple[str, ...] = ()
) -> AsyncIterator[Synced]:
    """``qr_keys``: the keys whose pickup and send codes the locker takes."""
    token_file = tmp_path / "sync.token"
    token_file.write_text(TOKEN + "\n")
    config = bank_config(tmp_path)
    config = dataclasses.replace(config, sync=sync_section(office.url, token_file))
    config = dataclasses.replace(config, pickup=dataclasses.replace(config.pickup, qr_keys=qr_keys))
    rig = await Rig(config).start()
    office.clock = rig.clock.time
    sync = SyncCoordinator(
        config, rig.store, rig.locker.db, rig.locker, rig.clock, rng=random.Random(7)
    )
    yield Synced(rig, office, sync)
    await sync.close()
    await rig.stop()


@pytest.fixture
async def synced(tmp_path: Path, office: ReferenceBackOffice) -> AsyncIterator[Synced]:
    async with synced_over_https(tmp_path, office) as s:
        yield s


#: The transports every behaviour test runs over: HTTPS, MQTT 5 and MQTT 3.1.1 through a
#: real mosquitto (the locker and the back office both speak the version named).
TRANSPORTS = ("https", "mqtt", "mqtt-3.1.1")
#: :data:`TRANSPORTS` as a test's parameters: the default suite runs HTTPS and MQTT 5,
#: the slow group MQTT 3.1.1 (so that the default suite keeps within its five minutes).
TRANSPORT_PARAMS = [
    *(t for t in TRANSPORTS if t != "mqtt-3.1.1"),
    pytest.param("mqtt-3.1.1", marks=pytest.mark.slow),
]


@asynccontextmanager
async def synced_via(
    transport: str, tmp_path: Path, qr_keys: tuple[str, ...] = ()
) -> AsyncIterator[Synced]:
    """The same locker and back office over ``transport`` (one of :data:`TRANSPORTS`)."""
    if transport.startswith("mqtt"):
        from tests.mqtt_rig import synced_over_mqtt

        version = transport.partition("-")[2] or "5"
        async with synced_over_mqtt(tmp_path, version, qr_keys=qr_keys) as s:
            yield s
        return
    assert transport == "https", transport
    server = ReferenceBackOffice(TOKEN, signing_key=OFFICE_KEY)
    await server.start()
    try:
        async with synced_over_https(tmp_path, server, qr_keys) as s:
            yield s
    finally:
        await server.stop()


@pytest.fixture(params=TRANSPORT_PARAMS)
async def synced_any(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Synced]:
    """The same locker and back office, over HTTPS or through a real mosquitto (MQTT 5 or
    3.1.1). A test that is slow over one of them may narrow it with
    ``@pytest.mark.parametrize("synced_any", [...], indirect=True)``, saying why."""
    async with synced_via(request.param, tmp_path) as s:
        yield s
