"""Who may talk to the kiosk API and what it accepts: loopback Host, the kiosk's own
Origin, JSON bodies within limits, and every error as the documented JSON."""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from lockerd.config import ConfigError, parse
from lockerd.errors import BadRequest, FlowError, NotFound, Unauthorized
from lockerd.kiosk.body import depth
from lockerd.kiosk.guard import http_status, json_declared, loopback_host, own_origin
from lockerd.kiosk.server import KioskServer
from tests.browser import ARGS, CHROMIUM, HAVE_CHROMIUM
from tests.rig import bank_text

ERROR_KEYS = {"code", "message"}


@pytest.fixture
async def server(rig):
    config = dataclasses.replace(rig.config, kiosk=dataclasses.replace(rig.config.kiosk, demo=True))
    server = KioskServer(config, rig.locker, rig.hw)
    server.url = await server.start()
    server.port = int(server.url.rstrip("/").rsplit(":", 1)[1])
    yield server
    await server.stop()


@pytest.fixture
async def kiosk(server):
    async with aiohttp.ClientSession(base_url=server.url) as http:
        yield http


async def _error(response: aiohttp.ClientResponse) -> tuple[int, str]:
    """The status and error code of a refusal, checking it has the documented shape."""
    assert response.content_type == "application/json", await response.text()
    error = (await response.json())["error"]
    assert set(error) >= ERROR_KEYS and isinstance(error["message"], str), error
    return response.status, error["code"]


async def _post(kiosk, path: str, text: str, content_type: str | None = "application/json"):
    headers = {} if content_type is None else {"Content-Type": content_type}
    async with kiosk.post(path, data=text.encode(), headers=headers) as response:
        return await _error(response)


# -- Content-Type --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "form",
    [
        {"data": '{"code": "12345678"}', "headers": {"Content-Type": "text/plain"}},
        {"data": {"code": "12345678"}},  # application/x-www-form-urlencoded
        {"data": aiohttp.FormData({"code": "12345678"}, default_to_multipart=True)},
        {"data": b'{"code": "12345678"}', "headers": {"Content-Type": "application/octet-stream"}},
        {
            "data": b'{"code": "12345678"}',
            "headers": {"Content-Type": "application/json; charset=latin-1"},
        },
        {"data": b'{"code": "12345678"}', "skip_auto_headers": ["Content-Type"]},
    ],
    ids=["text-plain", "form", "multipart", "octet-stream", "latin-1", "none"],
)
async def test_a_body_that_is_not_declared_json_is_refused(rig, kiosk, form) -> None:
    before = rig.store.journal.last_seq()
    async with kiosk.post("/api/pickups", **form) as response:
        assert await _error(response) == (415, "unsupported_media_type")
    assert rig.store.journal.last_seq() == before  # no pickup.denied: nothing was tried


async def test_json_with_a_charset_and_an_empty_body_without_a_type_are_taken(kiosk) -> None:
    assert await _post(
        kiosk, "/api/pickups", '{"code": "12"}', "application/json; charset=UTF-8"
    ) == (400, "invalid_code")
    async with kiosk.post("/api/courier/logout") as response:  # no body: nothing to declare
        assert response.status == 200


# -- Origin -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "origin",
    [
        "http://evil.example",
        "null",
        "http://127.0.0.1:{other}",
        "https://127.0.0.1:{port}",
        "http://127.0.0.1:{port}.evil.example",
        "http://localhost:{port}/path",
        "garbage",
    ],
)
async def test_a_post_from_a_foreign_origin_is_refused(rig, server, kiosk, origin) -> None:
    origin = origin.format(port=server.port, other=server.port + 1)
    before = rig.store.journal.last_seq()
    headers = {"Origin": origin}
    async with kiosk.post("/api/pickups", json={"code": "12345678"}, headers=headers) as response:
        assert await _error(response) == (403, "foreign_origin")
    assert rig.store.journal.last_seq() == before


@pytest.mark.parametrize(
    "origin", ["http://127.0.0.1:{port}", "http://localhost:{port}", "http://[::1]:{port}", None]
)
async def test_the_kiosks_own_origin_or_none_may_post(rig, server, kiosk, origin) -> None:
    headers = {} if origin is None else {"Origin": origin.format(port=server.port)}
    async with kiosk.post("/api/pickups", json={"code": "12345678"}, headers=headers) as response:
        assert await _error(response) == (403, "wrong_code")


async def test_the_event_stream_refuses_a_foreign_origin(server, kiosk) -> None:
    for origin in ("http://evil.example", "null"):
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await kiosk.ws_connect("/api/events?after=0", origin=origin)
        assert info.value.status == 403
    own = f"http://127.0.0.1:{server.port}"
    async with kiosk.ws_connect("/api/events?after=0", origin=own) as ws:
        assert (await ws.receive_json())["type"] == "hello"


# -- Host -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    [
        "evil.example",
        "evil.example:{port}",
        "127.0.0.1.evil.example:{port}",
        "localhost.:{port}",
        "127.0.0.1:{other}",
        "0.0.0.0:{port}",
        "192.168.1.20:{port}",
        "[::1",
        "user@127.0.0.1",
    ],
)
async def test_a_rebinding_host_is_refused(rig, server, kiosk, host) -> None:
    headers = {"Host": host.format(port=server.port, other=server.port + 1)}
    for path in ("/api/status", "/", "/static/kiosk.js"):
        async with kiosk.get(path, headers=headers) as response:
            assert await _error(response) == (421, "wrong_host"), path
    async with kiosk.post("/api/pickups", json={"code": "1"}, headers=headers) as response:
        assert await _error(response) == (421, "wrong_host")
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await kiosk.ws_connect("/api/events", headers=headers)
    assert info.value.status == 421


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1:{port}", "127.0.0.1", "localhost:{port}", "LocalHost", "[::1]:{port}", "[::1]"],
)
async def test_a_loopback_host_is_served(server, kiosk, host) -> None:
    async with kiosk.get(
        "/api/status", headers={"Host": host.format(port=server.port)}
    ) as response:
        assert response.status == 200


@pytest.mark.parametrize(
    ("host", "ok"),
    [
        ("127.0.0.1:8080", True),
        ("127.0.0.1", True),
        ("127.3.2.1:8080", True),
        ("localhost:8080", True),
        ("LOCALHOST", True),
        ("[::1]:8080", True),
        ("[::1]", True),
        ("127.0.0.1:8081", False),
        ("127.0.0.1:08080", False),
        ("127.0.0.1:", False),
        ("::1", False),
        ("[::ffff:7f00:1]:8080", False),
        ("127.1:8080", False),
        ("localhost.", False),
        ("localhost.example", False),
        ("0.0.0.0:8080", False),
        ("", False),
        ("127.0.0.1:8080:8080", False),
        ("127.0.0.1:99999999999999999999", False),
        ("x" * 300, False),
    ],
)
def test_loopback_host(host: str, ok: bool) -> None:
    assert loopback_host(host, 8080) is ok


@pytest.mark.parametrize(
    ("origin", "ok"),
    [
        ("http://127.0.0.1:8080", True),
        ("http://localhost:8080", True),
        ("http://[::1]:8080", True),
        ("http://127.0.0.1", False),
        ("http://127.0.0.1:80", False),
        ("https://127.0.0.1:8080", False),
        ("http://127.0.0.1:8080/", False),
        ("http://u@127.0.0.1:8080", False),
        ("http://evil.example:8080", False),
        ("null", False),
        ("", False),
        ("ws://127.0.0.1:8080", False),
    ],
)
def test_own_origin(origin: str, ok: bool) -> None:
    assert own_origin(origin, 8080) is ok


@pytest.mark.parametrize(
    ("content_type", "ok"),
    [
        ("application/json", True),
        ("Application/JSON", True),
        ("application/json; charset=utf-8", True),
        ('application/json;charset="UTF-8"', True),
        ("application/json; charset=latin-1", False),
        ("application/json; boundary=x", False),
        ("application/jsonp", False),
        ("application/x-json", False),
        ("text/plain", False),
        ("text/plain; application/json", False),
        ("multipart/form-data; boundary=x", False),
        ("", False),
    ],
)
def test_json_declared(content_type: str, ok: bool) -> None:
    assert json_declared(content_type) is ok


@pytest.mark.parametrize(
    ("text", "deepest"),
    [
        ("{}", 1),
        ('{"a": 1}', 1),
        ('{"a": [1, {"b": []}]}', 4),
        ('{"a": "[[[[{{{{"}', 1),
        ('{"a": "\\"}', 1),
        ('{"a": "\\"[["}', 1),
        ('["]", ["["]]', 2),
        ("[" * 50, 50),
        ("1", 0),
    ],
)
def test_depth_counts_brackets_outside_strings(text: str, deepest: int) -> None:
    assert depth(text) == deepest


def test_the_default_http_port_needs_no_port_in_host_or_origin() -> None:
    assert loopback_host("localhost", 80) and loopback_host("localhost:80", 80)
    assert own_origin("http://127.0.0.1", 80)


# -- errors are JSON ----------------------------------------------------------------------


async def test_an_unknown_path_and_a_wrong_method_answer_json(kiosk) -> None:
    async with kiosk.get("/api/nothing") as response:
        assert await _error(response) == (404, "not_found")
    async with kiosk.get("/api/pickups") as response:
        assert await _error(response) == (405, "method_not_allowed")
        assert "POST" in response.headers["Allow"]
    async with kiosk.delete("/api/status") as response:
        assert await _error(response) == (405, "method_not_allowed")


@pytest.mark.parametrize(
    "name",
    ["x" * 300, "nothing.js", "../server.py", "%2e%2e/server.py", "i18n", "i18n/../kiosk.js.bak"],
)
async def test_a_bad_static_file_name_is_a_json_404(kiosk, name) -> None:
    async with kiosk.get(f"/static/{name}") as response:
        assert await _error(response) == (404, "not_found")


@pytest.mark.parametrize(
    "path",
    [
        "/api/pickups/{long}",
        "/api/dropoffs/{long}",
        "/api/demo/doors/{long}/open",
        "/api/demo/scanners/{long}",
    ],
)
async def test_a_path_part_over_its_limit_is_not_found(rig, kiosk, path) -> None:
    token = await rig.courier()
    headers = {"Authorization": f"Bearer {token}"}
    path = path.format(long="A" * 129)
    method = kiosk.post if "demo" in path else kiosk.get
    async with method(path, headers=headers) as response:
        status, code = await _error(response)
    assert (status, code) == (404, "not_found")
    assert "A" * 129 not in (await response.text())


async def test_the_static_files_are_served(kiosk) -> None:
    for name, kind in [
        ("kiosk.js", "javascript"),
        ("kiosk.css", "text/css"),
        ("i18n/de.json", "json"),
    ]:
        async with kiosk.get(f"/static/{name}") as response:
            assert response.status == 200 and kind in response.content_type, name


async def test_a_body_over_the_limit_is_refused(rig, kiosk) -> None:
    before = rig.store.journal.last_seq()
    text = json.dumps({"code": "1" * 20_000})
    assert await _post(kiosk, "/api/pickups", text) == (413, "body_too_large")
    assert rig.store.journal.last_seq() == before


# -- limits on what a body holds ----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("[" * 8_000 + "]" * 8_000, "invalid_json"),
        ('{"code": ' + "[" * 5_000 + "]" * 5_000 + "}", "invalid_json"),
        ('{"code": "' + '\\"[' * 3_000 + '"}', "invalid_field"),  # brackets in a string are text
        ('{"parcel": ' + "9" * 5_000 + "}", "invalid_json"),
        ('{"code": NaN}', "invalid_json"),
        ('{"code": 1e999}', "invalid_json"),
        ('{"code": "\\ud800"}', "invalid_field"),
        ('{"code": ["12345678"]}', "invalid_field"),
        ('{"code": {"a": 1}}', "invalid_field"),
        ('{"code": "' + "1" * 1_025 + '"}', "invalid_field"),
        ("\xff", "invalid_json"),
    ],
    ids=[
        "deep",
        "deep-field",
        "brackets-in-string",
        "huge-int",
        "nan",
        "inf",
        "lone-surrogate",
        "array-field",
        "object-field",
        "long-string",
        "not-utf8",
    ],
)
async def test_a_body_out_of_bounds_is_refused(rig, kiosk, text, code) -> None:
    before = rig.store.journal.last_seq()
    data = text.encode("latin-1") if text == "\xff" else text.encode()
    async with kiosk.post(
        "/api/pickups", data=data, headers={"Content-Type": "application/json"}
    ) as response:
        assert await _error(response) == (400, code)
    assert rig.store.journal.last_seq() == before


@pytest.mark.parametrize("parcel", [9223372036854775808, 2**70, -(2**63) - 1, 0, -1])
async def test_a_parcel_id_out_of_range_is_refused(rig, kiosk, parcel) -> None:
    token = await rig.courier()
    before = rig.store.journal.last_seq()
    headers = {"Authorization": f"Bearer {token}"}
    async with kiosk.post("/api/collections", json={"parcel": parcel}, headers=headers) as response:
        status, code = await _error(response)
        assert (status, code) == (400, "invalid_field")
        assert (await response.json())["error"]["field"] == "parcel"
    assert rig.store.journal.last_seq() == before


async def test_the_largest_parcel_id_is_looked_up(rig, kiosk) -> None:
    token = await rig.courier()
    headers = {"Authorization": f"Bearer {token}"}
    body = {"parcel": 2**63 - 1}
    async with kiosk.post("/api/collections", json=body, headers=headers) as response:
        assert await _error(response) == (409, "not_collectable")


@pytest.mark.parametrize(
    "after", [str(2**70), str(2**63), "-1", "-5", "1.5", "abc", "", "0x10", " 1", "1" * 5_000]
)
async def test_an_event_stream_position_out_of_range_is_refused_before_the_upgrade(
    kiosk, after
) -> None:
    async with kiosk.get("/api/events", params={"after": after}) as response:
        assert await _error(response) == (400, "invalid_query")
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await kiosk.ws_connect("/api/events", params={"after": after})
    assert info.value.status == 400


async def test_the_largest_event_stream_position_replays_nothing(kiosk) -> None:
    async with kiosk.ws_connect("/api/events", params={"after": str(2**63 - 1)}) as ws:
        assert await ws.receive_json() == {"type": "hello", "replayed": 0}


async def test_a_fault_on_an_open_event_stream_closes_it(rig, kiosk, caplog) -> None:
    def broken(after: int, limit: int = 1000) -> list:
        raise RuntimeError("disk on fire")

    rig.locker.store.journal.events = broken
    async with kiosk.ws_connect("/api/events?after=0") as ws:
        message = await ws.receive()
        assert message.type == aiohttp.WSMsgType.CLOSE
        assert ws.close_code == aiohttp.WSCloseCode.INTERNAL_ERROR
    assert "disk on fire" in caplog.text


async def test_a_long_message_from_an_event_stream_client_closes_it(kiosk) -> None:
    async with kiosk.ws_connect("/api/events") as ws:
        assert (await ws.receive_json())["type"] == "hello"
        await ws.send_str("x" * 100_000)
        message = await ws.receive()
        assert message.type == aiohttp.WSMsgType.CLOSE
        assert ws.close_code == aiohttp.WSCloseCode.MESSAGE_TOO_BIG


# -- kiosk.host ----------------------------------------------------------------------------


def _with_host(tmp_path, host: str):
    text = bank_text(tmp_path).replace("[kiosk]\n", f"[kiosk]\nhost = {json.dumps(host)}\n", 1)
    return parse(text, tmp_path / "locker.toml")


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "kiosk.example", "localhost."])
def test_kiosk_host_must_be_loopback(tmp_path, host) -> None:
    with pytest.raises(ConfigError) as info:
        _with_host(tmp_path, host)
    [problem] = info.value.problems
    assert problem.startswith(f"{tmp_path / 'locker.toml'}: kiosk.host: {host!r} is not loopback")


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.1.1", "::1", "localhost"])
def test_kiosk_host_on_loopback_is_taken(tmp_path, host) -> None:
    assert _with_host(tmp_path, host).kiosk.host == host


# -- the attacks, in a real browser -----------------------------------------------------------

ATTACKER = """<!doctype html><script>
window.attack = async (kiosk) => {
  // A "simple" cross-site request: no CORS pre-flight, the answer unreadable, but sent.
  const body = '{"code": "12345678"}';
  await fetch(kiosk + "/api/pickups", {method: "POST", mode: "no-cors", body});
  // A WebSocket: browsers do not hold it to the same-origin policy.
  return await new Promise((resolve) => {
    const ws = new WebSocket(kiosk.replace("http:", "ws:") + "/api/events?after=0");
    ws.onmessage = (message) => { ws.close(); resolve(message.data); };
    ws.onerror = () => resolve("refused");
  });
};
</script>"""


@pytest.fixture
async def attacker() -> AsyncIterator[str]:
    """A page from another site, served at http://evil.test:PORT/ (which resolves to loopback)."""

    async def page(request: web.Request) -> web.Response:
        return web.Response(text=ATTACKER, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", page)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://evil.test:{site._server.sockets[0].getsockname()[1]}/"  # type: ignore[union-attr]
    await runner.cleanup()


@pytest.fixture
async def rebinding_browser() -> AsyncIterator[Any]:
    """Chromium with evil.test resolving to 127.0.0.1, as a rebinding DNS server answers."""
    if not HAVE_CHROMIUM:
        pytest.skip("no Chromium here: apt install chromium (.ci/run installs it under CI=true)")
    from playwright.async_api import async_playwright

    args = [*ARGS, "--host-resolver-rules=MAP evil.test 127.0.0.1"]
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=args)
        yield launched
        await launched.close()


async def test_a_page_from_another_site_can_neither_post_nor_listen(
    rig, server, attacker, rebinding_browser
) -> None:
    await rig.stored("JJD0001", "M")
    before = rig.store.journal.last_seq()
    page = await rebinding_browser.new_page()
    await page.goto(attacker)
    got = await page.evaluate("(kiosk) => window.attack(kiosk)", server.url.rstrip("/"))
    assert got == "refused"
    assert rig.store.journal.last_seq() == before  # the code was not tried: no pickup.denied

    # After rebinding evil.test to 127.0.0.1, a page of that name is "same-origin" with
    # the kiosk; the kiosk does not answer that name.
    response = await page.goto(f"http://evil.test:{server.port}/api/status")
    assert response.status == 421
    assert "JJD0001" not in await response.text()
    await page.close()


async def test_a_kiosk_on_ipv6_loopback_gives_a_usable_url(rig) -> None:
    kiosk = dataclasses.replace(rig.config.kiosk, host="::1")
    server = KioskServer(dataclasses.replace(rig.config, kiosk=kiosk), rig.locker, rig.hw)
    url = await server.start()
    try:
        assert url.startswith("http://[::1]:")
        async with aiohttp.ClientSession(base_url=url) as http, http.get("/api/status") as response:
            assert response.status == 200
    finally:
        await server.stop()


# -- no input makes it fail ---------------------------------------------------------------------

POSTS = [
    "/api/courier/login",
    "/api/courier/logout",
    "/api/dropoffs",
    "/api/dropoffs/0123456789abcdef/size",
    "/api/dropoffs/0123456789abcdef/cancel",
    "/api/collections",
    "/api/pickups",
    "/api/demo/doors/S1/put",
    "/api/demo/scanners/camera",
]
FIELDS = ["code", "scan", "barcode", "size", "prefer_low", "parcel", "token", "text", "format"]


def _value(rnd: random.Random, depth: int = 0) -> Any:
    kind = rnd.randrange(9 if depth < 3 else 6)
    if kind == 0:
        return rnd.choice([None, True, False])
    if kind == 1:
        return rnd.choice([0, -1, 1, 2**31, 2**53 + 1, 2**63 - 1, 2**63, -(2**63) - 1, 10**40])
    if kind == 2:
        return rnd.choice([0.5, -0.0, 1e308, 5e-324])
    if kind in (3, 4):
        alphabet = '0123456789abcdefABC .-_\\"/\x00\x7f\u00e9\u4e2d\U0001f600'
        return "".join(rnd.choice(alphabet) for _ in range(rnd.choice([0, 1, 8, 16, 64, 1100])))
    if kind == 5:
        return rnd.choice(["LKR1.a.b", "12345678", "4321", "M", "qr", "0123456789abcdef"])
    if kind in (6, 7):
        return [_value(rnd, depth + 1) for _ in range(rnd.randrange(3))]
    return {rnd.choice(FIELDS): _value(rnd, depth + 1) for _ in range(rnd.randrange(3))}


def _body(rnd: random.Random) -> bytes:
    shape = rnd.randrange(6)
    if shape == 0:
        return bytes(rnd.randrange(256) for _ in range(rnd.randrange(64)))
    if shape == 1:
        text = json.dumps({rnd.choice(FIELDS): _value(rnd)})
        cut = rnd.randrange(len(text) + 1)
        return text[:cut].encode()
    if shape == 2:
        return json.dumps(_value(rnd)).encode()
    names = rnd.sample(FIELDS, rnd.randrange(1, 4))
    return json.dumps({name: _value(rnd) for name in names}).encode()


async def test_no_body_makes_the_api_fail(rig, kiosk, caplog) -> None:
    """Many bodies of every shape against every POST: each is answered, never with a 5xx."""
    token = await rig.courier()
    rnd = random.Random(10)
    answered = 0
    for _ in range(600):
        path = rnd.choice(POSTS)
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
        async with kiosk.post(path, data=_body(rnd), headers=headers) as response:
            assert response.status < 500, await response.text()
            if response.status >= 400:
                await _error(response)
            answered += 1
    assert answered == 600
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


async def test_no_query_or_file_name_makes_the_api_fail(kiosk, caplog) -> None:
    rnd = random.Random(11)
    for _ in range(200):
        text = str(_value(rnd))[:2000]
        async with kiosk.get("/api/events", params={"after": text}) as response:
            assert response.status == 400
        async with kiosk.get("/api/demo/qr.svg", params={"text": text}) as response:
            assert response.status < 500
        async with kiosk.get("/static/" + text.replace("/", "").lstrip(".")) as response:
            assert response.status < 500
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (BadRequest("invalid_code", "x"), 400),
        (Unauthorized("login_required", "x"), 401),
        (NotFound("unknown_flow", "x"), 404),
        (FlowError("wrong_state", "x"), 409),
        (FlowError("wrong_code", "x"), 403),
        (FlowError("locked_out", "x"), 429),
        (FlowError("compartment_unreachable", "x"), 503),
    ],
)
def test_the_kiosk_alone_turns_a_refusal_into_an_http_status(error, status) -> None:
    """Domain errors carry a code and data; their HTTP status is decided here only."""
    assert not hasattr(error, "status")
    assert http_status(error) == status
