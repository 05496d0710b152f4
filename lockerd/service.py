"""What a technician may ask through ``lockerctl``: the control socket's commands.

Reads answer at once; every state-changing command needs a reason and is
audited (lockerd/store/service.py) with the caller's identity.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from typing import Any

from lockerd.config import Config
from lockerd.control import Caller, Handler, stream
from lockerd.domain import Door
from lockerd.errors import BadRequest, FlowError, NotFound
from lockerd.locker import Locker
from lockerd.sync.coordinator import SyncCoordinator

SECRET_KEYS = {"code", "qr_signing_key"}


def _compartment(args: dict[str, Any], config: Config) -> str:
    comp = args.get("id")
    if not isinstance(comp, str) or comp not in config.compartment_ids:
        raise NotFound("unknown_compartment", f"no compartment {comp!r} in this locker")
    return comp


def _int(args: dict[str, Any], key: str, default: int, low: int = 0) -> int:
    value = args.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise BadRequest("invalid_field", f"{key} must be a whole number of at least {low}")
    return value


def masked(value: Any) -> Any:
    """The config as plain data with secrets replaced by ``"***"``."""
    if isinstance(value, dict):
        return {k: "***" if k in SECRET_KEYS and v else masked(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [masked(v) for v in value]
    return str(value) if not isinstance(value, int | float | str | bool | type(None)) else value


def handlers(config: Config, locker: Locker, sync: SyncCoordinator | None) -> dict[str, Handler]:
    db, store = locker.db, locker.store

    async def status(caller: Caller, args: dict[str, Any]) -> Any:
        boards = {
            name: {"online": b.online, "reads": b.reads, "failures": b.failures}
            for name, b in locker.bank.boards.items()
        }
        return {
            "locker": {"id": config.locker.id, "name": config.locker.name},
            "compartments": await locker.bank_view(),
            "boards": boards,
            "sync": sync.status() if sync else None,
            "unsent": await db(store.unsent_count),
        }

    async def open_door(caller: Caller, args: dict[str, Any]) -> Any:
        comp = _compartment(args, config)
        reservation = await db(store.service_open, comp, caller.name, caller.origin, args["reason"])
        return (await locker.open_reserved("service", reservation)).view()

    async def disable(caller: Caller, args: dict[str, Any]) -> Any:
        comp = _compartment(args, config)
        await db(store.service_disable, comp, caller.name, caller.origin, args["reason"])
        return {"compartment": comp, "state": "out_of_service"}

    async def enable(caller: Caller, args: dict[str, Any]) -> Any:
        comp = _compartment(args, config)
        if locker.bank.door(comp) != Door.CLOSED:
            raise FlowError("door_not_closed", f"close {comp} before putting it back in use")
        state = await db(store.service_enable, comp, caller.name, caller.origin, args["reason"])
        return {"compartment": comp, "state": state}

    async def events(caller: Caller, args: dict[str, Any]) -> Any:
        after, limit = _int(args, "after", 0), _int(args, "limit", 50, 1)
        if not args.get("follow"):
            if "after" not in args:
                after = max(0, await db(store.last_seq) - limit)
            return await db(store.events, after, limit)
        queue = locker.subscribe()

        async def follow(writer: asyncio.StreamWriter) -> None:

            last = after
            try:
                for event in await db(store.events, after, 10**9):
                    writer.write(json.dumps(event).encode() + b"\n")
                    last = event["seq"]
                await writer.drain()
                while True:
                    event = await queue.get()
                    if event.get("seq", 0) > last:
                        writer.write(json.dumps(event).encode() + b"\n")
                        last = event["seq"]
                        await writer.drain()
            except ConnectionError:
                pass
            finally:
                locker.unsubscribe(queue)

        return stream(follow)

    async def sync_command(caller: Caller, args: dict[str, Any]) -> Any:
        if sync is None:
            raise FlowError("sync_off", "this locker has no back office ([sync] url is unset)")
        if args.get("push"):
            await sync.round()
        return sync.status() | {"unsent": await db(store.unsent_count)}

    async def show_config(caller: Caller, args: dict[str, Any]) -> Any:
        plain = dataclasses.asdict(config)
        plain.pop("board", None)  # the raw tables; "boards" holds them typed
        return masked(plain)

    async def audit(caller: Caller, args: dict[str, Any]) -> Any:
        if args.get("verify"):
            return await db(store.verify_audit)
        return await db(store.audit_entries, _int(args, "limit", 50, 1))

    return {
        "status": status,
        "open": open_door,
        "disable": disable,
        "enable": enable,
        "events": events,
        "sync": sync_command,
        "config": show_config,
        "audit": audit,
    }
