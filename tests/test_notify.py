"""systemd's notify protocol: READY with a status, watchdog pings only while polling progresses."""

from __future__ import annotations

import asyncio
import os
import re
import socket

import pytest

from lockerd.notify import Notifier, Watchdog
from tests.browser import demo_config
from tests.daemon import Daemon


class FakeSystemd:
    """A NOTIFY_SOCKET that collects what the service sends."""

    def __init__(self, address: str):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + address[1:] if address.startswith("@") else address)
        self.sock.setblocking(False)
        self.address = address
        self.messages: list[dict[str, str]] = []

    async def next(self, within: float = 20) -> dict[str, str]:
        data = await asyncio.wait_for(asyncio.get_running_loop().sock_recv(self.sock, 4096), within)
        message = dict(line.split("=", 1) for line in data.decode().splitlines())
        self.messages.append(message)
        return message

    async def until(self, key: str, within: float = 20) -> dict[str, str]:
        while True:
            message = await self.next(within)
            if key in message:
                return message

    def close(self) -> None:
        self.sock.close()


@pytest.mark.parametrize("abstract", [False, True])
async def test_ready_and_status_reach_the_notify_socket(tmp_path, abstract) -> None:
    address = f"@lockerd-test-{os.getpid()}" if abstract else str(tmp_path / "notify")
    systemd = FakeSystemd(address)
    try:
        Notifier({"NOTIFY_SOCKET": address}).send(ready=1, status="ready: 2 boards")
        assert await systemd.next() == {"READY": "1", "STATUS": "ready: 2 boards"}
    finally:
        systemd.close()


def test_without_systemd_nothing_is_sent_and_there_is_no_watchdog() -> None:
    notifier = Notifier({})
    assert not notifier.enabled and notifier.watchdog_interval is None
    notifier.send(ready=1)  # does nothing, raises nothing


@pytest.mark.parametrize(
    ("environ", "interval"),
    [
        ({"WATCHDOG_USEC": "20000000"}, 10.0),
        ({"WATCHDOG_USEC": "20000000", "WATCHDOG_PID": str(os.getpid())}, 10.0),
        ({"WATCHDOG_USEC": "20000000", "WATCHDOG_PID": "1"}, None),  # meant for another process
        ({"WATCHDOG_USEC": "soon"}, None),
    ],
)
def test_the_watchdog_interval_is_half_of_watchdog_usec(environ, interval) -> None:
    assert Notifier({"NOTIFY_SOCKET": "/x", **environ}).watchdog_interval == interval


def test_a_lost_systemd_is_logged_not_raised(tmp_path, caplog) -> None:
    Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone")}).send(watchdog=1)
    assert "sd_notify" in caplog.text


async def test_the_watchdog_is_fed_only_while_the_pollers_progress(rig, tmp_path) -> None:
    systemd = FakeSystemd(str(tmp_path / "notify"))
    try:
        watchdog = Watchdog(
            Notifier({"NOTIFY_SOCKET": systemd.address}), lambda: rig.locker.bank.polls
        )
        await rig.polls(2)
        assert watchdog.check() and await systemd.next() == {"WATCHDOG": "1"}
        for task in rig._pollers:  # the bus poller hangs
            task.cancel()
        await asyncio.gather(*rig._pollers, return_exceptions=True)
        await rig.clock.advance(10)
        assert not watchdog.check() and not watchdog.check()
        assert (watchdog.pings, watchdog.missed) == (1, 2)
    finally:
        systemd.close()


async def test_the_daemon_is_ready_with_a_silent_board_and_says_so(tmp_path) -> None:
    # The RS-485 bus is a pty nobody answers on: a dead board must not block readiness.
    master, slave = os.openpty()
    config = demo_config(tmp_path)
    text = re.sub(
        r"simulator = true +# run the simulator twin;.*",
        f'port = "{os.ttyname(slave)}"',
        config.read_text(),
        count=1,
    )
    config.write_text(text)
    systemd = FakeSystemd(str(tmp_path / "notify"))
    os.environ["NOTIFY_SOCKET"], os.environ["WATCHDOG_USEC"] = systemd.address, "1000000"
    try:
        async with Daemon(config, "--state-dir", str(tmp_path)) as daemon:
            ready = await systemd.until("READY")
            assert re.fullmatch(r"degraded: board cu0 silent; kiosk at http://.*/", ready["STATUS"])
            await systemd.until("WATCHDOG")  # the GPIO cabinet's poller keeps running...
            await daemon.stop()
        stopping = await systemd.until("STOPPING")
        assert stopping["STATUS"] == "stopping"
    finally:
        del os.environ["NOTIFY_SOCKET"], os.environ["WATCHDOG_USEC"]
        systemd.close()
        os.close(master)
        os.close(slave)
