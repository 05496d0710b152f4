"""Fuzz: requests to the kiosk API (a real aiohttp server on loopback, over the test rig).

Any method, path, query, content type and body: never a 5xx, every refusal
the documented ``{"error": {"code", "message"}}`` in JSON, and a refused
request changes nothing in the store, except what docs/kiosk-api.md says a
wrong code costs (the throttle, and its denial event). The event stream
upgrades or refuses the same way, whatever ``after`` says.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
from hypothesis import strategies as st

from lockerd.kiosk.server import KioskServer
from tests.fuzzing import Renewed, changes, dump, groups, journal_types, own_loop, run
from tests.rig import Rig, bank_config
from tests.test_fuzz_control import Traceback
from tests.test_fuzz_sync import json_values

#: What a refused wrong code may write (docs/kiosk-api.md, "Errors").
COUNTED = {"wrong_code", "locked_out", "too_fast", "token_invalid"}
#: Every refused send code is counted too (docs/sync-protocol.md, "Send codes").
COUNTED |= {"invalid_send_code", "send_code_invalid", "send_code_expired", "send_code_used"}
COUNTED |= {"send_code_wrong_locker", "not_collected"}
COUNTED_EVENTS = {"pickup.denied", "courier.denied", "pickup.locked_out", "send.denied"}

ROUTES = [
    "/",
    "/api/status",
    "/api/events",
    "/api/courier/login",
    "/api/courier/logout",
    "/api/dropoffs",
    "/api/dropoffs/{id}",
    "/api/dropoffs/{id}/size",
    "/api/dropoffs/{id}/doesnt-fit",
    "/api/dropoffs/{id}/door-did-not-open",
    "/api/dropoffs/{id}/any-height",
    "/api/dropoffs/{id}/cancel",
    "/api/collections",
    "/api/collections/{id}",
    "/api/pickups",
    "/api/pickups/{id}",
    "/api/sends",
    "/api/sends/{id}",
    "/api/sends/{id}/size",
    "/api/sends/{id}/doesnt-fit",
    "/api/sends/{id}/cancel",
    "/api/outbound",
    "/api/pickups/{id}/door-did-not-open",
    "/api/pickups/{id}/reopen",
    "/static/{id}",
    "/api/demo/bank",
]
FIELDS = ["code", "scan", "barcode", "size", "prefer_low", "parcel", "token", "text", "outbound"]


class Kiosk:
    """The kiosk server on the test rig, and a client session to it."""

    def __init__(self, loop: Any, rig: Rig, server: KioskServer, http: aiohttp.ClientSession):
        self.loop, self.rig, self.server, self.http = loop, rig, server, http
        #: A courier's session token, to reach what only a courier may do.
        self.courier = self.call(self._login())

    def call(self, coro: Any) -> Any:
        return self.loop(self.rig.run(coro))

    async def _login(self) -> str:
        async with self.http.post("/api/courier/login", json={"code": "4321"}) as response:
            return str((await response.json())["token"])

    async def _send(self, method: str, path: str, headers: dict[str, str], data: bytes) -> Any:
        async with self.http.request(
            method, path, headers=headers, data=data, allow_redirects=False
        ) as response:
            return response.status, response.headers.get("Content-Type", ""), await response.read()

    def refusal_changes_nothing(
        self, method: str, path: str, headers: dict[str, str], data: bytes
    ) -> Any:
        """Send; a refusal must change nothing (but a wrong code's cost). What it changed."""
        before = dump(self.rig.store.db.conn)
        status, content_type, body = self.call(self._send(method, path, headers, data))
        changed = changes(before, dump(self.rig.store.db.conn))
        case = f"{method} {path} {headers} {data[:200]!r}"
        assert status < 500, f"{case}: {status} {body[:300]!r}"
        json_body = headers.get("Content-Type", "").startswith("application/json")
        if data and method == "POST" and not json_body:
            # issue 10: only application/json bodies (a form or text/plain from another
            # site's page must not be processed)
            assert status >= 400, f"{case}: {status}: a body that is not JSON was taken"
        if status < 400 or method == "HEAD":
            return changed
        assert content_type.startswith("application/json"), f"{case}: {status} {content_type}"
        error = json.loads(body)["error"]
        assert isinstance(error["code"], str) and isinstance(error["message"], str), error
        if error["code"] in COUNTED:
            assert set(changed) <= {"throttle", "journal"}, f"{case}: {error} changed {changed}"
            new = changed.get("journal", ([], []))[1]
            assert set(journal_types(new)) <= COUNTED_EVENTS, f"{case}: {error} wrote {new}"
        else:
            assert changed == {}, f"{case} was refused ({error}) but changed {changed}"
        return changed


@contextmanager
def kiosks(folder: Path) -> Iterator[Renewed[Kiosk]]:
    watch = Traceback()
    logging.getLogger("lockerd").addHandler(watch)
    with own_loop() as loop:

        def make(cases: int) -> Kiosk:
            rig = loop(Rig(bank_config(folder / f"locker-{cases}")).start())
            server = KioskServer(rig.config, rig.locker, rig.hw)
            url = loop(server.start())

            async def session() -> aiohttp.ClientSession:
                return aiohttp.ClientSession(base_url=url)

            return Kiosk(loop, rig, server, loop(session()))

        def close(kiosk: Kiosk) -> None:
            loop(kiosk.http.close())
            loop(kiosk.server.stop())
            loop(kiosk.rig.stop())

        renewed = Renewed(make, close)
        try:
            yield renewed
        finally:
            renewed.close()
            logging.getLogger("lockerd").removeHandler(watch)
    assert not watch.records, [r.getMessage() for r in watch.records]


def fill(route: str, value: str) -> str:
    return route.replace("{id}", quote(value, safe=""))


paths = st.one_of(
    st.builds(fill, st.sampled_from(ROUTES), st.text(max_size=24)),
    st.builds(fill, st.sampled_from(ROUTES), st.sampled_from(["0", "kiosk.js", "x" * 300])),
    st.text(max_size=30).map(lambda t: "/" + quote(t, safe="/").lstrip("/")),
)
queries = st.dictionaries(
    st.sampled_from(["after", "text", "x", ""]),
    st.one_of(st.text(max_size=12), st.integers(-(2**80), 2**80).map(str)),
    max_size=2,
)
content_types = st.sampled_from(
    [
        None,
        "application/json",
        "application/json; charset=utf-8",
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/json; charset=latin-1",
        "garbage",
    ]
)
bodies = st.one_of(
    st.fixed_dictionaries({}, optional={f: json_values for f in FIELDS}).map(json.dumps),
    json_values.map(json.dumps),
    st.integers(1, 3000).map(lambda depth: "[" * depth + "]" * depth),
    st.integers(1, 3000).map(lambda depth: '{"a":' * depth + "1" + "}" * depth),
    st.binary(max_size=48),
    st.just(""),
)


@groups(40, 5_000)
def test_any_request_gets_no_5xx_a_json_error_and_changes_nothing(
    examples: int, tmp_path: Path
) -> None:
    with kiosks(tmp_path) as kiosk:

        def prop(method: str, path: str, query: dict[str, str], kind: Any, auth: int, body: Any):
            here = kiosk()
            headers = {} if kind is None else {"Content-Type": kind}
            if auth == 1:
                headers["Authorization"] = f"Bearer {here.courier}"
            elif auth == 2:
                headers["Authorization"] = "Bearer " + "x" * 20
            if query:
                path += "?" + "&".join(f"{quote(k)}={quote(v)}" for k, v in query.items())
            data = body if isinstance(body, bytes) else body.encode()
            kiosk.spoil(here.refusal_changes_nothing(method, path, headers, data))

        run(
            "kiosk (any request)",
            examples,
            prop,
            method=st.sampled_from(["GET", "POST", "POST", "PUT", "DELETE", "HEAD", "OPTIONS"]),
            path=paths,
            query=queries,
            kind=content_types,
            auth=st.integers(0, 2),
            body=bodies,
        )


#: Each POST endpoint and the fields its body may carry (docs/kiosk-api.md).
ENDPOINTS = {
    "/api/courier/login": ["code", "scan"],
    "/api/courier/logout": [],
    "/api/dropoffs": ["barcode", "scan", "size", "prefer_low"],
    "/api/collections": ["parcel"],
    "/api/pickups": ["code", "token", "scan"],
    "/api/dropoffs/0000000000000000/size": ["size"],
    "/api/dropoffs/0000000000000000/any-height": [],
    "/api/dropoffs/0000000000000000/cancel": [],
    "/api/sends": ["code", "scan", "prefer_low"],
    "/api/sends/0000000000000000/size": ["size"],
    "/api/outbound": ["outbound"],
}
values = st.one_of(
    json_values,
    st.sampled_from(
        ["4321", "12345678", "EXP0001", "JJD0001", "S", "M", "XL", "LKR1.a.b", "LKS1.a.b"]
    ),
    st.sampled_from([2**63, -(2**63) - 1, 2**64, 10**30, 1e308, -1, 0, True]),
)


def endpoint_bodies(path: str) -> st.SearchStrategy[dict[str, Any]]:
    """The endpoint's own fields, any of them, any value; now and then one it does not take."""
    own = st.fixed_dictionaries({}, optional={field: values for field in ENDPOINTS[path]})
    stray = st.builds(
        lambda body, key, value: {**body, key: value}, own, st.sampled_from(FIELDS), values
    )
    return own | stray


@groups(40, 5_000)
def test_any_json_body_to_each_endpoint_gets_no_5xx_and_a_refusal_changes_nothing(
    examples: int, tmp_path: Path
) -> None:
    with kiosks(tmp_path) as kiosk:

        def prop(request: tuple[str, dict[str, Any]], auth: bool) -> None:
            here = kiosk()
            path, body = request
            headers = {"Content-Type": "application/json"}
            if auth:
                headers["Authorization"] = f"Bearer {here.courier}"
            kiosk.spoil(
                here.refusal_changes_nothing("POST", path, headers, json.dumps(body).encode())
            )

        run(
            "kiosk (JSON bodies to each endpoint)",
            examples,
            prop,
            request=st.sampled_from(sorted(ENDPOINTS)).flatmap(
                lambda path: st.tuples(st.just(path), endpoint_bodies(path))
            ),
            auth=st.booleans(),
        )


async def _stream(http: aiohttp.ClientSession, query: str) -> tuple[int, Any]:
    try:
        async with http.ws_connect("/api/events" + query) as ws:
            return 101, await ws.receive_json(timeout=5)
    except aiohttp.WSServerHandshakeError as exc:
        return exc.status, None


@groups(20, 1_000)
def test_the_event_stream_upgrades_or_refuses_whatever_after_says(
    examples: int, tmp_path: Path
) -> None:
    with kiosks(tmp_path) as kiosk:

        def prop(after: str) -> None:
            here = kiosk()
            query = "?after=" + quote(after)
            status, hello = here.call(_stream(here.http, query))
            assert status in (101, 400), f"after={after!r}: {status}"
            if status == 101:
                assert hello["type"] == "hello", hello

        run(
            "kiosk (event stream after=)",
            examples,
            prop,
            after=st.one_of(
                st.text(max_size=12),
                st.integers(-(2**80), 2**80).map(str),
                st.sampled_from([str(2**63), str(2**70), "1e9", " 1", "0x10", "-1"]),
            ),
        )
