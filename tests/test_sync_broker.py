"""Sync over MQTT with what a fleet runs: the daemon's own reconnect policy through a broker
restart, and presence (the will and the ``online`` message, ordered by connect)."""

from __future__ import annotations

import asyncio

from lockerd.sync.redial import FIRST_RETRY_FLOOR, PER_MINUTE
from tests.broker import needs_mosquitto
from tests.mqtt_rig import synced_over_mqtt
from tests.sync_rig import LOCKER

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
