"""What a technician does at the locker (``lockerctl``, the site walk), each action
audited with who did it, from where and why: the one way the control socket's
commands act on the locker and its store."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from lockerd.domain import Outbound, Parcel
from lockerd.errors import FlowError
from lockerd.flows import Flow, Kind, State
from lockerd.locker import Locker, Message
from lockerd.store.records import OutboundRecord, ParcelRecord

#: (actor, origin, reason) for the audit log.
Who = tuple[str, str, str]
#: Tells the technician how a door cycle goes, a line at a time.
Say = Callable[[str], Awaitable[None]]


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

    async def extend(self, name: str | int, pickup_by: float, who: Who) -> None:
        """``name``: a barcode, or an ``int`` id."""
        await self._db(self._store.service.extend, name, pickup_by, *who)

    async def returned(self, name: str | int, who: Who) -> None:
        await self._db(self._store.service.returned, name, *who)

    async def outbound(self, state: Outbound | None) -> list[OutboundRecord]:
        """The parcels sent or returned here (or those in ``state``)."""
        return await self._db(self._store.outbound.all, state)

    async def outbound_parcel(self, outbound_id: int) -> OutboundRecord:
        return await self._db(self._store.service.outbound_parcel, outbound_id)

    async def outbound_removed(self, outbound_id: int, who: Who) -> None:
        await self._db(self._store.service.outbound_removed, outbound_id, *who)

    async def found(self, comp: str, who: Who) -> str:
        """The parcel of the deposit cut short at ``comp`` is inside; its barcode."""
        return await self._db(self._store.service.found, comp, *who)

    async def empty(self, comp: str, who: Who) -> str:
        """``comp`` is empty: its deposit cut short did not happen; the parcel's barcode."""
        return await self._db(self._store.service.empty, comp, *who)

    async def parcels(self, state: Parcel | None) -> list[ParcelRecord]:
        return await self._db(self._store.parcels.all, state)

    async def parcel(self, name: str) -> ParcelRecord:
        """A barcode or a printed id, for a read (an id that is also a barcode: refused)."""
        return await self._db(self._store.service.parcel, name)

    async def named(self, name: str | int) -> ParcelRecord:
        """A barcode (``str``) or an id (``int``), never one read as the other."""
        return await self._db(self._store.service.named, name)

    async def audit(self, limit: int) -> list[dict[str, Any]]:
        return await self._db(self._store.audit.entries, limit)

    async def verify_audit(self) -> dict[str, Any]:
        return await self._db(self._store.audit.verify)

    async def door_cycle(self, comp: str, who: Who, wait: float, say: Say) -> dict[str, Any]:
        """Open ``comp`` for a person, follow them opening and shutting it, and report what
        was seen: whether the door was seen open and shut, whether the lock reads latched
        once its pulse is over (None on boards without lock feedback), and what went
        wrong, if anything. ``lockerctl cycle-test`` and the site walk use it.
        """
        queue = self._locker.subscribe()
        seen: dict[str, Any] = {
            "compartment": comp, "opened": False, "closed": False, "latched": None, "error": None
        }  # fmt: skip
        try:
            flow = await self.open(comp, who)
            await say("pulsed: open the door, then shut it")
            await self._follow(flow, queue, wait, seen, say)
            seen["latched"] = await self._latched_after_pulse(comp)
        except FlowError as exc:
            seen["error"] = exc.message
        except TimeoutError:
            seen["error"] = f"no door cycle within {wait:g} s"
        finally:
            self._locker.unsubscribe(queue)
        await say("ok" if seen["closed"] and not seen["error"] else f"FAILED: {seen['error']}")
        return seen

    async def _follow(
        self,
        flow: Flow,
        queue: asyncio.Queue[Message],
        wait: float,
        seen: dict[str, Any],
        say: Say,
    ) -> None:
        """Wait for ``flow`` to end, noting the door seen open; TimeoutError after ``wait``."""
        clock = self._locker.clock
        deadline = clock.monotonic() + wait
        while flow.state not in (State.CLOSED, State.FAILED):
            left = deadline - clock.monotonic()
            if left <= 0:
                raise TimeoutError
            await asyncio.wait_for(queue.get(), left)  # something happened: look again
            if flow.state == State.OPEN and not seen["opened"]:
                seen["opened"] = True
                await say("door seen open")
        seen["closed"] = flow.state == State.CLOSED
        seen["opened"] = seen["opened"] or seen["closed"]  # a cycle too quick to watch
        if flow.error:
            seen["error"] = flow.error["message"]

    async def _latched_after_pulse(self, comp: str) -> bool | None:
        """The lock once the pulse is over: a door shut while the coil is still energized
        latches only then."""
        await self._locker.bank.pulse_over(comp)
        return (await self._locker.bank.status(comp)).latched
