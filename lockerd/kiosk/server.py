"""The kiosk API: JSON over HTTP and a WebSocket event stream, on 127.0.0.1.

Every refusal is ``{"error": {"code", "message", ...}}`` with a stable code
the kiosk page translates; see docs/kiosk-api.md. Demo endpoints (simulated
doors, recipient messages) exist only when ``kiosk.demo`` is true.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

from aiohttp import WSCloseCode, web

from lockerd import qrtoken
from lockerd.clock import Clock
from lockerd.config import LANGUAGES, Config, kiosk_url
from lockerd.errors import NotFound
from lockerd.flows import MORE_TIME, Flow, Kind
from lockerd.hardware import Hardware
from lockerd.kiosk.body import MAX_BODY, body, flag, one_of, sequence
from lockerd.kiosk.demo import DemoRoutes
from lockerd.kiosk.guard import errors, guard
from lockerd.kiosk.sendroutes import SendRoutes
from lockerd.kiosk.sendroutes import token as _token
from lockerd.kiosk.speech import Speech, SpeechRoutes
from lockerd.locker import Message, Session
from lockerd.pickups import Pickups
from lockerd.reads import Reads
from lockerd.scanning import ScanHub, Scanners
from lockerd.sends import Sends
from lockerd.store.credentials import Courier
from lockerd.store.records import Collectable

#: The longest message an event stream client may send (it sends nothing the stream reads).
MAX_WS_MESSAGE = 4096

log = logging.getLogger(__name__)
STATIC = resources.files("lockerd.kiosk").joinpath("static")
#: What the page's files are; a file of any other kind under static/ is not served.
STATIC_TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".json": "application/json",
    ".html": "text/html",
}


class KioskLocker(Protocol):
    """All the kiosk API may do with the locker: follow and drive flows, and read."""

    clock: Clock
    reads: Reads
    sends: Sends
    pickups: Pickups

    def subscribe(self) -> asyncio.Queue[Message]: ...
    def unsubscribe(self, queue: asyncio.Queue[Message]) -> None: ...
    def publish(self, message: Message) -> None: ...
    def flow(self, flow_id: str, kind: Kind) -> Flow: ...
    def session(self, token: str | None, right: str | None = None) -> Session: ...
    async def courier_login(self, code: object, more_time: bool = False) -> tuple[str, Courier]: ...
    def courier_logout(self, token: str) -> None: ...
    async def dropoff_scan(
        self, token: str | None, barcode: object, size: object = None, prefer_low: bool = False
    ) -> Flow: ...
    async def dropoff_size(self, token: str | None, flow_id: str, size: object) -> Flow: ...
    async def dropoff_doesnt_fit(self, token: str | None, flow_id: str) -> Flow: ...
    async def dropoff_door_did_not_open(self, token: str | None, flow_id: str) -> Flow: ...
    async def dropoff_any_height(self, token: str | None, flow_id: str) -> Flow: ...
    async def dropoff_cancel(self, token: str | None, flow_id: str) -> Flow: ...
    async def dropoff_leave_unshut(self, token: str | None, flow_id: str) -> Flow: ...
    def own_dropoff(self, token: str | None, flow_id: str) -> Flow: ...
    async def collectable(self, token: str | None) -> list[Collectable]: ...
    async def collect(self, token: str | None, parcel_id: object) -> Flow: ...


def static_files() -> dict[str, tuple[bytes, str]]:
    """The page's files by their name under /static/ (``kiosk.js``, ``i18n/de.json``): their
    bytes, read once at start (a few tens of KiB), and their type."""
    root = Path(str(STATIC))
    return {
        path.relative_to(root).as_posix(): (path.read_bytes(), STATIC_TYPES[path.suffix])
        for path in sorted(root.rglob("*"))
        if path.is_file() and path.suffix in STATIC_TYPES
    }


class KioskServer:
    def __init__(
        self,
        config: Config,
        locker: KioskLocker,
        hardware: Hardware,
        scans: ScanHub | None = None,
        scanners: Scanners | None = None,
    ):
        self.config = config
        self.locker = locker
        self.hardware = hardware
        self.scans = scans or ScanHub(locker.clock, locker.publish)
        self.scanners = scanners or Scanners()
        self._page = STATIC.joinpath("index.html").read_text(encoding="utf-8")
        self._static = static_files()
        self.app = web.Application(middlewares=[errors, guard], client_max_size=MAX_BODY)
        self._runner: web.AppRunner | None = None
        self._sockets: set[web.WebSocketResponse] = set()
        self._routes()

    def _routes(self) -> None:
        r = self.app.router
        r.add_get("/", self.index)
        r.add_get("/static/{name:.+}", self.static)
        r.add_get("/api/status", self.status)
        r.add_get("/api/events", self.events)
        r.add_post("/api/courier/login", self.login)
        r.add_post("/api/courier/logout", self.logout)
        r.add_post("/api/dropoffs", self.dropoff)
        r.add_get("/api/dropoffs/{id}", self.get_dropoff)
        r.add_post("/api/dropoffs/{id}/size", self.dropoff_size)
        r.add_post("/api/dropoffs/{id}/doesnt-fit", self.doesnt_fit)
        r.add_post("/api/dropoffs/{id}/door-did-not-open", self.did_not_open)
        r.add_post("/api/dropoffs/{id}/any-height", self.any_height)
        r.add_post("/api/dropoffs/{id}/cancel", self.cancel)
        r.add_post("/api/dropoffs/{id}/leave-unshut", self.leave_unshut)
        r.add_get("/api/collections", self.collectable)
        r.add_post("/api/collections", self.collect)
        r.add_get("/api/collections/{id}", self.get_collection)
        r.add_post("/api/pickups", self.pickup)
        r.add_get("/api/pickups/{id}", self.get_pickup)
        SendRoutes(self.locker.sends, self.scans).add_to(r)
        self.speech = Speech(self.config)
        SpeechRoutes(self.speech).add_to(r)
        r.add_post("/api/pickups/{id}/door-did-not-open", self.pickup_not_open)
        r.add_post("/api/pickups/{id}/reopen", self.pickup_reopen)
        r.add_post("/api/pickups/{id}/next-door", self.pickup_next_door)
        if self.config.kiosk.demo:
            DemoRoutes(
                self.config, self.locker.reads, self.hardware, self.scanners, self.locker.clock
            ).add_to(r)

    async def start(self) -> str:
        self.app.on_shutdown.append(self._close_sockets)
        self._runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.kiosk.host, self.config.kiosk.port)
        await site.start()
        host, port = site._server.sockets[0].getsockname()[:2]  # type: ignore[union-attr]
        return kiosk_url(host, port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        # A render under way finishes (espeak-ng is bounded by its timeout) in a thread of
        # its own, so the loop is not held while the speech worker winds down.
        await asyncio.to_thread(self.speech.close)

    async def _close_sockets(self, app: web.Application) -> None:
        for ws in list(self._sockets):
            await ws.close()

    # -- pages and status ---------------------------------------------------

    async def index(self, request: web.Request) -> web.Response:
        return web.Response(text=self._page, content_type="text/html")

    async def static(self, request: web.Request) -> web.Response:
        """One of the page's files; any other name is ``404 not_found``, never looked up."""
        name = request.match_info["name"]
        file = self._static.get(name)
        if file is None:
            raise NotFound("not_found", f"no static file {name[:100]!r}")
        content, content_type = file
        return web.Response(body=content, content_type=content_type, charset="utf-8")

    async def status(self, request: web.Request) -> web.Response:
        """The locker for the kiosk page; the bank part is a snapshot encoded once per change."""
        reads = self.locker.reads
        snap = await reads.snapshot()
        config_part, kiosk_part = self._status_config
        head = config_part | {"code_lengths": snap.code_lengths, "kiosk": kiosk_part}
        head |= {"scanners": self.scanners.view(self.config), "last_seq": snap.last_seq}
        head["free"] = snap.free
        text = f'{json.dumps(head)[:-1]}, "compartments": {snap.compartments_json}, '
        text += f'"boards": {json.dumps(reads.boards())}}}'
        return web.Response(text=text, content_type="application/json")

    @functools.cached_property
    def _status_config(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """What the status says of the config, before and in its ``kiosk`` key (fixed for
        the daemon's life)."""
        config = self.config
        dimensions = {
            s.name: {"height_mm": s.height_mm, "width_mm": s.width_mm, "depth_mm": s.depth_mm}
            for s in config.size
        }
        locker = {"id": config.locker.id, "name": config.locker.name}
        return {
            "locker": locker | {"support": config.locker.support},
            "demo": config.kiosk.demo,
            "back_office": bool(config.sync.url),
            "sizes": list(config.size_order),
            "size_dimensions": dimensions,
            "code_length": config.pickup.code_length,
            "reopen_grace_s": config.pickup.reopen_grace_s,
            "next_door_s": config.pickup.next_door_s,
        }, {
            "idle_s": config.kiosk.idle_s,
            "more_time": MORE_TIME,
            "language": config.kiosk.language,
            "languages": list(LANGUAGES),
        }

    async def events(self, request: web.Request) -> web.WebSocketResponse:
        """Journal events after ``?after=SEQ`` (if given), then everything live.

        Everything that can refuse the request is checked before the upgrade: once
        the socket is open, a fault can only close it (1011), never answer it."""
        after = sequence(request, "after")
        ws = web.WebSocketResponse(heartbeat=30, max_msg_size=MAX_WS_MESSAGE)
        await ws.prepare(request)
        queue = self.locker.subscribe()
        self._sockets.add(ws)
        try:
            await self._stream(ws, queue, after)
        except Exception:
            log.exception("the event stream failed")
            await ws.close(code=WSCloseCode.INTERNAL_ERROR, message=b"internal_error")
        finally:
            self.locker.unsubscribe(queue)
            self._sockets.discard(ws)
        return ws

    async def _stream(
        self, ws: web.WebSocketResponse, queue: asyncio.Queue[Any], after: int | None
    ) -> None:
        backlog = [] if after is None else await self.locker.reads.events(after)
        await ws.send_json({"type": "hello", "replayed": len(backlog)})
        last = -1 if after is None else after
        for event in backlog:
            await ws.send_json(event)
            last = event["seq"]
        await self._forward(ws, queue, last)

    async def _forward(
        self, ws: web.WebSocketResponse, queue: asyncio.Queue[Any], last: int
    ) -> None:
        """Send queued messages until the client goes away (its reads end)."""
        closed = asyncio.ensure_future(self._until_closed(ws))
        try:
            while not closed.done():
                message = asyncio.ensure_future(queue.get())
                await asyncio.wait({message, closed}, return_when=asyncio.FIRST_COMPLETED)
                if not message.done():
                    message.cancel()
                    break
                event = message.result()
                if event.get("seq", last + 1) > last and not ws.closed:
                    await ws.send_json(event)
                if event["type"] == "overflow":
                    await ws.close()
                    break
        finally:
            closed.cancel()

    @staticmethod
    async def _until_closed(ws: web.WebSocketResponse) -> None:
        async for _ in ws:
            pass  # the stream is one-way; anything a client sends is ignored

    # -- courier ---------------------------------------------------------

    async def login(self, request: web.Request) -> web.Response:
        data = await body(request, {"code", "scan", "more_time"})
        more_time = flag(data, "more_time")
        if one_of(data, ("code", "scan")) == "code":
            code = data["code"]
        else:
            code = self.scans.take(data["scan"])
        token, courier = await self.locker.courier_login(code, more_time)
        view = {"id": courier.id, "name": courier.name, "rights": courier.rights}
        return web.json_response({"token": token, "courier": view})

    async def logout(self, request: web.Request) -> web.Response:
        await body(request, set())
        self.locker.courier_logout(_token(request) or "")
        return web.json_response({"ok": True})

    async def dropoff(self, request: web.Request) -> web.Response:
        data = await body(request, {"barcode", "scan", "size", "prefer_low"})
        which = one_of(data, ("barcode", "scan"))
        prefer_low = flag(data, "prefer_low")
        self.locker.session(_token(request), "deliver")  # a scan is spent only by a courier
        barcode = data["barcode"] if which == "barcode" else self.scans.take(data["scan"])
        flow = await self.locker.dropoff_scan(
            _token(request), barcode, data.get("size"), prefer_low
        )
        return web.json_response(flow.view(), status=201)

    async def get_dropoff(self, request: web.Request) -> web.Response:
        flow = self.locker.own_dropoff(_token(request), request.match_info["id"])
        return web.json_response(flow.view())

    async def dropoff_size(self, request: web.Request) -> web.Response:
        data = await body(request, {"size"}, {"size"})
        flow = await self.locker.dropoff_size(
            _token(request), request.match_info["id"], data["size"]
        )
        return web.json_response(flow.view())

    async def doesnt_fit(self, request: web.Request) -> web.Response:
        await body(request, set())
        flow = await self.locker.dropoff_doesnt_fit(_token(request), request.match_info["id"])
        return web.json_response(flow.view())

    async def did_not_open(self, request: web.Request) -> web.Response:
        await body(request, set())
        flow = await self.locker.dropoff_door_did_not_open(
            _token(request), request.match_info["id"]
        )
        return web.json_response(flow.view())

    async def any_height(self, request: web.Request) -> web.Response:
        await body(request, set())
        flow = await self.locker.dropoff_any_height(_token(request), request.match_info["id"])
        return web.json_response(flow.view())

    async def cancel(self, request: web.Request) -> web.Response:
        await body(request, set())
        flow = await self.locker.dropoff_cancel(_token(request), request.match_info["id"])
        return web.json_response(flow.view())

    async def leave_unshut(self, request: web.Request) -> web.Response:
        await body(request, set())
        flow = await self.locker.dropoff_leave_unshut(_token(request), request.match_info["id"])
        return web.json_response(flow.view())

    async def collectable(self, request: web.Request) -> web.Response:
        parcels = await self.locker.collectable(_token(request))
        return web.json_response({"parcels": [p.to_json() for p in parcels]})

    async def collect(self, request: web.Request) -> web.Response:
        data = await body(request, {"parcel"}, {"parcel"})
        flow = await self.locker.collect(_token(request), data["parcel"])
        return web.json_response(flow.view(), status=201)

    async def get_collection(self, request: web.Request) -> web.Response:
        self.locker.session(_token(request), "collect")
        return web.json_response(self.locker.flow(request.match_info["id"], Kind.COLLECT).view())

    # -- resident ---------------------------------------------------------------

    async def pickup(self, request: web.Request) -> web.Response:
        data = await body(request, {"code", "token", "scan", "more_time"})
        which = one_of(data, ("code", "token", "scan"))
        flow = await self._pickup(which, data[which], flag(data, "more_time"))
        return web.json_response(flow.view(), status=201)

    async def _pickup(self, which: str, value: Any, more_time: bool) -> Flow:
        if which == "scan":
            value = self.scans.take(value)
            # A QR code shown to a scanner is a token; a scanned code of digits is typed-in.
            which = "token" if qrtoken.looks_like_token(value) else "code"
        if which == "token":
            return await self.locker.pickups.token(value, more_time)
        return await self.locker.pickups.code(value, more_time)

    async def get_pickup(self, request: web.Request) -> web.Response:
        return web.json_response(self.locker.flow(request.match_info["id"], Kind.PICKUP).view())

    async def pickup_not_open(self, request: web.Request) -> web.Response:
        await body(request, set())
        flow = await self.locker.pickups.door_did_not_open(request.match_info["id"])
        return web.json_response(flow.view())

    async def pickup_next_door(self, request: web.Request) -> web.Response:
        await body(request, set())
        flow = await self.locker.pickups.next_door(request.match_info["id"])
        return web.json_response(flow.view())

    async def pickup_reopen(self, request: web.Request) -> web.Response:
        await body(request, set())
        flow = await self.locker.pickups.reopen(request.match_info["id"])
        return web.json_response(flow.view(), status=201)
