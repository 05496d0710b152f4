"""``/api/sends`` and ``/api/outbound``: a member of the public sending or returning a
parcel with a send code, and couriers collecting the outbound parcels of their carrier
(docs/kiosk-api.md)."""

from __future__ import annotations

from aiohttp import web

from lockerd.flows import Kind
from lockerd.kiosk.body import body, flag, one_of
from lockerd.scanning import ScanHub
from lockerd.sends import Sends


def token(request: web.Request) -> str | None:
    """The courier session's token from ``Authorization: Bearer``, if any."""
    header = request.headers.get("Authorization", "")
    return header.removeprefix("Bearer ").strip() or None


class SendRoutes:
    """The send flows' endpoints, over the locker's :class:`lockerd.sends.Sends`."""

    def __init__(self, sends: Sends, scans: ScanHub):
        self.sends, self.scans = sends, scans

    def add_to(self, r: web.UrlDispatcher) -> None:
        r.add_post("/api/sends", self.start)
        r.add_get("/api/sends/{id}", self.get)
        r.add_post("/api/sends/{id}/size", self.size)
        r.add_post("/api/sends/{id}/doesnt-fit", self.doesnt_fit)
        r.add_post("/api/sends/{id}/door-did-not-open", self.did_not_open)
        r.add_post("/api/sends/{id}/any-height", self.any_height)
        r.add_post("/api/sends/{id}/cancel", self.cancel)
        r.add_post("/api/sends/{id}/leave-unshut", self.leave_unshut)
        r.add_get("/api/outbound", self.collectable)
        r.add_post("/api/outbound", self.collect)

    async def start(self, request: web.Request) -> web.Response:
        """A send code typed or scanned (``code`` or ``scan``: a scan's id); ``prefer_low``
        and ``more_time``: what the sender asked for."""
        data = await body(request, {"code", "scan", "prefer_low", "more_time"})
        which = one_of(data, ("code", "scan"))
        prefer_low, more_time = flag(data, "prefer_low"), flag(data, "more_time")
        code = data["code"] if which == "code" else self.scans.take(data["scan"])
        flow = await self.sends.start(code, prefer_low, more_time)
        return web.json_response(flow.view(), status=201)

    async def get(self, request: web.Request) -> web.Response:
        return web.json_response(self.sends.flow(request.match_info["id"]).view())

    async def size(self, request: web.Request) -> web.Response:
        data = await body(request, {"size"}, {"size"})
        flow = await self.sends.size(request.match_info["id"], data["size"])
        return web.json_response(flow.view())

    async def doesnt_fit(self, request: web.Request) -> web.Response:
        await body(request, set())
        return web.json_response((await self.sends.doesnt_fit(request.match_info["id"])).view())

    async def did_not_open(self, request: web.Request) -> web.Response:
        await body(request, set())
        flow = await self.sends.door_did_not_open(request.match_info["id"])
        return web.json_response(flow.view())

    async def any_height(self, request: web.Request) -> web.Response:
        await body(request, set())
        return web.json_response((await self.sends.any_height(request.match_info["id"])).view())

    async def cancel(self, request: web.Request) -> web.Response:
        await body(request, set())
        return web.json_response((await self.sends.cancel(request.match_info["id"])).view())

    async def leave_unshut(self, request: web.Request) -> web.Response:
        await body(request, set())
        return web.json_response((await self.sends.leave_unshut(request.match_info["id"])).view())

    async def collectable(self, request: web.Request) -> web.Response:
        parcels = await self.sends.collectable(token(request))
        return web.json_response({"parcels": [p.to_json() for p in parcels]})

    async def collect(self, request: web.Request) -> web.Response:
        data = await body(request, {"outbound"}, {"outbound"})
        flow = await self.sends.collect(token(request), data["outbound"])
        assert flow.kind == Kind.COLLECT
        return web.json_response(flow.view(), status=201)
