"""What a technician does at the locker (``lockerctl``, the site walk), each action
audited with who did it, from where and why: the one way the control socket's
commands act on the locker and its store."""

from __future__ import annotations

from typing import Any

from lockerd.domain import Parcel
from lockerd.flows import Flow, Kind
from lockerd.locker import Locker
from lockerd.store.records import ParcelRecord

#: (actor, origin, reason) for the audit log.
Who = tuple[str, str, str]


class Desk:
    """The technician's actions on one locker."""

    def __init__(self, locker: Locker):
        self._locker = locker
        self._db = locker.db
        self._store = locker.store

    async def open(self, comp: str, who: Who) -> Flow:
        """Pulse ``comp`` for a technician; the compartment then needs a check."""
        reservation = await self._db(self._store.service.open, comp, *who)
        return await self._locker.open_reserved(Kind.SERVICE, reservation)

    async def disable(self, comp: str, who: Who) -> None:
        await self._db(self._store.service.disable, comp, *who)

    async def enable(self, comp: str, who: Who) -> str:
        """Put ``comp`` back in use once a fresh read shows it shut and latched."""
        await self._locker.require_shut_and_latched(comp)
        return await self._db(self._store.service.enable, comp, *who)

    async def extend(self, barcode: str, pickup_by: float, who: Who) -> None:
        await self._db(self._store.service.extend, barcode, pickup_by, *who)

    async def returned(self, barcode: str, who: Who) -> None:
        await self._db(self._store.service.returned, barcode, *who)

    async def parcels(self, state: Parcel | None) -> list[ParcelRecord]:
        return await self._db(self._store.parcels.all, state)

    async def parcel(self, barcode: str) -> ParcelRecord:
        return await self._db(self._store.service.parcel, barcode)

    async def audit(self, limit: int) -> list[dict[str, Any]]:
        return await self._db(self._store.audit.entries, limit)

    async def verify_audit(self) -> dict[str, Any]:
        return await self._db(self._store.audit.verify)
