"""What a technician may ask through ``lockerctl``: the control socket's commands.

Reads answer at once; every state-changing command needs a reason and is
audited (lockerd/store/technician.py) with the caller's identity.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from lockerd.config import Config
from lockerd.control import Caller, Handler, stream
from lockerd.desk import Desk, Who
from lockerd.domain import Outbound, Parcel
from lockerd.errors import BadRequest, FlowError, NotFound
from lockerd.locker import Locker

if TYPE_CHECKING:  # the sync stack is imported only where sync is configured
    from lockerd.sync.coordinator import SyncCoordinator

SECRET_KEYS = {"code", "qr_signing_key"}
NO_BACK_OFFICE = "this locker has no back office: [sync] url is unset"


def compartment_id(name: str, ids: set[str]) -> str | None:
    """The compartment ``name`` means: its id as written, else the one id equal to it
    ignoring case (``a2`` for ``A2``); None where there is none, or more than one."""
    if name in ids:
        return name
    folded = [i for i in ids if i.casefold() == name.casefold()]
    return folded[0] if len(folded) == 1 else None


def _compartment(args: dict[str, Any], config: Config) -> str:
    comp = args.get("id")
    found = compartment_id(comp, config.compartment_ids) if isinstance(comp, str) else None
    if found is None:
        raise NotFound("unknown_compartment", f"no compartment {comp!r} in this locker")
    return found


def _int(args: dict[str, Any], key: str, default: int, low: int, high: int) -> int:
    value = args.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise BadRequest("invalid_field", f"{key} must be a whole number in {low}..{high}")
    return value


#: The largest journal sequence number SQLite can hold.
MAX_SEQ = 2**63 - 1
#: Most events or audit entries one request lists.
MAX_LIMIT = 100_000


def _target(args: dict[str, Any]) -> str | int:
    """The parcel a change names: ``barcode`` (a string) or ``id`` (a number), one of them;
    a barcode is never read as an id."""
    barcode, parcel_id = args.get("barcode"), args.get("id")
    if (barcode is None) == (parcel_id is None):
        raise BadRequest("missing_field", "name the parcel by its barcode, or by --id N")
    if parcel_id is not None:
        if not isinstance(parcel_id, int) or isinstance(parcel_id, bool) or parcel_id < 1:
            raise BadRequest("invalid_field", "id must be a parcel's id (as parcels list prints)")
        return parcel_id
    if not isinstance(barcode, str) or not barcode:
        raise BadRequest("invalid_field", "barcode must be a parcel's barcode")
    return barcode


def _who(caller: Caller, args: dict[str, Any]) -> Who:
    """The audit log's (actor, origin, reason) for a request."""
    return caller.name, caller.origin, args["reason"]


def masked(value: Any) -> Any:
    """The config as plain data with secrets replaced by ``"***"``."""
    if isinstance(value, dict):
        return {k: "***" if k in SECRET_KEYS and v else masked(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [masked(v) for v in value]
    return str(value) if not isinstance(value, int | float | str | bool | type(None)) else value


class Commands:
    """The control socket's commands, one method each; ``handlers`` maps their names."""

    def __init__(self, config: Config, locker: Locker, sync: SyncCoordinator | None):
        self.config, self.locker, self.sync = config, locker, sync
        self.desk = Desk(locker)

    async def status(self, caller: Caller, args: dict[str, Any]) -> Any:
        reads = self.locker.reads
        return {
            "locker": {"id": self.config.locker.id, "name": self.config.locker.name},
            "compartments": await reads.bank_view(),
            "boards": reads.boards(),
            "alarms": [alarm.data() for alarm in self.locker.alarms],
            "sync": self.sync.status() if self.sync else None,
            "unsent": await reads.unsent_count(),
        }

    async def open_door(self, caller: Caller, args: dict[str, Any]) -> Any:
        comp = _compartment(args, self.config)
        return (await self.desk.open(comp, _who(caller, args))).view()

    async def disable(self, caller: Caller, args: dict[str, Any]) -> Any:
        comp = _compartment(args, self.config)
        await self.desk.disable(comp, _who(caller, args))
        return {"compartment": comp, "state": "out_of_service"}

    async def enable(self, caller: Caller, args: dict[str, Any]) -> Any:
        comp = _compartment(args, self.config)
        state = await self.desk.enable(comp, _who(caller, args))
        return {"compartment": comp, "state": state}

    async def found(self, caller: Caller, args: dict[str, Any]) -> Any:
        comp = _compartment(args, self.config)
        barcode = await self.desk.found(comp, _who(caller, args))
        return {"compartment": comp, "parcel": barcode, "found": True}

    async def empty(self, caller: Caller, args: dict[str, Any]) -> Any:
        comp = _compartment(args, self.config)
        barcode = await self.desk.empty(comp, _who(caller, args))
        return {"compartment": comp, "parcel": barcode, "found": False}

    async def events(self, caller: Caller, args: dict[str, Any]) -> Any:
        after = _int(args, "after", 0, 0, MAX_SEQ)
        if args.get("follow"):
            if "after" not in args:  # from now on, as tail -f
                after = await self.locker.reads.last_seq()
            return self._follow(after, _int(args, "limit", MAX_SEQ, 1, MAX_SEQ))
        limit = _int(args, "limit", 50, 1, MAX_LIMIT)
        if "after" not in args:
            after = max(0, await self.locker.reads.last_seq() - limit)
        return await self.locker.reads.events(after, limit)

    def _follow(self, after: int, limit: int) -> Any:
        """The events after ``after``, then each new one as it is journalled, until
        ``limit`` of them are written."""
        queue = self.locker.subscribe()

        async def follow(writer: asyncio.StreamWriter) -> None:
            last, left = after, limit

            def send(event: Mapping[str, Any]) -> None:
                nonlocal last, left
                if left > 0 and event.get("seq", 0) > last:
                    writer.write(json.dumps(event).encode() + b"\n")
                    last, left = event["seq"], left - 1

            try:
                for event in await self.locker.reads.events(after, min(limit, 10**9)):
                    send(event)
                await writer.drain()
                while left > 0:
                    send(await queue.get())
                    await writer.drain()
            except ConnectionError:
                pass
            finally:
                self.locker.unsubscribe(queue)

        return stream(follow)

    async def sync_command(self, caller: Caller, args: dict[str, Any]) -> Any:
        if self.sync is None and args.get("push"):
            raise FlowError("sync_off", NO_BACK_OFFICE)
        if self.sync is None:  # nothing is wrong: there is nothing to sync with
            return {"url": None, "off": NO_BACK_OFFICE}
        if args.get("push"):
            await self.sync.round()
        return self.sync.status() | {"unsent": await self.locker.reads.unsent_count()}

    async def show_config(self, caller: Caller, args: dict[str, Any]) -> Any:
        plain = dataclasses.asdict(self.config)
        plain.pop("board", None)  # the raw tables; "boards" holds them typed
        return masked(plain)

    async def audit(self, caller: Caller, args: dict[str, Any]) -> Any:
        if args.get("verify"):
            return await self.desk.verify_audit()
        return await self.desk.audit(_int(args, "limit", 50, 1, MAX_LIMIT))

    async def parcels(self, caller: Caller, args: dict[str, Any]) -> Any:
        action = args.get("action", "list")
        if action == "list":
            state = args.get("state")
            if state is not None and state not in [str(p) for p in Parcel]:
                raise BadRequest("invalid_field", f"state must be one of {', '.join(Parcel)}")
            parcels = await self.desk.parcels(Parcel(state) if state else None)
            return [p.to_json() for p in parcels]
        if action not in ("show", "extend", "returned"):
            raise BadRequest("invalid_field", "action must be list, show, extend or returned")
        name = args.get("name") if action == "show" else None
        if isinstance(name, str) and name and "barcode" not in args and "id" not in args:
            return (await self.desk.parcel(name)).to_json()
        target = _target(args)
        if action == "extend":
            hours = args.get("hours")
            if (
                not isinstance(hours, int | float)
                or isinstance(hours, bool)
                or not 0 < hours <= 2160
            ):
                raise BadRequest("invalid_field", "hours must be more than 0 and at most 2160")
            pickup_by = self.locker.clock.time() + hours * 3600
            await self.desk.extend(target, pickup_by, _who(caller, args))
        elif action == "returned":
            await self.desk.returned(target, _who(caller, args))
        return (await self.desk.named(target)).to_json()

    async def outbound(self, caller: Caller, args: dict[str, Any]) -> Any:
        """The parcels sent or returned here: list, show, and one taken out by hand."""
        action = args.get("action", "list")
        if action == "list":
            state = args.get("state")
            if state is not None and state not in [str(s) for s in Outbound]:
                raise BadRequest("invalid_field", f"state must be one of {', '.join(Outbound)}")
            parcels = await self.desk.outbound(Outbound(state) if state else None)
            return [p.to_json() for p in parcels]
        outbound_id = args.get("id")
        if not isinstance(outbound_id, int) or isinstance(outbound_id, bool) or outbound_id < 1:
            raise BadRequest(
                "invalid_field", "id must be an outbound parcel's number (as outbound list prints)"
            )
        if action == "removed":
            await self.desk.outbound_removed(outbound_id, _who(caller, args))
        elif action != "show":
            raise BadRequest("invalid_field", "action must be list, show or removed")
        return (await self.desk.outbound_parcel(outbound_id)).to_json()

    async def diag(self, caller: Caller, args: dict[str, Any]) -> Any:
        """A bus scan (each board read once now) and the door sensors' sanity."""
        boards = await self.locker.reads.board_scan()
        doubts = []
        for comp in await self.locker.reads.bank_view():
            if comp["door"] == "unknown":
                doubts.append(f"{comp['id']}: door unknown (its sensing board is silent)")
            elif comp["door"] == "open" and comp["state"] not in ("open", "reserved"):
                doubts.append(f"{comp['id']}: door reads open with no unlock ({comp['state']})")
        doubts += [f"board {a.board}: check {a.key}: {a.detail}" for a in self.locker.alarms]
        return {"boards": boards, "sensors": doubts}

    async def cycle_test(self, caller: Caller, args: dict[str, Any]) -> Any:
        ids = self._compartments(args.get("ids"))
        wait = float(_int(args, "timeout", 120, 5, 3600))
        reason = args["reason"]
        if not reason.strip():
            raise BadRequest("reason_required", "every service action needs a reason")

        async def walk(writer: asyncio.StreamWriter) -> None:
            report = [await self._cycle_one(comp, caller, reason, wait, writer) for comp in ids]
            writer.write(json.dumps({"ok": True, "result": report}).encode() + b"\n")
            await writer.drain()

        return stream(walk)

    def _compartments(self, names: Any) -> list[str]:
        """The compartments a cycle test names, each as :func:`compartment_id` finds it."""
        if not isinstance(names, list) or not names:
            raise BadRequest("missing_field", "name the compartments to walk")
        return [_compartment({"id": name}, self.config) for name in names]

    async def _cycle_one(
        self, comp: str, caller: Caller, reason: str, wait: float, writer: asyncio.StreamWriter
    ) -> dict[str, Any]:
        async def say(text: str) -> None:
            writer.write(json.dumps({"progress": f"{comp}: {text}"}).encode() + b"\n")
            await writer.drain()

        return await self.desk.door_cycle(comp, (caller.name, caller.origin, reason), wait, say)


def handlers(config: Config, locker: Locker, sync: SyncCoordinator | None) -> dict[str, Handler]:
    """Command name -> handler, for the control server."""
    commands = Commands(config, locker, sync)
    return {
        "parcels": commands.parcels,
        "outbound": commands.outbound,
        "diag": commands.diag,
        "cycle-test": commands.cycle_test,
        "status": commands.status,
        "open": commands.open_door,
        "disable": commands.disable,
        "enable": commands.enable,
        "found": commands.found,
        "empty": commands.empty,
        "events": commands.events,
        "sync": commands.sync_command,
        "config": commands.show_config,
        "audit": commands.audit,
    }
