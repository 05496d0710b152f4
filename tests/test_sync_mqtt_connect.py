"""The MQTT transport's connection lifecycle against a real mosquitto: deadlines, rounds."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import paho.mqtt.client as paho
import pytest

from lockerd.sync.backoffice import ReferenceBackOffice
from lockerd.sync.client import Unreachable
from lockerd.sync.mqtt import MqttTransport
from lockerd.sync.officemqtt import OfficeOnBroker
from lockerd.sync.redial import PER_MINUTE
from tests.broker import Mosquitto, needs_mosquitto
from tests.daemon import Daemon
from tests.mqtt_rig import quick_redial, synced_over_mqtt, transport_for
from tests.sync_rig import LOCKER, OFFICE_KEY, TOKEN
from tests.test_sync_process import with_sync


@contextmanager
def first_socket_held(every: bool = False) -> Iterator[tuple[threading.Event, threading.Event]]:
    """The first TCP connect the locker's paho makes (``every``: each one) waits for
    ``release`` (a slow network), and ``ended`` is set once the first connect call has
    returned or raised."""
    release, ended = threading.Event(), threading.Event()
    original = paho.Client._create_socket_connection
    original_connect = paho.Client.connect
    held: list[paho.Client] = []

    def create(client: paho.Client) -> Any:
        if client._client_id == LOCKER.encode() and (every or not held):
            held.append(client)
            release.wait(30)
        return original(client)

    def connect(client: paho.Client, *args: Any, **kwargs: Any) -> Any:
        try:
            return original_connect(client, *args, **kwargs)
        finally:
            if held and client is held[0]:
                ended.set()

    paho.Client._create_socket_connection = create  # type: ignore[method-assign]
    paho.Client.connect = connect  # type: ignore[method-assign]
    try:
        yield release, ended
    finally:
        release.set()
        paho.Client._create_socket_connection = original  # type: ignore[method-assign]
        paho.Client.connect = original_connect  # type: ignore[method-assign]


@needs_mosquitto
async def test_a_connect_that_timed_out_never_reaches_the_broker_later(tmp_path) -> None:
    """The first attempt's socket opens only after its deadline: it must be closed
    without a CONNECT, and the broker sees exactly the connects the transport counted."""
    broker = await Mosquitto(tmp_path / "broker").start()
    office = ReferenceBackOffice(TOKEN, signing_key=OFFICE_KEY)
    face = OfficeOnBroker(office, broker.url)
    await face.start()
    t = MqttTransport(broker.url, LOCKER, redial=quick_redial(), timeout_s=1)
    loop = asyncio.get_running_loop()
    try:
        with first_socket_held() as (release, ended):
            with pytest.raises(Unreachable):
                await t.pull("")  # the first attempt ran out of time
            release.set()  # its socket opens now, late
            assert await loop.run_in_executor(None, ended.wait, 30)
            commands, _ = await t.pull("")  # the next attempt connects
        assert commands == [] and t.connects == 1
        assert t.connected.is_set()
        await broker.settled()
        assert broker.seen("already connected") == 0  # no ghost client took the id
        assert broker.seen(f" as {LOCKER} ") == t.connects  # one CONNECT, the one counted
        assert t.attempts == 2
    finally:
        await t.close()
        await face.stop()
        await broker.stop()
        office.close()


@needs_mosquitto
async def test_a_reconnect_starts_a_round_at_once_even_while_backing_off(tmp_path) -> None:
    """Rounds failed while the broker was away, so the coordinator backs off (on a clock
    that never moves here); the transport's reconnect alone must start the next round,
    whose pull reaches the back office."""
    async with synced_over_mqtt(tmp_path) as s:
        await s.drain()
        waits: asyncio.Queue[int] = asyncio.Queue()
        original = s.sync._wait

        async def noted(delay: float, wake_on_kick: bool) -> None:
            waits.put_nowait(s.sync.failures)
            await original(delay, wake_on_kick)

        s.sync._wait = noted  # type: ignore[method-assign]
        await s.away()
        await s.sync.round()
        assert s.sync.failures == 1
        runner = asyncio.ensure_future(s.sync.run())
        try:
            assert await asyncio.wait_for(waits.get(), 20) == 2  # backing off, 2 failed
            pulls = len(s.office.requests)
            with first_socket_held(every=True) as (release, _):
                await s.back()  # the back office first: the locker's pull must find it
                release.set()
            assert await asyncio.wait_for(waits.get(), 20) == 0  # a round ran, and held
            assert len(s.office.requests) > pulls
            assert any(r[1].endswith("/rpc/req") for r in s.office.requests[pulls:])
        finally:
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)


@needs_mosquitto
async def test_the_connect_cap_holds_across_daemon_restarts(tmp_path) -> None:
    """A crash loop (systemd restarts it within 2 s) must not connect more than 4 times a
    minute: the daemon's first connect after a start waits for the cap too."""
    broker = await Mosquitto(tmp_path / "broker").start()
    url = f'transport = "mqtt"\nurl = "{broker.url}"\nmqtt_first_retry_s = 0'
    config = with_sync(tmp_path, url)
    state = ("--state-dir", str(tmp_path))
    try:
        for started in range(1, PER_MINUTE + 1):
            async with Daemon(config, *state) as daemon:
                await broker.wait_for(" as demo-locker-1 ", count=started)
                await daemon.kill()
        async with Daemon(config, *state) as daemon:
            line = await daemon.printed("connects in the last minute")
            assert "MQTT connect" in line
            await broker.settled()
            assert broker.seen(" as demo-locker-1 ") == PER_MINUTE
    finally:
        await broker.stop()


@needs_mosquitto
async def test_closing_while_the_broker_has_the_connect_but_no_connack_is_handled(
    tmp_path,
) -> None:
    """A daemon stopping mid-connect stops: close() between CONNECT reaching the broker and
    its CONNACK being handled ends (Python 3.11's ``wait_for`` could swallow the cancel and
    leave the dialer waiting for ever)."""
    for run in range(5):
        broker = await Mosquitto(tmp_path / str(run)).start()
        try:
            transport = transport_for(broker.url)
            push = asyncio.ensure_future(transport.push([], 1))
            await broker.wait_for(f" as {LOCKER} ")  # CONNECT in; CONNACK not handled yet
            await asyncio.wait_for(transport.close(), 5)
            push.cancel()
            await asyncio.gather(push, return_exceptions=True)
        finally:
            await broker.stop()
