"""MQTT packet caps against a real mosquitto, and the locker ids a topic can carry.

A PUBLISH is measured whole, as it goes on the wire (tests/mqtt_rig.py lays it
out by hand, apart from the code): the broker's maximum packet size and our
own 96 KiB are kept to the byte, for a short and the longest locker id.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from lockerd.config import parse
from lockerd.domain import Event
from lockerd.sync import topics
from lockerd.sync.client import TooLarge
from lockerd.sync.mqtt import MqttTransport
from tests.asyncapi import every_publish_is_as_the_asyncapi_file_says  # noqa: F401 (autouse)
from tests.broker import needs_mosquitto
from tests.mqtt_rig import push_packet_size, push_packet_size_of, quick_redial, synced_over_mqtt
from tests.test_config import problems
from tests.test_sync_config import with_sync
from tests.test_sync_mqtt import events, heard


@needs_mosquitto
@pytest.mark.parametrize("version", ["5", "3.1.1"])
async def test_a_broker_packet_cap_halves_the_batch_and_loses_nothing(tmp_path, version) -> None:
    async with synced_over_mqtt(tmp_path, version, max_packet=8192) as s:
        for n in range(200):
            detail = f"{n:03} " + "x" * 100
            data = {"board": "b1", "key": "closed_bit", "detail": detail}
            s.rig.store.journal.record(Event.BOARD_POLARITY_SUSPECT, data)
        assert s.rig.store.journal.unsent_count() > 200
        await s.drain()
        if version == "5":  # its CONNACK says so; under 3.1.1 it drops the connection
            assert s.transport.max_payload < 8192
        assert max(s.office.push_bytes) <= min(s.transport.max_payload, 8192)
        s.assert_every_event_arrived_once_in_order()


@needs_mosquitto
@pytest.mark.parametrize("version", ["5", "3.1.1"])
async def test_a_halved_batch_grows_back_an_hour_after_the_cap_is_gone(tmp_path, version) -> None:
    """The broker's cap halves the batch; the broker is restarted without one. An hour on
    (the rig's clock), each round doubles the batch back, until a backlog goes in full
    batches of ``sync.batch`` events again."""
    async with synced_over_mqtt(tmp_path, version, max_packet=8192) as s:
        full = s.sync.sync.batch

        def backlog(count: int) -> None:
            for n in range(count):
                data = {"board": "b1", "key": "closed_bit", "detail": f"{n:03} " + "x" * 100}
                s.rig.store.journal.record(Event.BOARD_POLARITY_SUSPECT, data)

        backlog(200)
        await s.drain()
        halved = s.sync.batch
        assert halved < full
        await s.away()
        s.broker.max_packet = 0
        await s.back()
        backlog(3)
        await s.drain()
        assert s.sync.batch == halved  # no sooner than an hour
        sizes = [halved]
        while s.sync.batch < full and len(sizes) < 10:
            s.rig.clock.spend(3600)
            backlog(1)
            await s.drain()
            sizes.append(s.sync.batch)
        assert sizes == sorted(sizes) and sizes[-1] == full, sizes
        pushed = len(s.office.push_bytes)
        backlog(2 * full)
        await s.drain()
        assert len(s.office.push_bytes) - pushed == 2  # two full batches
        s.assert_every_event_arrived_once_in_order()


@needs_mosquitto
async def test_under_mqtt_311_a_drop_not_about_size_does_not_halve_the_batch(tmp_path) -> None:
    """The broker restarts while the first push of the connection waits for its answer:
    the round fails as unreachable, the batch is not cut, and the same batch goes next."""
    async with synced_over_mqtt(tmp_path, "3.1.1") as s:
        for n in range(40):
            data = {"board": "b1", "key": "closed_bit", "detail": f"{n:03} " + "x" * 100}
            s.rig.store.journal.record(Event.BOARD_POLARITY_SUSPECT, data)
        answer, arrived, first = s.face._handle, asyncio.Event(), []

        def unanswered_first(locker, leaf, message, body) -> None:
            if leaf == topics.EVT and not arrived.is_set():
                first.append(len(message.payload))
                arrived.set()  # this push is never answered: the broker goes first
                return
            answer(locker, leaf, message, body)

        s.face._handle = unanswered_first
        batch = s.sync.batch
        with heard("too large") as log:
            round_ = asyncio.ensure_future(s.sync.round())
            await asyncio.wait_for(arrived.wait(), 10)
            await s.away()
            await s.back()
            await round_
            assert s.sync.failures == 1 and s.sync.batch == batch, s.sync.last_error
            await s.drain()
        assert s.sync.batch == batch and not log.said.is_set()
        assert s.office.push_bytes == first  # the same batch, once more, and taken
        s.assert_every_event_arrived_once_in_order()


LONGEST_ID = "site-0042-" + "x" * 118  # locker.id's 128 characters at most


def events_of_packet(
    locker_id: str, size: int, count: int, first_seq: int = 1, v5: bool = True
) -> list[dict]:
    """``count`` events whose push is a PUBLISH of exactly ``size`` bytes on the wire
    (tests/mqtt_rig.py lays the packet out by hand): the last event is padded to fit."""

    def padded(pad: int) -> list[dict]:
        batch = events(first_seq, first_seq + count - 1)
        batch[-1]["type"] = "board.polarity_suspect"
        batch[-1]["data"] = {"board": "b1", "key": "closed_bit", "detail": "p" * pad}
        return batch

    pad = size - push_packet_size(locker_id, padded(0), first_seq, v5)
    while push_packet_size(locker_id, padded(pad), first_seq, v5) > size:
        pad -= 1  # the remaining length took one more byte
    assert push_packet_size(locker_id, padded(pad), first_seq, v5) == size
    return padded(pad)


@needs_mosquitto
@pytest.mark.parametrize("locker_id", ["LK01", LONGEST_ID])
async def test_a_push_of_exactly_the_brokers_maximum_packet_size_passes_and_no_larger(
    tmp_path, locker_id
) -> None:
    """mosquitto ``max_packet_size 8192``: a push whose PUBLISH is 8192 bytes is taken;
    one of 8193 bytes is too large for the locker (the coordinator halves the batch), and
    never reaches the broker (which would close the connection)."""
    async with synced_over_mqtt(tmp_path, max_packet=8192) as s:
        t = MqttTransport(s.broker.url, locker_id, redial=quick_redial(), timeout_s=5)
        try:
            await t.pull("")  # connected: the CONNACK says 8192
            assert await t.push(events_of_packet(locker_id, 8192, 2), 1) == 2
            over = events_of_packet(locker_id, 8193, 2, first_seq=3)
            with pytest.raises(TooLarge):
                await t.push(over, 3)
            assert await t.push(over[:1], 3) == 3 and await t.push(over[1:], 3) == 4  # halved
            assert t.connects == 1 and t.connected.is_set()
        finally:
            await t.close()
        await s.broker.settled()
        gone = [line.split(": ", 1)[1] for line in s.broker.log if f"{locker_id} disc" in line]
        assert gone == [f"Client {locker_id} disconnected."]  # only by its close
        assert s.broker.seen("oversize packet") == 0  # what mosquitto says when it drops


@needs_mosquitto
@pytest.mark.parametrize("version", ["5", "3.1.1"])
async def test_no_push_is_a_packet_over_96_kib_even_with_the_longest_locker_id(
    tmp_path, version
) -> None:
    """96 KiB is the whole PUBLISH (topic, properties and all): a push of exactly 98,304
    bytes goes as one; one byte more and the locker sends the events that fit first."""
    v5 = version == "5"
    async with synced_over_mqtt(tmp_path) as s:
        t = MqttTransport(s.broker.url, LONGEST_ID, redial=quick_redial(), version=version)
        try:
            assert await t.push(events_of_packet(LONGEST_ID, 98304, 3, 1, v5), 1) == 3
            over = events_of_packet(LONGEST_ID, 98305, 3, 4, v5)
            assert await t.push(over, 4) == 5  # the first two; the last goes next
            assert await t.push(over[2:], 4) == 6
        finally:
            await t.close()
        record = s.office.locker(LONGEST_ID)
        assert sorted(record.events) == list(range(1, 7))
        packets = [push_packet_size_of(LONGEST_ID, n, v5) for n in s.office.push_bytes]
        assert packets[0] == 98304 and max(packets) == 98304, packets


def mqtt_config_with_id(tmp_path, locker_id: str) -> str:
    config = with_sync(tmp_path, 'transport = "mqtt"\nurl = "mqtt://127.0.0.1:1883"')
    assert 'id = "test-locker"' in config
    return config.replace('id = "test-locker"', f"id = {json.dumps(locker_id)}", 1)


@pytest.mark.parametrize(
    "locker_id",
    [
        "site\u00011",
        "site\t1",
        "site 1",
        "site\x7f1",
        "site\n1",
        "s/1",
        "s+1",
        "s#1",
        "sité",
        "x" * 129,
    ],
)
def test_check_config_refuses_a_locker_id_an_mqtt_topic_cannot_carry(tmp_path, locker_id) -> None:
    found = problems(mqtt_config_with_id(tmp_path, locker_id), tmp_path)
    said = [line for line in found if f"locker.id: {locker_id!r}: " in line]
    assert said and "printable ASCII" in said[0] and said[0].endswith("none of / + #"), found


def test_the_longest_locker_id_keeps_every_topic_within_aws_limits(tmp_path) -> None:
    """AWS IoT Core: a client id of at most 128 bytes; topics of at most 256 bytes and 7
    slashes (filters included)."""
    config = parse(mqtt_config_with_id(tmp_path, LONGEST_ID), tmp_path / "bank.toml")
    assert config.locker.id == LONGEST_ID and len(LONGEST_ID.encode()) == 128
    leaves = [*topics.DEVICE_SUBSCRIBES, *topics.OFFICE_SUBSCRIBES]
    names = [topics.topic(LONGEST_ID, leaf) for leaf in leaves]
    names += [topics.topic("+", leaf) for leaf in topics.OFFICE_SUBSCRIBES]
    assert len(names) == 9
    for name in names:
        assert len(name.encode()) <= 256 and name.count("/") <= 7, name
    assert max(len(name.encode()) for name in names) == len("lockers//rpc/req") + 128
