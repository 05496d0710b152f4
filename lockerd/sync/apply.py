"""What each back-office command does to the store: one explicit table, type to effect.

Each effect runs on the store's thread inside the inbox's transaction
(:meth:`lockerd.store.inbox.InboxRepo.apply`), which applies a command once
and rejects it, with nothing kept, when its effect refuses.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

from lockerd.config.schema import CompartmentConfig
from lockerd.errors import Refused
from lockerd.store import Reservation, Store
from lockerd.sync.commands import Command

Effect = Callable[[Store, sqlite3.Connection, dict[str, Any]], None]


def _expect(store: Store, conn: sqlite3.Connection, data: dict[str, Any]) -> None:
    recipient, hold_hours = data.get("recipient", ""), data.get("hold_hours")
    store.parcels.announce(
        conn, data["barcode"], data.get("size"), recipient, hold_hours, group=data.get("group")
    )


def _cancel(store: Store, conn: sqlite3.Connection, data: dict[str, Any]) -> None:
    store.parcels.cancel(conn, data["barcode"])


def _extend(store: Store, conn: sqlite3.Connection, data: dict[str, Any]) -> None:
    store.parcels.extend(conn, data["barcode"], data["pickup_by"])


def _courier_upsert(store: Store, conn: sqlite3.Connection, data: dict[str, Any]) -> None:
    name = data.get("name", "")
    carrier = data.get("carrier", "")
    store.couriers.upsert(conn, data["id"], name, data["code"], data["rights"], carrier)


def _courier_revoke(store: Store, conn: sqlite3.Connection, data: dict[str, Any]) -> None:
    store.couriers.revoke(conn, data["id"])


def _send_expect(store: Store, conn: sqlite3.Connection, data: dict[str, Any]) -> None:
    store.sending.expect(conn, data.get("kind", "send"), data)


def _disable(store: Store, conn: sqlite3.Connection, data: dict[str, Any]) -> None:
    comp = _compartment(store, data["compartment"])
    reason = "remote: " + data.get("reason", "taken out by the back office")
    store.custody.take_out_of_service(conn, comp.id, reason)


def _enable(store: Store, conn: sqlite3.Connection, data: dict[str, Any]) -> None:
    comp = _compartment(store, data["compartment"])
    store.custody.return_in(conn, comp.id, "back office")


#: Every data command (all but ``compartment.open``, see :func:`reserve_remote_open`).
EFFECTS: dict[str, Effect] = {
    "parcel.expect": _expect,
    "parcel.cancel": _cancel,
    "parcel.extend": _extend,
    "courier.upsert": _courier_upsert,
    "courier.revoke": _courier_revoke,
    "send.expect": _send_expect,
    "compartment.disable": _disable,
    "compartment.enable": _enable,
}


def apply_command(store: Store, command: Command) -> str:
    """Apply a checked data command once: ``applied``, ``rejected`` or ``duplicate``."""
    effect = EFFECTS[command.type]
    outcome, _ = store.inbox.apply(
        command.id, command.type, lambda conn: effect(store, conn, command.data)
    )
    return outcome


def reserve_remote_open(store: Store, command: Command) -> tuple[str, Reservation | None]:
    """Commit the unlock intent of a checked, signed remote open, once."""

    def effect(conn: sqlite3.Connection) -> Reservation:
        comp = _compartment(store, command.data["compartment"])
        return store.intents.reserve_remote(conn, command.id, comp, command.data["open_seq"])

    return store.inbox.apply(command.id, command.type, effect)


def _compartment(store: Store, comp_id: str) -> CompartmentConfig:
    comp = store.layout.get(comp_id)
    if comp is None:
        raise Refused(f"no compartment {comp_id!r} in this locker")
    return comp
