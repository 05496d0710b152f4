"""benchmarks/fleet_storm.py's simulated locker does on the wire what lockerd does."""

from __future__ import annotations

import asyncio

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from benchmarks.fleet_storm import Tally, attempt, hold
from lockerd.sync import topics
from tests.broker import Mosquitto, needs_mosquitto


@needs_mosquitto
async def test_a_simulated_locker_subscribes_and_says_it_is_online(tmp_path) -> None:
    broker = await Mosquitto(tmp_path / "broker").start()
    loop = asyncio.get_running_loop()
    heard: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
    office = paho.Client(CallbackAPIVersion.VERSION2, client_id="office")
    office.on_message = lambda c, u, m: loop.call_soon_threadsafe(
        heard.put_nowait, (m.topic, m.payload)
    )
    subscribed = asyncio.Event()
    office.on_subscribe = lambda *a: loop.call_soon_threadsafe(subscribed.set)
    office.on_connect = lambda c, *a: c.subscribe("lockers/#", 1)
    office.connect("127.0.0.1", broker.port)
    office.loop_start()
    tally = Tally()
    try:
        await asyncio.wait_for(subscribed.wait(), 20)
        connection = await attempt(7, None, broker.port, tally)  # type: ignore[arg-type]
        assert not isinstance(connection, str), connection
        assert tally.connected == set()  # not back before it holds (counted at SUBACK)
        holding = asyncio.ensure_future(hold(7, connection, tally))
        topic, payload = await asyncio.wait_for(heard.get(), 20)
        assert topic == topics.topic("storm-00007", topics.CONN)
        assert topics.decode(payload) == {"online": True}
        assert tally.connected == {7}
        # It subscribed as lockerd does: a command poke reaches it.
        office.publish(topics.topic("storm-00007", topics.CMD), b'{"pending":1}', 1)
        reader, _ = connection
        holding.cancel()
        packet = await asyncio.wait_for(reader.read(4096), 20)
        assert packet[0] >> 4 == 3 and b"storm-00007/cmd" in packet  # a PUBLISH on cmd
        connection[1].close()
        await broker.settled()
        assert broker.seen(" as storm-00007 ") == 1
    finally:
        office.loop_stop()
        await broker.stop()
