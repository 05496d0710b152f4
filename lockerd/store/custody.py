"""Custody: reserving compartments for drop-off, and what each door change completes."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from typing import Any

from lockerd import custody as rules
from lockerd.config.schema import CompartmentConfig
from lockerd.domain import Comp, Door, Event, Intent, Parcel, Purpose
from lockerd.errors import FlowError, Refused
from lockerd.store._context import Context
from lockerd.store.intents import Reservation, parcel_door
from lockerd.store.records import (
    Compartment,
    DoorClosed,
    DoorOpened,
    PickupCode,
    UnlockIntent,
)
from lockerd.store.tables import Tables


class CustodyRepo:
    """Custody changes: each one transaction with its journal events."""

    def __init__(self, context: Context, tables: Tables):
        self._c = context
        self._compartments = tables.compartments
        self._intents = tables.intents
        self._parcels = tables.parcels
        self._throttles = tables.throttles
        self._outbound = tables.outbound

    # -- drop-off --------------------------------------------------------

    def reserve_for_dropoff(
        self,
        courier: str,
        barcode: str,
        size: str,
        unavailable: Iterable[str] = (),
        prefer_low: bool = False,
        named: str | None = None,
    ) -> Reservation:
        """Commit an unlock intent on the smallest free compartment that fits ``size``
        (a low-reach one with ``prefer_low``: ``no_low_compartment`` where none is free
        but another is, naming it; ``named``: that one only, else the same refusal naming
        the one that would be used now)."""
        # Chosen before BEGIN: this thread is the store's only writer, so what is free now
        # is what is free inside the transaction, and the transaction holds only the writes.
        chosen, other = self._compartments.chosen_and_other(
            size, prefer_low, set(unavailable), named
        )
        with self._c.change() as conn:
            if self._intents.dropping_off(conn, barcode):
                raise FlowError("already_in_progress", f"parcel {barcode} is being dropped off")
            if other is None:
                raise FlowError(
                    "locker_full",
                    f"no free compartment of size {size} or larger",
                    size=size,
                )
            if chosen is None:
                raise rules.no_low(size, other)
            intent_id = self._intents.create(
                conn, chosen, Purpose.DROPOFF, courier, barcode=barcode, size=size
            )
        return Reservation(intent_id, chosen.id, Purpose.DROPOFF, chosen.size, barcode=barcode)

    def has_room(self, size: str, unavailable: Iterable[str] = ()) -> bool:
        """Whether a drop-off of ``size`` would find a free compartment now."""
        return self._choose(set(unavailable), size, prefer_low=False) is not None

    def _choose(
        self, unavailable: set[str], size: str, prefer_low: bool
    ) -> CompartmentConfig | None:
        return self._compartments.choose(size, prefer_low, unavailable)

    def release(self, intent_id: int, reason: str, shut_first: bool = False) -> None:
        """The flow gives the compartment back (does not fit, cancelled).

        If the door was never seen open the compartment is free again at once;
        otherwise it becomes free when the door is seen closed. ``shut_first``: a
        drop-off cancelled once its lock was pulsed, free only once its door is seen
        shut (a door cycle, or :meth:`settle_cancelled`).
        """
        with self._c.change() as conn:
            intent = self._intents.require_live(intent_id)
            state, comp_state = rules.released(intent.state, shut_first)
            self._intents.finish(conn, intent_id, state)
            if comp_state is not None:
                self._compartments.set(conn, intent.compartment_id, comp_state)
            self._c.event(
                Event.DROPOFF_RELEASED,
                {"intent": intent_id, "compartment": intent.compartment_id, "reason": reason},
            )

    def settle_cancelled(self, intent_id: int, latched: bool, item: bool | None = None) -> None:
        """A cancelled drop-off's door, never seen open, read shut after its pulse: the
        compartment is free if the latch caught again, else it needs a check. Nothing
        changes where the door was seen open meanwhile (its closing settles it)."""
        with self._c.change() as conn:
            intent = self._intents.require_live(intent_id)
            comp_id = intent.compartment_id
            if intent.state != Intent.RELEASED or self._compartments.get(comp_id).state != (
                Comp.RESERVED
            ):
                return
            self._intents.finish(conn, intent_id, Intent.DONE)
            state, reason = rules.shut_after_cancel(latched, item)
            self._compartments.set(conn, comp_id, state, reason)
            if reason is None:
                self._c.event(Event.DOOR_CLOSED, {"compartment": comp_id})
            else:
                self._c.event(Event.NEEDS_CHECK, {"compartment": comp_id, "reason": reason})

    def left_unshut(self, intent_id: int, comp_id: str) -> None:
        """A cancelled drop-off's door the courier could not shut and left: the intent
        ends and the compartment needs a check (``not_shut``). Nothing changes where the
        door closed meanwhile (its closing settled it)."""
        with self._c.change() as conn:
            intent = self._intents.live(comp_id)
            if intent is None or intent.id != intent_id:
                return
            self._intents.finish(conn, intent_id, Intent.DONE)
            self._compartments.set(conn, comp_id, Comp.NEEDS_CHECK, "not_shut")
            self._c.event(Event.NEEDS_CHECK, {"compartment": comp_id, "reason": "not_shut"})

    def unlock_failed(self, intent_id: int) -> None:
        """The door never opened: the compartment goes out of service. A parcel someone
        came for stays behind it, in custody as it was (``parcel.stuck``: the back office
        learns it; its code opens the door once the compartment is back in service)."""
        with self._c.change() as conn:
            intent = self._intents.require_live(intent_id)
            comp_id = intent.compartment_id
            self._intents.finish(conn, intent_id, Intent.FAILED)
            self._compartments.set(conn, comp_id, Comp.OUT_OF_SERVICE, "door_did_not_open")
            self._c.event(Event.DOOR_JAMMED, {"compartment": comp_id, "intent": intent_id})
            self._c.event(
                Event.OUT_OF_SERVICE, {"compartment": comp_id, "reason": "door_did_not_open"}
            )
            if intent.parcel_id is not None and intent.purpose in rules.HOLDS_FOR:
                self._c.event(Event.PARCEL_STUCK, _stuck(intent))

    def not_opened(self, intent_id: int) -> None:
        """A pickup's or collection's door was not seen open in time and nobody said it
        would not open: the latch caught again. The intent ends; the compartment is
        occupied again (free after a reopen: its parcel was collected) and the parcel
        stays as it was, so the parcel's code opens it again."""
        with self._c.change() as conn:
            intent = self._intents.require_live(intent_id)
            self._intents.finish(conn, intent_id, Intent.FAILED)
            comp_id = intent.compartment_id
            self._compartments.set(
                conn, comp_id, rules.in_service(self._compartments.holds_parcel(conn, comp_id))
            )
            self._c.event(
                Event.DOOR_NOT_OPENED, {"compartment": intent.compartment_id, "intent": intent_id}
            )

    def disputed(self, intent_id: int) -> None:
        """A pickup's door read open only by its lock's switch, and the resident says it
        did not open: whether the parcel is inside is unknown, so the compartment needs a
        check (``disputed_pickup``); the parcel's record stays as it was."""
        with self._c.change() as conn:
            intent = self._intents.require_live(intent_id)
            comp_id = intent.compartment_id
            self._intents.finish(conn, intent_id, Intent.FAILED)
            self._compartments.set(conn, comp_id, Comp.NEEDS_CHECK, "disputed_pickup")
            self._c.event(Event.NEEDS_CHECK, {"compartment": comp_id, "reason": "disputed_pickup"})

    # -- service ---------------------------------------------------------

    def return_to_service(self, comp_id: str, actor: str) -> str:
        """A person checked a compartment out of service or needing a check: use it again.

        It is occupied again if it holds a parcel, else free. Returns the new state.
        """
        with self._c.change() as conn:
            return self.return_in(conn, comp_id, actor)

    def return_in(self, conn: sqlite3.Connection, comp_id: str, actor: str) -> str:
        """:meth:`return_to_service` inside the caller's transaction."""
        state = self._compartments.get(comp_id).state
        if state not in rules.CHECKABLE:
            raise FlowError("in_service", f"{comp_id} is {state}, not out of service")
        if self._intents.live(comp_id) is not None:
            raise FlowError("door_in_progress", f"{comp_id} has an unlock under way")
        cut_short = self._intents.cut_short_at(conn, comp_id)
        if cut_short is not None:
            raise Refused(rules.deposit_unresolved(comp_id, cut_short.barcode))
        state = rules.in_service(self._compartments.holds_parcel(conn, comp_id))
        self._compartments.set(conn, comp_id, state)
        self._c.event(
            Event.IN_SERVICE, {"compartment": comp_id, "state": str(state), "actor": actor}
        )
        return str(state)

    def take_out_of_service(self, conn: sqlite3.Connection, comp_id: str, reason: str) -> None:
        """Out of service, by a technician or the back office, unless a door is under way."""
        if self._intents.live(comp_id) is not None:
            raise Refused(f"{comp_id} has a door opening or open")
        if self._compartments.get(comp_id).state == Comp.OUT_OF_SERVICE:
            raise Refused(f"{comp_id} is already out of service")
        self._compartments.set(conn, comp_id, Comp.OUT_OF_SERVICE, reason)
        self._c.event(Event.OUT_OF_SERVICE, {"compartment": comp_id, "reason": reason})

    # -- doors -----------------------------------------------------------

    def door_opened(self, comp_id: str) -> DoorOpened:
        """A debounced open: completes the live intent's first half, or is an alarm."""
        with self._c.change() as conn:
            row = self._compartments.get(comp_id)
            intent = self._intents.live(comp_id)
            self._compartments.set_door(conn, comp_id, Door.OPEN)
            if intent is not None and self._expected_open(intent, row.state):
                if intent.state == Intent.PENDING:
                    self._intents.finish(conn, intent.id, Intent.OPENED)
                self._compartments.set(conn, comp_id, Comp.OPEN)
                self._c.event(
                    Event.DOOR_OPENED,
                    {"compartment": comp_id, "intent": intent.id, "purpose": str(intent.purpose)},
                )
                return DoorOpened(False, intent.id, intent.purpose)
            self._c.event(Event.DOOR_FORCED, {"compartment": comp_id, "state": str(row.state)})
            if row.state != Comp.OUT_OF_SERVICE:
                self._compartments.set(conn, comp_id, Comp.NEEDS_CHECK, "forced")
                self._c.event(Event.NEEDS_CHECK, {"compartment": comp_id, "reason": "forced"})
            return DoorOpened(True)

    @staticmethod
    def _expected_open(intent: UnlockIntent, state: Comp) -> bool:
        """A door opening under ``intent`` is no alarm: its lock was pulsed for it, even if
        the drop-off was cancelled since (released, and the door not yet seen open)."""
        return intent.state == Intent.PENDING or (
            intent.state == Intent.RELEASED and state == Comp.RESERVED
        )

    def door_left_open(self, comp_id: str) -> None:
        with self._c.change() as conn:
            intent = self._intents.live(comp_id)
            if intent is not None:
                conn.execute(
                    "UPDATE unlock_intents SET alarm = 'left_open' WHERE id = ?", (intent.id,)
                )
            self._c.event(Event.DOOR_LEFT_OPEN, {"compartment": comp_id})

    def door_closed(self, comp_id: str, item: bool | None = None) -> DoorClosed:
        """A debounced close: completes the live intent (stores or hands over a parcel).

        ``item`` is what the compartment's item sensor sees now (None: it has
        none). Where it disagrees with the door cycle (a drop-off with nothing
        inside, a pickup with something still inside, a given-back compartment
        not empty) the custody change does not happen: the compartment needs a
        check and a ``custody.mismatch`` alarm is journalled.
        """
        drawn = self._parcels.draw_code()  # in case it stores a parcel: no need to hold the lock
        with self._c.change() as conn:
            self._c.event(Event.DOOR_CLOSED, {"compartment": comp_id})
            intent = self._intents.live(comp_id)
            if intent is None or intent.state == Intent.PENDING:
                self._compartments.set_door(conn, comp_id, Door.CLOSED)
                return DoorClosed(None)
            # Past here the compartment's row is written once, its closed door with its state.
            mismatch = rules.mismatch(intent.purpose, intent.state, item)
            if mismatch is not None:
                self._intents.finish(conn, intent.id, Intent.DONE)
                return self._mismatched(conn, intent, item, *mismatch)
            closed = self._complete(conn, intent, drawn, after_alarm=intent.alarm is not None)
            self._intents.finish(conn, intent.id, Intent.DONE, closed.parcel)
            return closed

    def _mismatched(
        self,
        conn: sqlite3.Connection,
        intent: UnlockIntent,
        item: bool | None,
        reason: str,
        expected: str,
    ) -> DoorClosed:
        comp_id = intent.compartment_id
        self._c.event(
            Event.CUSTODY_MISMATCH,
            {
                "compartment": comp_id,
                "intent": intent.id,
                "purpose": str(intent.purpose),
                "expected": expected,
                "seen": "item" if item else "empty",
            },
        )
        self._compartments.set(conn, comp_id, Comp.NEEDS_CHECK, reason, Door.CLOSED)
        self._c.event(Event.NEEDS_CHECK, {"compartment": comp_id, "reason": reason})
        return DoorClosed(reason, intent.id, intent.parcel_id)

    def _complete(
        self, conn: sqlite3.Connection, intent: UnlockIntent, drawn: PickupCode, after_alarm: bool
    ) -> DoorClosed:
        """The custody change a door cycle completes (:func:`lockerd.custody.completion`)."""
        comp_id = intent.compartment_id
        done = rules.completion(
            intent.purpose,
            intent.state,
            outbound=intent.outbound_id is not None,
            collected=self._collected(intent),
        )
        if done.outbound is not None:  # a parcel sent or returned, deposited or collected
            self._outbound.complete(conn, intent, done.outbound)
            self._settle(conn, comp_id, done.comp, after_alarm)
            return DoorClosed(done.completed, intent.id)
        if done.reason is not None:  # a technician's or remote open: a person checks inside
            self._compartments.set(conn, comp_id, done.comp, done.reason, Door.CLOSED)
            self._c.event(Event.NEEDS_CHECK, {"compartment": comp_id, "reason": done.completed})
            return DoorClosed(done.completed, intent.id)
        parcel_id = intent.parcel_id
        if done.parcel == Parcel.STORED:
            parcel_id = self._parcels.store(conn, intent, drawn)
        elif done.parcel is not None:
            self._hand_over(conn, intent, done.parcel)
        self._settle(conn, comp_id, done.comp, after_alarm)
        return DoorClosed(done.completed, intent.id, None if done.parcel is None else parcel_id)

    def _collected(self, intent: UnlockIntent) -> bool:
        """Whether ``intent``'s parcel was collected at an earlier door cycle."""
        parcel = None if intent.parcel_id is None else self._parcels.get(intent.parcel_id)
        return parcel is not None and parcel.state == Parcel.COLLECTED

    def _settle(
        self, conn: sqlite3.Connection, comp_id: str, state: Comp, after_alarm: bool
    ) -> None:
        """Give the compartment its state after a door cycle (its door closed); an alarm
        means a check first."""
        state, reason = rules.settled(state, after_alarm)
        self._compartments.set(conn, comp_id, state, reason, Door.CLOSED)
        if reason is not None:
            self._c.event(Event.NEEDS_CHECK, {"compartment": comp_id, "reason": reason})

    def _hand_over(self, conn: sqlite3.Connection, intent: UnlockIntent, state: Parcel) -> None:
        """The parcel left the locker: collected by its recipient, or taken back by a courier."""
        self._parcels.close(conn, intent.parcel_id, state)
        if state == Parcel.COLLECTED:
            # The one thing that ends the keypad's back-off streak; the budget stays.
            self._throttles.after_pickup(conn, "pickup")
        self._c.event(
            Event.PARCEL_COLLECTED if state == Parcel.COLLECTED else Event.PARCEL_RETURNED,
            {
                "parcel": intent.parcel_id,
                "compartment": intent.compartment_id,
                "actor": intent.actor,
            },
        )

    # -- after a start ---------------------------------------------------

    def reconcile(
        self, doors: Mapping[str, Door], items: Mapping[str, bool | None] | None = None
    ) -> list[dict[str, Any]]:
        """After a start: settle every compartment from the store and a fresh sensor read
        (``items``: what each item sensor sees, where there is one)."""
        items = items or {}
        with self._c.change() as conn:
            interrupted = self._intents.interrupt_live(conn)
            changes = []
            for row in self._compartments.all():
                door = doors.get(row.id, Door.UNKNOWN)
                change = self._settle_at_start(
                    conn, row, door, row.id in interrupted, items.get(row.id)
                )
                changes += [change] if change is not None else []
            self._c.event(Event.STARTED, {"changed": len(changes), "interrupted": len(interrupted)})
        return changes

    def _settle_at_start(
        self,
        conn: sqlite3.Connection,
        row: Compartment,
        door: Door,
        interrupted: bool,
        item: bool | None,
    ) -> dict[str, Any] | None:
        """One compartment's state after a start, written; the change, if it changed."""
        target, reason = rules.reconciled(row.state, row.reason, door, interrupted, item)
        self._compartments.set(conn, row.id, target, reason, door)
        if target == row.state:
            return None
        change: dict[str, Any] = {"compartment": row.id, "from": str(row.state)}
        change |= {"to": str(target), "door": str(door), "reason": reason}
        self._c.event(Event.RECONCILED, change)
        return change


def _stuck(intent: UnlockIntent) -> dict[str, Any]:
    """``parcel.stuck``'s data: the parcel behind ``intent``'s door, which would not open."""
    door = parcel_door(intent.parcel_id, intent.barcode, intent.compartment_id, intent.id)
    return door | {"purpose": str(intent.purpose)}
