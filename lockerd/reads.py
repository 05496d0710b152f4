"""What the faces read of the locker: the bank as people see it, the journal, the boards.

The kiosk's status and event stream, ``lockerctl status``, ``diag`` and
``events``, and the demo panel all read through :class:`Reads`, never through
the store or the bank themselves. Every read is linear in the bank.
"""

from __future__ import annotations

from typing import Any

from lockerd.bank import Bank
from lockerd.config import Config
from lockerd.store import Store
from lockerd.store.records import JournalEntry, PickupNotice
from lockerd.worker import Runner


class Reads:
    """Read-only views of one locker's store and bank, for its faces."""

    def __init__(self, config: Config, store: Store, db: Runner, bank: Bank):
        self.config = config
        self._store = store
        self._db = db
        self._bank = bank

    async def bank_view(self) -> list[dict[str, Any]]:
        """Every compartment as the kiosk and lockerctl show it, in config order."""
        rows = {row.id: row for row in await self._db(self._store.compartments.all)}
        view = []
        for comp in self.config.compartment:
            row = rows[comp.id]
            view.append(
                {
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
                }
            )
        return view

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
