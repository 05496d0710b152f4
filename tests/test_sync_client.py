"""The back-office client: each kind of answer mapped to its meaning; TLS checked against the CA."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec

from lockerd.config.schema import SyncSection
from lockerd.sync.backoffice import ReferenceBackOffice
from lockerd.sync.client import (
    AuthRejected,
    BackOfficeClient,
    ProtocolError,
    ServerError,
    TooLarge,
    UnknownCursor,
    Unreachable,
    tls_context,
)
from tests.pki import certificate, pem

EVENT = {"seq": 1, "type": "locker.started", "at": 1.0, "data": {"changed": 0, "interrupted": 0}}


@pytest.fixture
def token_file(tmp_path) -> Path:
    path = tmp_path / "token"
    path.write_text("secret-token\n")
    return path


async def answering(status: int, body: str, content_type: str = "application/json") -> str:
    async def handler(request: web.Request) -> web.Response:
        assert request.headers["Authorization"] == "Bearer secret-token"
        return web.Response(status=status, text=body, content_type=content_type)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    answering.runners.append(runner)
    return f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"


answering.runners = []


@pytest.fixture(autouse=True)
async def _cleanup():
    yield
    for runner in answering.runners:
        await runner.cleanup()
    answering.runners.clear()


#: Answers to a push and what each means (over MQTT too: tests/test_sync_mqtt.py).
PUSH_ANSWERS = [
        (401, "{}", AuthRejected, "401"),
        (403, "{}", AuthRejected, "403"),
        (500, "oops", ServerError, "500"),
        (503, "", ServerError, "503"),
        (404, "no such locker", ProtocolError, "404: no such locker"),
        (413, "", TooLarge, "413: the body was too large"),
        (200, "<html>", ProtocolError, "not JSON"),
        (200, "[1, 2]", ProtocolError, "must be a JSON object"),
        (200, '{"acked_seq": "7"}', ProtocolError, "acked_seq must be a whole number"),
        (200, '{"acked_seq": -1}', ProtocolError, "acked_seq must be a whole number"),
        (200, '{"acked_seq": true}', ProtocolError, "acked_seq must be a whole number"),
]  # fmt: skip


@pytest.mark.parametrize(("status", "body", "error", "says"), PUSH_ANSWERS)
async def test_each_push_answer_has_its_meaning(token_file, status, body, error, says) -> None:
    client = BackOfficeClient(await answering(status, body), "L1", token_file, timeout_s=2)
    try:
        with pytest.raises(error, match=says):
            await client.push([EVENT], 1)
    finally:
        await client.close()


@pytest.mark.parametrize(
    "body", ['{"commands": {}, "cursor": "1"}', '{"commands": [], "cursor": 1}', "{}"]
)
async def test_a_commands_answer_must_have_a_list_and_a_cursor(token_file, body) -> None:
    client = BackOfficeClient(await answering(200, body), "L1", token_file, timeout_s=2)
    try:
        with pytest.raises(ProtocolError, match="commands list and a cursor"):
            await client.pull("")
    finally:
        await client.close()


async def test_a_410_to_a_pull_is_an_unknown_cursor_and_410_to_a_push_is_not(token_file) -> None:
    client = BackOfficeClient(await answering(410, ""), "L1", token_file, timeout_s=2)
    try:
        with pytest.raises(UnknownCursor, match="does not know cursor 'abc\\.3'"):
            await client.pull("abc.3")
        with pytest.raises(ProtocolError, match="410") as pushed:
            await client.push([EVENT], 1)
        assert not isinstance(pushed.value, UnknownCursor)
    finally:
        await client.close()


async def test_nobody_listening_is_unreachable(token_file) -> None:
    client = BackOfficeClient("http://127.0.0.1:9", "L1", token_file, timeout_s=2)
    try:
        with pytest.raises(Unreachable, match="POST /events"):
            await client.push([EVENT], 1)
    finally:
        await client.close()


async def test_the_locker_id_is_quoted_in_the_path(token_file) -> None:
    office = ReferenceBackOffice("secret-token")
    await office.start()
    client = BackOfficeClient(office.url, "site 1/a", token_file, timeout_s=2)
    try:
        assert await client.push([EVENT], 1) == 1
    finally:
        await client.close()
        await office.stop()
    assert set(office.lockers) == {"site 1/a"}  # one path segment, not two


# -- TLS ---------------------------------------------------------------------------------


@pytest.fixture
async def tls_office(tmp_path):
    ca_key, server_key = (
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP256R1()),
    )
    ca = certificate("lockerd test CA", ca_key, ca=True)
    server = certificate("127.0.0.1", server_key, ca, ca_key)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(
        pem(tmp_path / "server.pem", cert=server), pem(tmp_path / "server.key", key=server_key)
    )
    office = ReferenceBackOffice("secret-token")
    office.ssl = context
    await office.start()
    other_key = ec.generate_private_key(ec.SECP256R1())
    pem(tmp_path / "other-ca.pem", cert=certificate("another CA", other_key, ca=True))
    pem(tmp_path / "ca.pem", cert=ca)
    yield office
    await office.stop()


@pytest.mark.parametrize(("ca", "works"), [("ca.pem", True), ("other-ca.pem", False)])
async def test_tls_is_verified_against_the_configured_ca(
    tls_office, tmp_path, token_file, ca, works
):
    sync = SyncSection(url=tls_office.url, token_file=str(token_file), ca_file=ca)
    context = tls_context(sync, lambda path: tmp_path / path)
    client = BackOfficeClient(tls_office.url, "L1", token_file, timeout_s=2, tls=context)
    try:
        if works:
            assert await client.push([EVENT], 1) == 1
        else:
            with pytest.raises(Unreachable, match="certificate"):
                await client.push([EVENT], 1)
    finally:
        await client.close()
    assert tls_office.url.startswith("https://")
