"""Sync with ``lockerd run`` as a real process: killed in the middle of a batch, then restarted."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator

import pytest

from lockerd.qrtoken import public_text
from lockerd.sync.backoffice import ReferenceBackOffice
from tests.browser import demo_config
from tests.daemon import Daemon
from tests.sync_rig import OFFICE_KEY, TOKEN


@pytest.fixture(params=["https", "mqtt"])
async def sync_url(request, tmp_path, office: ReferenceBackOffice) -> AsyncIterator[str]:
    """The ``[sync]`` lines that reach ``office``: over HTTPS, or through a real mosquitto."""
    if request.param == "https":
        yield f'url = "{office.url}"'
        return
    from lockerd.sync.officemqtt import OfficeOnBroker
    from tests.broker import MOSQUITTO, Mosquitto

    if MOSQUITTO is None:
        pytest.skip("mosquitto is not installed (Debian: apt-get install mosquitto)")
    broker = await Mosquitto(tmp_path / "broker").start()
    face = OfficeOnBroker(office, broker.url)
    await face.start()
    yield f'transport = "mqtt"\nurl = "{broker.url}"\nmqtt_first_retry_s = 0'
    await face.stop()
    await broker.stop()


def with_sync(tmp_path, sync_url: str) -> str:
    token = tmp_path / "sync.token"
    token.write_text(TOKEN)
    config = demo_config(tmp_path)
    config.write_text(
        config.read_text()
        + f"""
[sync]
{sync_url}
token_file = "{token}"
interval_s = 1
batch = 100
timeout_s = 60
backoff_base_s = 0.1
backoff_max_s = 1
command_keys = ["{public_text(OFFICE_KEY)}"]
"""
    )
    return config


def journal(path) -> list[tuple[int, str]]:
    with sqlite3.connect(path) as db:
        return [tuple(r) for r in db.execute("SELECT seq, type FROM journal ORDER BY seq")]


async def test_killed_mid_batch_then_restarted_loses_and_repeats_nothing(
    tmp_path, office, sync_url
) -> None:
    config = with_sync(tmp_path, sync_url)
    record = office.locker("demo-locker-1")
    office.faults.delay_s = 3600  # the first push hangs in the back office
    async with Daemon(config, "--state-dir", str(tmp_path)) as daemon:
        await office.wait_for(lambda: office.arrivals >= 1)
        _, login = await daemon.call("POST", "/api/courier/login", {"code": "1234"})
        assert "token" in login
        await daemon.kill()  # with a batch in flight
    assert record.acked == 0
    office.faults.delay_s = 0

    # Commands issued while the locker is down.
    office.issue(
        "demo-locker-1", "courier.upsert", {"id": "c7", "code": "7777", "rights": ["deliver"]}
    )
    office.issue("demo-locker-1", "parcel.expect", {"barcode": "LATE0001", "size": "S"})

    async with Daemon(config, "--state-dir", str(tmp_path)) as daemon:
        events = await daemon.events(after=0)
        for command in record.commands:
            await events.event("command.applied", id=command["id"])
        status, login = await daemon.call("POST", "/api/courier/login", {"code": "7777"})
        assert status == 200 and login["courier"]["id"] == "c7"
        _, now = await daemon.call("GET", "/api/status")
        await office.wait_for(lambda: record.acked >= now["last_seq"])
        await events.close()
    kept = journal(tmp_path / "lockerd.db")
    sent = [(e["seq"], e["type"]) for e in record.in_order()]
    assert sent == kept[: len(sent)] and len(sent) >= now["last_seq"]
    applied = [e for e in record.in_order() if e["type"] == "command.applied"]
    assert [e["data"]["id"] for e in applied] == [c["id"] for c in record.commands]
