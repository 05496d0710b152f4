"""``lockerd back-office --mqtt``: what it says and does when the broker is not there."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import sys
import time

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
