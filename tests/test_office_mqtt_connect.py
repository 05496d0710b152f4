"""``lockerd back-office --mqtt``: what it says and does when the broker is not there."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import sys
import time
from typing import Any

from lockerd.cli import main
from lockerd.sync.backoffice import ReferenceBackOffice
from lockerd.sync.officemqtt import OfficeOnBroker
from tests.broker import free_port
from tests.sync_rig import OFFICE_KEY, TOKEN


def test_plain_mqtt_to_a_host_off_loopback_is_refused_before_anything_starts(
    tmp_path, capsys
) -> None:
    token = tmp_path / "token"
    token.write_text(TOKEN)
    database = tmp_path / "office.db"
    argv = ["back-office", "--token-file", str(token), "--database", str(database), "--port", "0"]
    code = main([*argv, "--mqtt", "mqtt://broker.example.com:1883"])
    err = capsys.readouterr().err
    assert code == 2
    assert "--mqtt" in err and "mqtts://" in err and "loopback" in err
    assert len(err.strip().splitlines()) == 1
    assert not database.exists()  # nothing was started or created


async def test_an_unreachable_broker_is_reported_in_one_line_and_retried_ever_later() -> None:
    """Something listens and hangs up at once (a broker not serving yet): each attempt
    is reported with its reason, and the attempts back off."""
    attempts: list[float] = []
    fifth = asyncio.Event()

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        attempts.append(time.monotonic())
        writer.close()
        if len(attempts) >= 5:
            fifth.set()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    lines: list[str] = []
    office = ReferenceBackOffice(TOKEN, signing_key=OFFICE_KEY)
    face = OfficeOnBroker(office, f"mqtt://127.0.0.1:{port}", announce=lines.append)
    starting = asyncio.ensure_future(face.start())
    try:
        await asyncio.wait_for(fifth.wait(), 30)
        gaps = [b - a for a, b in itertools.pairwise(attempts)]
        assert gaps[1] >= 0.4 and gaps[2] >= 0.8 and gaps[3] >= 1.6  # backing off
        assert len(lines) >= 4 and all("\n" not in line for line in lines)
        assert f"mqtt://127.0.0.1:{port}" in lines[0] and "next try in" in lines[0]
        assert not face.ready.is_set()
    finally:
        starting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await starting
        await face.stop()
        server.close()
        office.close()


async def test_an_unreachable_broker_is_reported_by_the_command(tmp_path) -> None:
    token = tmp_path / "token"
    token.write_text(TOKEN)
    port = free_port()  # nothing listens there
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "lockerd", "back-office", "--token-file", str(token),
        "--database", str(tmp_path / "office.db"), "--port", "0",
        "--mqtt", f"mqtt://127.0.0.1:{port}",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert process.stderr is not None
        line = await asyncio.wait_for(process.stderr.readline(), 30)
        assert f"mqtt://127.0.0.1:{port}" in line.decode() and "refused" in line.decode()
    finally:
        process.terminate()
        await process.wait()


async def _packet(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One MQTT control packet: its first byte and its body."""
    first = (await reader.readexactly(1))[0]
    length, shift = 0, 0
    while True:
        byte = (await reader.readexactly(1))[0]
        length |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            break
    return first, await reader.readexactly(length)


def fake_broker(codes: int, attempts: list[float], enough: asyncio.Event, hang_up: bool) -> Any:
    """An MQTT 5 listener that accepts CONNECT, answers the SUBSCRIBE with reason code
    ``codes`` for each of the three filters, then hangs up (or waits for the client to)."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        attempts.append(time.monotonic())
        if len(attempts) >= 5:
            enough.set()
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            assert (await _packet(reader))[0] == 0x10  # CONNECT
            writer.write(bytes([0x20, 3, 0, 0, 0]))  # CONNACK: accepted, no properties
            first, body = await _packet(reader)
            assert first == 0x82  # SUBSCRIBE
            writer.write(bytes([0x90, 6, *body[:2], 0, codes, codes, codes]))
            await writer.drain()
            if not hang_up:
                await reader.read()  # until the client closes
        writer.close()

    return serve


async def _office_on(serve: Any, lines: list[str]) -> tuple[Any, OfficeOnBroker, Any]:
    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    office = ReferenceBackOffice(TOKEN, signing_key=OFFICE_KEY)
    face = OfficeOnBroker(office, f"mqtt://127.0.0.1:{port}", announce=lines.append)
    served: list[bool] = []
    face.on_ready = lambda: served.append(True)
    return server, face, served


async def _stop(server: Any, face: OfficeOnBroker) -> None:
    await face.stop()
    server.close()
    face.office.close()


async def test_a_broker_that_refuses_the_subscriptions_is_retried_ever_later() -> None:
    """SUBACK "Not authorized" (0x87) for its filters (a wrong ACL or policy; mosquitto
    2.0.11 itself grants such a SUBSCRIBE and delivers nothing): the attempt fails with the
    reason in one line, it is never ready, and the attempts back off."""
    attempts: list[float] = []
    fifth = asyncio.Event()
    lines: list[str] = []
    server, face, served = await _office_on(fake_broker(0x87, attempts, fifth, False), lines)
    await face.start(wait=False)
    try:
        await asyncio.wait_for(fifth.wait(), 30)
        gaps = [b - a for a, b in itertools.pairwise(attempts)]
        assert gaps[1] >= 0.4 and gaps[2] >= 0.8 and gaps[3] >= 1.6  # backing off
        assert served == [] and not face.ready.is_set()
        assert all("\n" not in line for line in lines)
        assert "refused the subscription to lockers/+/" in lines[0], lines
        assert "Not authorized" in lines[0] and "next try in" in lines[0], lines
    finally:
        await _stop(server, face)


async def test_a_broker_that_drops_it_after_connecting_is_retried_ever_later() -> None:
    """CONNACK, SUBACK granted, then the connection closed: no tight loop of redials."""
    attempts: list[float] = []
    fifth = asyncio.Event()
    lines: list[str] = []
    server, face, served = await _office_on(fake_broker(0x01, attempts, fifth, True), lines)
    await face.start(wait=False)
    try:
        await asyncio.wait_for(fifth.wait(), 30)
        gaps = [b - a for a, b in itertools.pairwise(attempts)]
        assert gaps[1] >= 0.4 and gaps[2] >= 0.8 and gaps[3] >= 1.6  # backing off
        assert len(served) >= 4  # each time it did serve, briefly
        assert all("\n" not in line for line in lines)
        assert "lost the broker" in lines[0] and "next try in" in lines[0], lines
    finally:
        await _stop(server, face)
