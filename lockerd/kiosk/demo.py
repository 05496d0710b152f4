"""The demo's own endpoints, mounted only when ``kiosk.demo`` is true: the simulated
people at the bank (doors, items, scanners) and the recipients' messages."""

from __future__ import annotations

import secrets
from typing import Any

from aiohttp import web

from drivers.scanner.base import FORMATS
from lockerd import qrtoken, sendcode
from lockerd.clock import Clock
from lockerd.config import Config
from lockerd.errors import BadRequest, FlowError, NotFound
from lockerd.hardware import Hardware
from lockerd.kiosk.body import body
from lockerd.reads import Reads
from lockerd.scanning import Scanners, check_text

#: What a simulated person can do at a door (the demo panel and the tests).
DOOR_ACTIONS = ("open", "close", "put", "take")


class DemoRoutes:
    """``/api/demo/...``: what the demo panel (and the process tests) do at the bank."""

    def __init__(
        self, config: Config, reads: Reads, hardware: Hardware, scanners: Scanners, clock: Clock
    ):
        self.config, self.reads, self.hardware, self.scanners = config, reads, hardware, scanners
        self.clock = clock
        self._layout = {c.id: c for c in config.compartment}

    def add_to(self, r: web.UrlDispatcher) -> None:
        r.add_get("/api/demo/bank", self.demo_bank)
        r.add_post("/api/demo/doors/{id}/{action}", self.demo_door)
        r.add_get("/api/demo/messages", self.demo_messages)
        r.add_get("/api/demo/qr.svg", self.demo_qr)
        r.add_post("/api/demo/scanners/{name}", self.demo_scan)
        r.add_post("/api/demo/send-codes", self.demo_send_code)

    def _sim_door(self, comp_id: str) -> Any:
        comp = self._layout.get(comp_id)
        door = None if comp is None else self.hardware.sim_door(comp)
        if door is None:
            raise NotFound("unknown_compartment", f"no simulated compartment {comp_id!r}")
        return door

    async def demo_bank(self, request: web.Request) -> web.Response:
        view = await self.reads.bank_view()
        for comp in view:
            door = self._sim_door(comp["id"])
            comp["sim"] = {
                "latched": door.latched,
                "open": door.is_open,
                "pulling": door.hand,
                "item": door.item,
                "pulses": len(door.pulses),
            }
        return web.json_response({"compartments": view})

    async def demo_door(self, request: web.Request) -> web.Response:
        await body(request, set())
        action = request.match_info["action"]
        if action not in DOOR_ACTIONS:
            raise NotFound(
                "unknown_action",
                f"a simulated person can {', '.join(DOOR_ACTIONS)} a door, not {action!r}",
            )
        door = self._sim_door(request.match_info["id"])
        opened = False
        try:
            if action == "open":
                # The person takes the handle and keeps pulling: the door opens now
                # if its latch is out, else the moment the next pulse releases it.
                opened = door.pull()
            elif action == "close":
                door.close()
            elif action == "put":
                door.put_in()
            else:
                door.take_out()
        except RuntimeError as exc:  # reaching into a shut compartment
            raise FlowError("door_not_open", str(exc)) from exc
        return web.json_response(
            {
                "open": door.is_open,
                "opened": opened,
                "latched": door.latched,
                "pulling": door.hand,
                "item": door.item,
            }
        )

    async def demo_messages(self, request: web.Request) -> web.Response:
        """The recipients' messages: the code, and a QR code when the demo signs them."""
        notices = [n.to_json() for n in await self.reads.pickup_notices()]
        signer = self.config.demo.qr_signing_key
        key = qrtoken.private_key(signer) if signer else None
        for notice in notices:
            if key is not None and notice["pickup_by"]:
                claims = qrtoken.Claims(
                    self.config.locker.id,
                    notice["barcode"],
                    notice["pickup_by"],
                    f"demo-{notice['parcel_id']}",
                )
                notice["qr"] = qrtoken.issue(claims, key)
        return web.json_response({"messages": notices})

    async def demo_send_code(self, request: web.Request) -> web.Response:
        """A send (or return) code as the back office would issue it, signed with the
        demo's key: ``size``, and ``kind``, ``reference``, ``carrier`` if not the demo's."""
        data = await body(request, {"size", "kind", "reference", "carrier"}, {"size"})
        signer = self.config.demo.qr_signing_key
        if not signer:
            raise FlowError("send_not_enabled", "the demo signs no codes (demo.qr_signing_key)")
        claims = sendcode.SendClaims(
            self.config.locker.id,
            str(data.get("kind", "send")),
            str(data.get("reference", f"DEMO{secrets.randbelow(10**8):08d}")),
            str(data["size"]),
            str(data.get("carrier", "DHL")),
            self.clock.time() + 24 * 3600,
            f"demo-send-{secrets.token_hex(6)}",
        )
        code = sendcode.issue(claims, qrtoken.private_key(signer))
        return web.json_response({"code": code, "reference": claims.reference}, status=201)

    async def demo_qr(self, request: web.Request) -> web.Response:
        """``?text=`` as a QR code in SVG, for the recipient messages the demo shows."""
        import zxingcpp

        text = request.query.get("text", "")
        problem = check_text(text)
        if problem is not None:
            raise BadRequest("invalid_text", problem, field="text")
        symbol = zxingcpp.create_barcode(text, zxingcpp.BarcodeFormat.QRCode)
        svg = zxingcpp.write_barcode_to_svg(symbol)
        return web.Response(text=svg, content_type="image/svg+xml")

    async def demo_scan(self, request: web.Request) -> web.Response:
        """Hold a code up to a simulated camera, or pull a simulated scanner's trigger."""
        data = await body(request, {"text", "format"}, {"text"})
        name = request.match_info["name"]
        text, fmt = data["text"], data.get("format", "qr")
        problem = check_text(text) if isinstance(text, str) else "text must be a string"
        if problem is not None:
            raise BadRequest("invalid_text", problem, field="text")
        if fmt not in FORMATS:
            raise BadRequest("invalid_format", f"format must be one of {', '.join(FORMATS)}")
        camera = self.scanners.cameras.get(name)
        serial = self.scanners.serial_sims.get(name)
        if camera is not None:
            frames = round(3 * next(s.fps for s in self.config.scanner if s.name == name))
            try:
                camera.show_code(text, fmt, frames)
            except ValueError as exc:  # zxing-cpp refuses text its format cannot encode
                raise BadRequest(
                    "invalid_text", f"cannot make a {fmt} code of that: {exc}"
                ) from exc
        elif serial is not None:
            serial.scan(text)
        else:
            raise NotFound("unknown_scanner", f"no simulated scanner {name!r}")
        return web.json_response({"ok": True})
