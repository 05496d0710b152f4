"""Who may use the kiosk API: a loopback Host, the kiosk's own Origin, JSON bodies.

The kiosk API is for the page on the device's own screen. A web page from
anywhere else that the device's browser opens could still send it requests:
a cross-site form or ``fetch`` (which needs no CORS pre-flight when its body
is ``text/plain``, a form or multipart), a WebSocket (browsers do not apply
the same-origin policy to those), or a page on a hostname its owner points
at 127.0.0.1 (DNS rebinding), which is then same-origin with the kiosk. So
every request must name a loopback Host (a rebinding hostname is not one),
any Origin it carries must be the kiosk's own (browsers always send one on
POST and on a WebSocket; ``null`` is not the kiosk), and a POST body must be
declared ``application/json`` (which no cross-site form can send; an empty
body has nothing to declare). A client
that is not a browser (curl, a script on the device) sends no Origin and is
let through.

Every error, the guard's and aiohttp's own (404, 405, 413) as much as the
flows', is answered as ``{"error": {"code", "message", ...}}``.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Awaitable, Callable

from aiohttp import hdrs, web

from lockerd.config import loopback
from lockerd.errors import BadRequest, FlowError, NotFound, Unauthorized

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: A Host header (or an origin's host): a bracketed IPv6 address or a name, and a port.
_HOST = re.compile(
    r"(?:\[(?P<v6>[0-9A-Fa-f:.]{2,45})\]|(?P<name>[A-Za-z0-9.-]{1,253}))"
    r"(?::(?P<port>[1-9][0-9]{0,4}))?"
)

#: The longest part of a path a route takes (an id, a compartment, a file name).
MAX_PATH_PART = 128

#: Codes for the errors aiohttp raises itself (no such route, wrong method, body too big).
HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
}


def _host_and_port(text: str) -> tuple[str, int | None] | None:
    """``text`` split as a Host header is, or None when it is not one."""
    match = _HOST.fullmatch(text)
    if match is None:
        return None
    port = int(match["port"]) if match["port"] else None
    return (match["v6"] or match["name"]).lower(), port


@functools.lru_cache(maxsize=64)  # the kiosk sends the same few headers every request
def loopback_host(host: str, port: int) -> bool:
    """Whether a Host header names this server on loopback.

    127.0.0.0/8, ``[::1]`` or ``localhost``, without a port or with ``port``.
    A rebinding hostname, however it resolves, is not one.
    """
    parts = _host_and_port(host)
    return parts is not None and loopback(parts[0]) and parts[1] in (None, port)


@functools.lru_cache(maxsize=64)
def own_origin(origin: str, port: int) -> bool:
    """Whether an Origin header is the kiosk page's: ``http://`` a loopback host and ``port``
    (80 when it names none, as browsers leave the default port out)."""
    if not origin.startswith("http://"):
        return False
    parts = _host_and_port(origin.removeprefix("http://"))
    return parts is not None and loopback(parts[0]) and (parts[1] or 80) == port


def json_declared(content_type: str) -> bool:
    """Whether a Content-Type header says JSON: ``application/json``, at most with
    ``charset=utf-8`` (the only encoding JSON has)."""
    kind, *params = (p.strip().lower() for p in content_type.split(";"))
    charset = {"charset=utf-8", 'charset="utf-8"'}
    return kind == "application/json" and all(p in charset for p in params)


def _only(request: web.Request, name: str) -> str | None:
    """The one value of header ``name``; None when absent; "" when sent more than once."""
    values = request.headers.getall(name, [])
    return None if not values else values[0] if len(values) == 1 else ""


def _local_port(request: web.Request) -> int:
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    return int(sockname[1]) if sockname else -1


def check(request: web.Request) -> None:
    """Refuse a request the kiosk API must not answer (see the module docstring)."""
    port = _local_port(request)
    host = _only(request, hdrs.HOST)
    if host is None or not loopback_host(host, port):
        raise HttpRefusal(
            "wrong_host",
            f"the kiosk API answers only to a loopback Host, not {(host or '')[:100]!r}",
            421,
        )
    origin = _only(request, hdrs.ORIGIN)
    if origin is not None and not own_origin(origin, port):
        raise HttpRefusal(
            "foreign_origin",
            f"only the kiosk page may use the kiosk API, not {origin[:100]!r}",
            403,
        )
    if any(len(part) > MAX_PATH_PART for part in request.match_info.values()):
        raise HttpRefusal("not_found", "no such path: a part of it is too long", 404)
    if request.method == hdrs.METH_POST and request.body_exists:
        content_type = _only(request, hdrs.CONTENT_TYPE)
        if content_type is None or not json_declared(content_type):
            raise HttpRefusal(
                "unsupported_media_type",
                "a body must be JSON sent as Content-Type: application/json",
                415,
            )


class HttpRefusal(FlowError):
    """A refusal the kiosk API makes itself (Host, Origin, content type, routing, a
    fault), with its HTTP status."""

    def __init__(self, code: str, message: str, status: int, **details: object):
        super().__init__(code, message, **details)
        self.status = status


#: The HTTP status of each refusal of the locker's that is not the default for its
#: kind (below): the one place the kiosk API turns a domain refusal into HTTP.
STATUS = {
    "not_allowed": 403,
    "wrong_code": 403,
    "token_invalid": 403,
    "token_used": 403,
    "token_expired": 403,
    "token_wrong_locker": 403,
    "send_code_invalid": 403,
    "send_code_used": 403,
    "send_code_expired": 403,
    "send_code_wrong_locker": 403,
    "other_carrier": 403,
    "too_fast": 429,
    "locked_out": 429,
    "compartment_unreachable": 503,
}


def http_status(exc: FlowError) -> int:
    """The kiosk API's status for ``exc``: 400 for bad input, 401 without the session
    the request needs, 404 for what does not exist, 409 for a refusal of the flow."""
    if isinstance(exc, HttpRefusal):
        return exc.status
    if exc.code in STATUS:
        return STATUS[exc.code]
    if isinstance(exc, BadRequest):
        return 400
    if isinstance(exc, Unauthorized):
        return 401
    if isinstance(exc, NotFound):
        return 404
    return 409


def error_response(exc: FlowError) -> web.Response:
    body = {"error": {"code": exc.code, "message": exc.message, **exc.details}}
    return web.json_response(body, status=http_status(exc))


def _http_error(request: web.Request, exc: web.HTTPException) -> web.Response:
    """aiohttp's own refusal (404, 405, 413...) as the documented JSON error."""
    code = HTTP_CODES.get(exc.status, "http_error")
    message = exc.reason.lower()
    if isinstance(exc, web.HTTPMethodNotAllowed):
        allowed = ", ".join(sorted(exc.allowed_methods))
        message = f"{request.method} is not allowed here (allowed: {allowed})"
    elif isinstance(exc, web.HTTPRequestEntityTooLarge):
        message = f"the body is larger than {request.client_max_size} bytes"
    elif exc.status == 404:
        message = f"no such path: {request.path[:100]!r}"
    response = error_response(HttpRefusal(code, message, exc.status))
    if hdrs.ALLOW in exc.headers:
        response.headers[hdrs.ALLOW] = exc.headers[hdrs.ALLOW]
    return response


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error as JSON; a fault is logged and answered ``500 internal_error``."""
    try:
        return await handler(request)
    except FlowError as exc:
        return error_response(exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _http_error(request, exc)
    except Exception:
        log.exception("%s %s failed", request.method, request.path[:200])
        return error_response(HttpRefusal("internal_error", "the locker could not do that", 500))


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Host, Origin and Content-Type checked before any handler runs."""
    check(request)
    return await handler(request)
