"""A reference back office speaking sync v1 (docs/sync-protocol.md), for development and tests.

It keeps what lockers send and the commands it issues in a SQLite file
(``lockerd/sync/officedb.py``; in memory when given none), so a restarted
back office carries on where it stopped. It issues commands (signing remote
opens with its own Ed25519 key), adopts a locker whose older events were
pruned, and can be told to misbehave the ways real networks and servers do:
answer 5xx, hang, drop the connection, answer slowly, store only part of a
batch, refuse event intake, refuse large bodies with 413, deliver commands
twice, refuse the token, or go away and come back. ``lockerd back-office``
runs it from the command line; its ``/control/...`` endpoints let a person or
a demo drive it.

It is not a product: no users, no recipient notifications.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import itertools
import json
import math
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from lockerd.sync.commands import Command, open_message
from lockerd.sync.officecodes import SendCodes
from lockerd.sync.officedb import OfficeDb

PAGE = 100


@dataclass
class Faults:
    """Ways to misbehave; counters count down as requests use them."""

    #: The next N requests answer ``fail_status``.
    fail_next: int = 0
    fail_status: int = 500
    #: The next N requests get their connection closed with no answer.
    drop_next: int = 0
    #: Every request waits this long before it is handled.
    delay_s: float = 0.0
    #: The next N pushes are stored, then their connection is closed before the answer.
    lose_answers: int = 0
    #: A push stores at most this many new events (a partial acknowledgement).
    store_at_most: int | None = None
    #: The next N pushes answer ``fail_status``; command pulls still work.
    fail_pushes: int = 0
    #: A request body larger than this many bytes is answered 413 (a proxy's limit).
    max_body: int | None = None
    #: Every command page is served twice: the first time the cursor does not move.
    duplicate_commands: bool = False
    #: Every request is refused with 401.
    refuse_auth: bool = False


@dataclass
class LockerRecord:
    """What one locker sent, and the commands issued to it."""

    events: dict[int, dict[str, Any]] = field(default_factory=dict)
    acked: int = 0
    #: The ``first_seq`` this office adopted the locker from (0: it has every event).
    adopted_from: int = 0
    received: int = 0
    duplicates: int = 0
    commands: list[dict[str, Any]] = field(default_factory=list)
    served_twice: set[int] = field(default_factory=set)
    open_seq: int = 0

    def in_order(self) -> list[dict[str, Any]]:
        return [self.events[seq] for seq in sorted(self.events)]

    def counters(self) -> dict[str, int]:
        return {
            "acked": self.acked, "adopted_from": self.adopted_from, "received": self.received,
            "duplicates": self.duplicates, "open_seq": self.open_seq,
        }  # fmt: skip


class ReferenceBackOffice:
    def __init__(
        self,
        token: str,
        *,
        signing_key: Ed25519PrivateKey | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], float] = time.time,
        database: Path | None = None,
    ):
        self.token = token
        self.db = OfficeDb(database)
        self.signing_key = signing_key or self.db.signing_key()
        self.host, self.port = host, port
        self.clock = clock
        self.faults = Faults()
        self.lockers = {name: self._loaded(name, counters) for name, counters in self.db.lockers()}
        #: Bytes of each push body received, for tests of the batch cap.
        self.push_bytes: list[int] = []
        #: (method, path, status) of every request, for tests that count them.
        self.requests: list[tuple[str, str, int]] = []
        #: Requests that arrived, answered or not yet (a test can act while one hangs).
        self.arrivals = 0
        #: Presence messages heard, taken or not (docs/sync-mqtt.md, "Presence").
        self.presence_heard = 0
        self._ids = itertools.count(self.db.next_command_number())
        self._runner: web.AppRunner | None = None
        self._changed = asyncio.Condition()
        self.ssl: Any = None
        #: Called with (locker id, command) as each command is issued (the MQTT side pokes).
        self.on_issue: list[Callable[[str, dict[str, Any]], None]] = []

    def _loaded(self, name: str, counters: dict[str, int]) -> LockerRecord:
        record = LockerRecord(events=self.db.events(name), commands=self.db.commands(name))
        for key, value in counters.items():
            setattr(record, key, value)
        return record

    # -- life cycle ------------------------------------------------------------

    def _app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/lockers/{locker}/events", self.receive_events)
        app.router.add_get("/v1/lockers/{locker}/commands", self.send_commands)
        app.router.add_post("/control/lockers/{locker}/commands", self.control_issue)
        app.router.add_get("/control/lockers/{locker}", self.control_show)
        app.router.add_post("/control/faults", self.control_faults)
        codes = SendCodes(self.signing_key, lambda: self.clock())
        app.router.add_post("/control/lockers/{locker}/send-codes", codes.control_issue)
        return app

    async def start(self) -> str:
        self._runner = web.AppRunner(self._app(), access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, ssl_context=self.ssl)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self.url

    @property
    def url(self) -> str:
        return f"{'https' if self.ssl else 'http'}://{self.host}:{self.port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def close(self) -> None:
        """Stop for good: close the database (after ``stop``)."""
        self.db.close()

    async def restart(self) -> None:
        """Go away and come back on the same port, keeping what was received."""
        await self.stop()
        await self.start()

    def locker(self, locker_id: str) -> LockerRecord:
        return self.lockers.setdefault(locker_id, LockerRecord())

    async def wait_for(self, predicate: Callable[[], bool], within: float = 30.0) -> None:
        """Until ``predicate()`` holds after some request, at most ``within`` seconds."""
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(predicate), within)

    # -- issuing commands ---------------------------------------------------------

    def issue(
        self,
        locker_id: str,
        kind: str,
        data: dict[str, Any],
        *,
        expires_in: float = 3600,
        command_id: str | None = None,
    ) -> dict[str, Any]:
        """Queue a command for a locker; a remote open gets the next open_seq and is signed."""
        record = self.locker(locker_id)
        command: dict[str, Any] = {
            # Random digits too: a back office restored from a backup never reuses an id.
            "id": command_id or f"cmd-{next(self._ids)}-{secrets.token_hex(4)}",
            "type": kind,
            "expires_at": math.floor(self.clock() + expires_in),
            "data": dict(data),
        }
        if kind == "compartment.open":
            if "open_seq" not in command["data"]:
                record.open_seq += 1
                command["data"]["open_seq"] = record.open_seq
            command["signature"] = self.sign(locker_id, command)
        record.commands.append(command)
        self.db.add_command(locker_id, record.counters(), command)
        for hook in self.on_issue:
            hook(locker_id, command)
        return command

    def announce_group(
        self, locker_id: str, group: str, parcels: list[tuple[str, str | None]], recipient: str = ""
    ) -> list[dict[str, Any]]:
        """Announce one recipient's ``parcels`` (barcode, size) as one pickup group: any one
        of their pickup codes opens each of them in turn (``parcel.expect`` with ``group``)."""
        announced = []
        for barcode, size in parcels:
            data: dict[str, Any] = {"barcode": barcode, "group": group, "recipient": recipient}
            if size is not None:
                data["size"] = size
            announced.append(self.issue(locker_id, "parcel.expect", data))
        return announced

    def sign(self, locker_id: str, command: dict[str, Any]) -> str:
        checked = Command(command["id"], command["type"], command["expires_at"], command["data"])
        signature = self.signing_key.sign(open_message(locker_id, checked))
        return base64.b64encode(signature).decode()

    # -- sync v1 ---------------------------------------------------------------------

    async def _gate(self, request: web.Request) -> web.Response | None:
        """Faults and authentication; a response to send instead of handling, or None."""
        await self.arrived()
        if self.faults.delay_s:
            await asyncio.sleep(self.faults.delay_s)
        if self.faults.drop_next:
            self.faults.drop_next -= 1
            assert request.transport is not None
            request.transport.close()
            return web.Response(status=599)  # never reaches the locker
        injected = self.injected_failure()
        if injected is not None:
            return _error(*injected)
        given = request.headers.get("Authorization", "")
        expected = f"Bearer {self.token}"
        if not hmac.compare_digest(given.encode(), expected.encode()):
            return _error(401, "unknown or missing bearer token")
        return None

    def injected_failure(self) -> tuple[int, str] | None:
        """The status and message of a failure the faults ask for now, whatever the transport."""
        if self.faults.fail_next:
            self.faults.fail_next -= 1
            return self.faults.fail_status, "injected failure"
        if self.faults.refuse_auth:
            return 401, "unknown or missing bearer token"
        return None

    async def _done(self, request: web.Request, response: web.Response) -> web.Response:
        await self.note(request.method, request.path, response.status)
        return response

    async def note(self, method: str, path: str, status: int) -> None:
        """Count a request answered (HTTP, or MQTT with the topic as path); wake waiters."""
        self.requests.append((method, path, status))
        async with self._changed:
            self._changed.notify_all()

    async def heard_presence(self, locker: str, online: bool, since: float) -> bool:
        """A locker's presence message (MQTT ``conn``): kept unless a later connection's, or
        this connection's end, was heard already. Whether it was kept."""
        taken = self.db.mark_presence(locker, online, since, now=time.time())
        self.presence_heard += 1
        async with self._changed:
            self._changed.notify_all()
        return taken

    async def arrived(self) -> None:
        self.arrivals += 1
        async with self._changed:
            self._changed.notify_all()

    async def receive_events(self, request: web.Request) -> web.Response:
        refusal = await self._gate(request)
        if refusal is not None:
            return await self._done(request, refusal)
        status, answer = self.answer_push(request.match_info["locker"], await request.read())
        if status == 200 and self.faults.lose_answers:
            self.faults.lose_answers -= 1
            assert request.transport is not None
            request.transport.close()  # stored here; the locker never hears so
        return await self._done(request, web.json_response(answer, status=status))

    def answer_push(self, name: str, raw: bytes) -> tuple[int, dict[str, Any]]:
        """A push's status and answer (``{"acked_seq"}`` or an error), whichever transport
        carried its body ``raw``: checked, the locker adopted if need be, new events stored."""
        refusal = self._intake_faults(raw)
        if refusal is not None:
            return refusal[0], _problem(refusal[1])
        try:
            first_seq, events = _push(json.loads(raw))
        except (ValueError, UnicodeDecodeError) as exc:
            return 400, _problem(str(exc))
        record = self.locker(name)
        before = (dict(record.events), record.counters())
        try:
            return self._take_push(name, record, first_seq, events)
        except Exception:  # the database refused: memory goes back to what it holds
            record.events = before[0]
            for key, value in before[1].items():
                setattr(record, key, value)
            raise

    def _take_push(
        self, name: str, record: LockerRecord, first_seq: int, events: list[dict[str, Any]]
    ) -> tuple[int, dict[str, Any]]:
        if record.acked < first_seq - 1:
            # Events below first_seq were acknowledged (to this office before a restore,
            # or to another) and pruned: they will never come; take the locker from there.
            record.acked = record.adopted_from = first_seq - 1
        stored = self._store(record, events)
        while record.acked + 1 in record.events:
            record.acked += 1
        beats = [e for e in stored if e["type"] == "heartbeat"]
        for event in beats:  # a restored office counts remote opens on from the locker's
            if isinstance(event["data"].get("open_seq"), int):
                record.open_seq = max(record.open_seq, event["data"]["open_seq"])
        self.db.save(name, record.counters(), stored)
        if beats:  # half of presence, whatever the transport
            self.db.mark_heartbeat(name, max(e["at"] for e in beats))
        return 200, {"acked_seq": record.acked}

    def _intake_faults(self, raw: bytes) -> tuple[int, str] | None:
        self.push_bytes.append(len(raw))
        if self.faults.max_body is not None and len(raw) > self.faults.max_body:
            return 413, f"a body of {len(raw)} bytes is over {self.faults.max_body}"
        if self.faults.fail_pushes:
            self.faults.fail_pushes -= 1
            return self.faults.fail_status, "injected event intake failure"
        return None

    def _store(self, record: LockerRecord, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Keep each new event once; the ones stored now."""
        stored: list[dict[str, Any]] = []
        for event in events:
            record.received += 1
            if event["seq"] in record.events or event["seq"] <= record.acked:
                record.duplicates += 1
                continue
            if self.faults.store_at_most is not None and len(stored) >= self.faults.store_at_most:
                continue
            record.events[event["seq"]] = event
            stored.append(event)
        return stored

    async def send_commands(self, request: web.Request) -> web.Response:
        refusal = await self._gate(request)
        if refusal is not None:
            return await self._done(request, refusal)
        name, after = request.match_info["locker"], request.query.get("after", "")
        status, answer = self.answer_pull(name, after)
        return await self._done(request, web.json_response(answer, status=status))

    def answer_pull(self, name: str, after: str) -> tuple[int, dict[str, Any]]:
        """A pull's status and answer (a page of commands and the next cursor, or 410)."""
        record = self.locker(name)
        start = self._position(after, record.commands)
        if start is None:
            return 410, _problem(f"unknown cursor {after!r}")
        page = record.commands[start : start + PAGE]
        cursor = self._cursor(record.commands, start + len(page))
        if self.faults.duplicate_commands and page and start not in record.served_twice:
            record.served_twice.add(start)
            cursor = after  # delivered again next time
        return 200, {"commands": page, "cursor": cursor}

    def _cursor(self, commands: list[dict[str, Any]], position: int) -> str:
        """This database's name, how many commands were delivered, and the last one's id."""
        last = commands[position - 1]["id"] if position else ""
        return f"{self.db.instance}.{position}.{last}"

    def _position(self, cursor: str, commands: list[dict[str, Any]]) -> int | None:
        """Where ``cursor`` points in a locker's commands; None for one this office never
        gave (another database, or this one restored from before it was given)."""
        if not cursor:
            return 0
        instance, _, rest = cursor.partition(".")
        position = rest.partition(".")[0]
        if instance != self.db.instance or not position.isdigit():
            return None
        if int(position) > len(commands) or cursor != self._cursor(commands, int(position)):
            return None
        return int(position)

    # -- control (for people and demos; no authentication: bind it to loopback) -------------

    async def control_issue(self, request: web.Request) -> web.Response:
        body = await request.json()
        if not isinstance(body, dict) or not isinstance(body.get("type"), str):
            return _error(400, 'give {"type", "data", "expires_in"?}')
        command = self.issue(
            request.match_info["locker"],
            body["type"],
            body.get("data", {}),
            expires_in=float(body.get("expires_in", 3600)),
        )
        return web.json_response(command, status=201)

    async def control_show(self, request: web.Request) -> web.Response:
        record = self.locker(request.match_info["locker"])
        return web.json_response(
            {
                "presence": self.db.presence(request.match_info["locker"]),
                "acked_seq": record.acked,
                "adopted_from": record.adopted_from,
                "received": record.received,
                "duplicates": record.duplicates,
                "events": record.in_order()[-200:],
                "commands": record.commands,
            }
        )

    async def control_faults(self, request: web.Request) -> web.Response:
        body = await request.json()
        for key, value in body.items():
            if not hasattr(self.faults, key):
                return _error(400, f"no fault {key!r}")
            setattr(self.faults, key, value)
        return web.json_response(vars(self.faults))


def _error(status: int, message: str) -> web.Response:
    return web.json_response(_problem(message), status=status)


def _problem(message: str) -> dict[str, Any]:
    return {"error": {"message": message}}


#: The largest seq, first_seq or open_seq taken: SQLite's INTEGER is 64-bit signed.
SEQ_MAX = 2**63 - 1


def _whole(value: Any) -> bool:
    """A whole number from 0 to SEQ_MAX (not a bool)."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= SEQ_MAX


def _push(body: Any) -> tuple[int, list[dict[str, Any]]]:
    """The ``first_seq`` and events of a push, checked against sync v1; ValueError names
    what is wrong."""
    if not isinstance(body, dict) or not isinstance(body.get("events"), list):
        raise ValueError('a push is {"first_seq": N, "events": [...]}')
    first_seq = body.get("first_seq", 1)
    if not _whole(first_seq):
        raise ValueError(f"first_seq must be a whole number up to {SEQ_MAX}")
    events = body["events"]
    previous = 0
    for index, event in enumerate(events):
        if not isinstance(event, dict) or set(event) != {"seq", "type", "at", "data"}:
            raise ValueError(f"events[{index}] must have exactly seq, type, at, data")
        seq = event["seq"]
        if not _whole(seq) or seq <= previous:
            raise ValueError(
                f"events[{index}].seq must be a whole number above the one before, up to {SEQ_MAX}"
            )
        if not isinstance(event["type"], str) or not isinstance(event["data"], dict):
            raise ValueError(f"events[{index}]: type must be text and data an object")
        if not isinstance(event["at"], int | float) or isinstance(event["at"], bool):
            raise ValueError(f"events[{index}].at must be a number")
        open_seq = event["data"].get("open_seq")
        if event["type"] == "heartbeat" and isinstance(open_seq, int) and not _whole(open_seq):
            raise ValueError(f"events[{index}].data.open_seq must be 0 to {SEQ_MAX}")
        previous = seq
    if events and first_seq > events[0]["seq"]:
        raise ValueError("first_seq is above the first event sent")
    return first_seq, events
