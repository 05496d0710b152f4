"""What the faces read of the locker: the bank as people see it, the journal, the boards.

The kiosk's status and event stream, ``lockerctl status``, ``diag`` and
``events``, and the demo panel all read through :class:`Reads`, never through
the store or the bank themselves. Every read is linear in the bank, and the
bank view is built once per change: a :class:`BankSnapshot` kept until a store
transaction writes a compartment or parcel row or the bank's doors, latches or board
health change (a newer journal event only renews its ``last_seq``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

from lockerd.bank import Bank
from lockerd.config import Config
from lockerd.config.schema import CompartmentConfig
from lockerd.store import Store
from lockerd.store.records import CompartmentWithParcel, JournalEntry, PickupNotice
from lockerd.worker import Runner


@dataclass(frozen=True)
class BankSnapshot:
    """The bank as the kiosk's status shows it at one moment (never changed once built)."""

    compartments: tuple[dict[str, Any], ...]
    #: ``compartments`` as a JSON array, encoded once.
    compartments_json: str
    #: Free compartments with the door known shut, per size, in the config's size order.
    free: dict[str, int]
    code_lengths: list[int]
    last_seq: int


class Reads:
    """Read-only views of one locker's store and bank, for its faces."""

    def __init__(self, config: Config, store: Store, db: Runner, bank: Bank):
        self.config = config
        self._store = store
        self._db = db
        self._bank = bank
        self._snapshot: BankSnapshot | None = None
        self._version = (-1, -1)

    async def bank_view(self) -> list[dict[str, Any]]:
        """Every compartment as the kiosk and lockerctl show it, in config order (copies:
        the caller may add to them)."""
        return [dict(comp) for comp in (await self.snapshot()).compartments]

    async def snapshot(self) -> BankSnapshot:
        """The bank view with what the status shows beside it, rebuilt only after a change
        to what it shows (rows of the view's tables written, doors, latches, boards)."""
        db = self._store.db
        version = (db.view_changes, self._bank.changes)
        if self._snapshot is None or version != self._version:
            # The version is taken before the reads: a change during them rebuilds it again.
            self._snapshot, self._version = await self._build(), version
        if self._snapshot.last_seq != db.last_seq:  # an event that moved nothing it shows
            self._snapshot = replace(self._snapshot, last_seq=db.last_seq)
        return self._snapshot

    async def _build(self) -> BankSnapshot:
        rows, lengths = await self._db(self._store_part)
        view = tuple(self._compartment(comp, rows[comp.id]) for comp in self.config.compartment)
        free = dict.fromkeys(self.config.size_order, 0)
        for comp in view:
            if comp["state"] == "free" and comp["door"] == "closed":
                free[comp["size"]] += 1
        return BankSnapshot(view, json.dumps(view), free, lengths, self._store.db.last_seq)

    def _store_part(self) -> tuple[dict[str, CompartmentWithParcel], list[int]]:
        """On the store's thread, in one hop: the rows and the code lengths."""
        store = self._store
        rows = {row.id: row for row in store.compartments.all()}
        return rows, store.parcels.code_lengths()

    def _compartment(self, comp: CompartmentConfig, row: CompartmentWithParcel) -> dict[str, Any]:
        return {
            "id": comp.id,
            "size": comp.size,
            "column": comp.column,
            "row": comp.row,
            "low_reach": comp.low_reach,
            "state": str(row.state),
            "reason": row.reason,
            "door": str(self._bank.door(comp.id)),
            "lock": self._lock_view(comp.id, comp.board),
            "parcel": row.parcel_barcode,
            "outbound": row.outbound,
        }

    def _lock_view(self, comp_id: str, board: str) -> str | None:
        """The lock as the poller last read it: ``latched``, ``released``, ``unknown`` (its
        board is silent), or None where the board reports no latch."""
        if not self._bank.boards[board].config.has_feedback:
            return None
        latched = self._bank.latched(comp_id)
        return "unknown" if latched is None else "latched" if latched else "released"

    def boards(self) -> dict[str, dict[str, Any]]:
        """Each board's health as the poller sees it."""
        return {
            name: {"online": b.online, "reads": b.reads, "failures": b.failures}
            for name, b in self._bank.boards.items()
        }

    async def board_scan(self) -> list[dict[str, Any]]:
        """Each board read once now, as a technician's bus scan: its health, the answer
        time or error, and for a Kerong CU16 given ``energize_ms`` whether it echoed it."""
        scan = []
        for name, board in self._bank.boards.items():
            probe = await self._bank.probe(name)
            scan.append(
                {"board": name, "bus": board.bus, "address": getattr(board.config, "address", None),
                 "online": board.online, "reads": board.reads, "failures": board.failures,
                 "energize_confirmed": getattr(board.driver, "energize_confirmed", None),
                 "energize_ms": getattr(board.config, "energize_ms", None)} | probe
            )  # fmt: skip
        return scan

    async def last_seq(self) -> int:
        return await self._db(self._store.journal.last_seq)

    async def events(self, after: int, limit: int = 1000) -> list[JournalEntry]:
        """Journal events after sequence number ``after``, oldest first."""
        return await self._db(self._store.journal.events, after, limit)

    async def code_lengths(self) -> list[int]:
        """The pickup code lengths the keypad takes now."""
        return await self._db(self._store.parcels.code_lengths)

    async def unsent_count(self) -> int:
        return await self._db(self._store.journal.unsent_count)

    async def pickup_notices(self) -> list[PickupNotice]:
        """Codes waiting to be delivered (the demo's recipient messages)."""
        return await self._db(self._store.parcels.notices)
