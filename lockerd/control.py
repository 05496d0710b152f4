"""The control socket ``lockerctl`` talks to: JSON lines over a Unix socket, peer-authorized.

A request is one line ``{"command", "args", "reason"}``; the answer
is one line ``{"ok": true, "result": ...}`` or ``{"ok": false, "error":
{"code", "message"}}`` (``events`` with ``follow`` streams one line per event
until the client goes). Who asks is the socket's peer credentials, never
what the request says: root, the daemon's own user, or a member of
``control.group``. Where they ask from (``ssh from ADDRESS``, ``local`` or
``unknown (user service)``) is found from the peer process (lockerd/peer.py)
as soon as the connection is accepted, and recorded beside that identity in
the audit log; an ``origin`` in the request is ignored. When it cannot be told
(the process that connected is gone, or left its session) the request is
refused with ``origin_unknown``.
"""

from __future__ import annotations

import asyncio
import grp
import json
import logging
import os
import pwd
import socket
import struct
from collections.abc import Awaitable, Callable
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

from lockerd import peer
from lockerd.config import Config
from lockerd.errors import BadRequest, FlowError
from lockerd.locker import Locker

log = logging.getLogger(__name__)
Handler = Callable[["Caller", dict[str, Any]], Awaitable[Any]]
MAX_REQUEST = 64 * 1024
ORIGIN_UNKNOWN = "cannot tell where this request comes from; run lockerctl from a login shell"


class Caller:
    def __init__(self, uid: int, origin: str):
        self.uid = uid
        try:
            self.name = pwd.getpwuid(uid).pw_name
        except KeyError:
            self.name = f"uid {uid}"
        self.origin = origin


def socket_path(config: Config) -> Path:
    if config.control.socket:
        return config.resolve(config.control.socket)
    runtime = os.environ.get("RUNTIME_DIRECTORY", "").split(":")[0]
    return (
        Path(runtime) / "control.sock" if runtime else config.database_path.parent / "control.sock"
    )


def allowed(uid: int, gid: int, group: str) -> bool:
    """Root, the daemon's own user, or a member (primary or not) of ``group``."""
    if uid in (0, os.getuid()):
        return True
    if not group:
        return False
    try:
        entry = grp.getgrnam(group)
        name = pwd.getpwuid(uid).pw_name
    except KeyError:
        return False
    return gid == entry.gr_gid or name in entry.gr_mem


class ControlServer:
    def __init__(self, config: Config, locker: Locker, commands: dict[str, Handler]):
        self.config = config
        self.locker = locker
        self.commands = commands
        self.path = socket_path(config)
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> Path:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.is_socket():
            self.path.unlink()  # left by a daemon that was killed
        self._server = await asyncio.start_unix_server(
            self._serve, path=str(self.path), limit=MAX_REQUEST
        )
        # Anyone may connect; the peer credentials decide what they may do.
        os.chmod(self.path, 0o666)
        return self.path

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self.path.unlink(missing_ok=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        pid, uid, gid = struct.unpack("3i", creds)
        try:
            # Before anything is read: the process that connected may hand the socket on and go.
            where = await asyncio.get_running_loop().run_in_executor(None, _origin, pid)
            line = await _request_line(reader)
            if not allowed(uid, gid, self.config.control.group):
                raise FlowError("not_allowed", "only root or the control group may do that")
            if where is None:
                raise FlowError("origin_unknown", ORIGIN_UNKNOWN)
            request = _parse(line)
            caller = Caller(uid, where)
            handler = self.commands.get(request["command"])
            if handler is None:
                known = ", ".join(sorted(self.commands))
                raise BadRequest("unknown_command", f"no command {request['command']!r} ({known})")
            args = dict(request.get("args") or {}, reason=str(request.get("reason") or ""))
            result = await handler(caller, args)
            if isinstance(result, _Stream):
                await result.run(writer)
            else:
                await _send(writer, {"ok": True, "result": _plain(result)})
        except FlowError as exc:
            await _send(writer, {"ok": False, "error": {"code": exc.code, "message": exc.message}})
        except (_Hangup, ConnectionError):
            pass
        except Exception:
            log.exception("control request failed")
            error = {"code": "internal_error", "message": "the daemon failed; see its log"}
            await _send(writer, {"ok": False, "error": error})
        finally:
            writer.close()


def _origin(pid: int) -> str | None:
    """Where the peer is (lockerd/peer.py), or None when that cannot be told."""
    try:
        return peer.origin(pid)
    except peer.OriginUnknown as exc:
        log.warning("control: a request is refused: %s", exc)
        return None


class _Stream:
    """A handler's answer that keeps the connection: lines until the client goes."""

    def __init__(self, run: Callable[[asyncio.StreamWriter], Awaitable[None]]):
        self.run = run


def stream(run: Callable[[asyncio.StreamWriter], Awaitable[None]]) -> _Stream:
    return _Stream(run)


class _Hangup(Exception):
    """The client closed the connection before sending anything."""


async def _request_line(reader: asyncio.StreamReader) -> bytes:
    """One request: a JSON line of at most ``MAX_REQUEST`` bytes, ended by a newline."""
    try:
        return await reader.readuntil(b"\n")
    except asyncio.LimitOverrunError as exc:
        raise BadRequest(
            "request_too_large", f"a request is one line of at most {MAX_REQUEST} bytes"
        ) from exc
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            raise _Hangup from exc
        raise BadRequest(
            "incomplete_request", "a request is one JSON line ended by a newline"
        ) from exc


def _parse(line: bytes) -> dict[str, Any]:
    try:
        request = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadRequest("invalid_json", f"the request is not JSON: {exc}") from exc
    if not isinstance(request, dict) or not isinstance(request.get("command"), str):
        raise BadRequest("invalid_request", 'a request is {"command", "args"?, "reason"?}')
    if not isinstance(request.get("args", {}), dict):
        raise BadRequest("invalid_request", "args must be an object")
    return request


async def _send(writer: asyncio.StreamWriter, message: dict[str, Any]) -> None:
    try:
        writer.write(json.dumps(message, separators=(",", ":")).encode() + b"\n")
        await writer.drain()
    except ConnectionError:
        pass


def _plain(value: Any) -> Any:
    return asdict(value) if is_dataclass(value) and not isinstance(value, type) else value
