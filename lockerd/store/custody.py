"""Custody: reserving compartments for drop-off, pulses, and what each door change completes."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from lockerd import codes, throttle
from lockerd.config.schema import CompartmentConfig
from lockerd.domain import Comp, Event, Intent, Parcel, Purpose
from lockerd.errors import FlowError, StoreError
from lockerd.store import credentials
from lockerd.store.base import Reservation, StoreBase


class Custody(StoreBase):
    # -- drop-off --------------------------------------------------------

    def reserve_for_dropoff(
        self,
        courier: str,
        barcode: str,
        size: str,
        unavailable: Iterable[str] = (),
        prefer_low: bool = False,
    ) -> Reservation:
        """Commit an unlock intent on the smallest free compartment that fits ``size``."""
        with self._change() as conn:
            busy = conn.execute(
                "SELECT 1 FROM unlock_intents WHERE barcode = ? AND purpose = 'dropoff'"
                " AND state IN ('pending', 'opened')",
                (barcode,),
            ).fetchone()
            if busy:
                raise FlowError("already_in_progress", f"parcel {barcode} is being dropped off")
            skip = set(unavailable)
            free = {
                r[0]
                for r in conn.execute("SELECT id FROM compartments WHERE state = 'free'")
                if r[0] not in skip
            }
            chosen = self._choose(free, size, prefer_low)
            if chosen is None:
                raise FlowError(
                    "locker_full",
                    f"no free compartment of size {size} or larger",
                    size=size,
                )
            intent_id = self._intend(
                conn, chosen, Purpose.DROPOFF, courier, barcode=barcode, size=size
            )
        return Reservation(intent_id, chosen.id, Purpose.DROPOFF, chosen.size, barcode=barcode)

    def has_room(self, size: str, unavailable: Iterable[str] = ()) -> bool:
        """Whether a drop-off of ``size`` would find a free compartment now."""
        skip = set(unavailable)
        free = {
            r[0]
            for r in self.db.conn.execute("SELECT id FROM compartments WHERE state = 'free'")
            if r[0] not in skip
        }
        return self._choose(free, size, prefer_low=False) is not None

    def _choose(self, free: set[str], size: str, prefer_low: bool) -> CompartmentConfig | None:
        order = self.config.size_order
        fits = [
            c
            for c in self.config.compartment
            if c.id in free and order.index(c.size) >= order.index(size)
        ]
        if not fits:
            return None
        return min(
            fits,
            key=lambda c: (order.index(c.size), prefer_low != c.low_reach, c.column, c.row),
        )

    def release(self, intent_id: int, reason: str) -> None:
        """The flow gives the compartment back (does not fit, cancelled).

        If the door was never seen open the compartment is free again at once;
        otherwise it becomes free when the door is seen closed.
        """
        with self._change() as conn:
            intent = self._live(conn, intent_id)
            if intent["state"] == Intent.PENDING:
                self._finish(conn, intent_id, Intent.DONE)
                self._set(conn, intent["compartment_id"], Comp.FREE)
            else:
                self._finish(conn, intent_id, Intent.RELEASED)
            self._event(
                Event.DROPOFF_RELEASED,
                {"intent": intent_id, "compartment": intent["compartment_id"], "reason": reason},
            )

    def record_pulse(self, comp_id: str, intent_id: int, attempt: int) -> None:
        with self._change():
            self._event(
                Event.LOCK_PULSED, {"compartment": comp_id, "intent": intent_id, "attempt": attempt}
            )

    def return_to_service(self, comp_id: str, actor: str) -> str:
        """A person checked a compartment out of service or needing a check: use it again.

        It is occupied again if it holds a parcel, else free. Returns the new state.
        """
        with self._change() as conn:
            return self._return_to_service(conn, comp_id, actor)

    def _return_to_service(self, conn: Any, comp_id: str, actor: str) -> str:
        row = self.compartment(comp_id)
        if row["state"] not in (Comp.OUT_OF_SERVICE, Comp.NEEDS_CHECK):
            raise FlowError("in_service", f"{comp_id} is {row['state']}, not out of service")
        if self.live_intent(comp_id) is not None:
            raise FlowError("door_in_progress", f"{comp_id} has an unlock under way")
        held = conn.execute(
            "SELECT 1 FROM parcels WHERE compartment_id = ? AND state IN ('stored','expired')",
            (comp_id,),
        ).fetchone()
        state = Comp.OCCUPIED if held else Comp.FREE
        self._set(conn, comp_id, state)
        self._event(Event.IN_SERVICE, {"compartment": comp_id, "state": str(state), "actor": actor})
        return str(state)

    def unlock_failed(self, intent_id: int) -> None:
        """The door never opened: the compartment goes out of service."""
        with self._change() as conn:
            intent = self._live(conn, intent_id)
            comp_id = intent["compartment_id"]
            self._finish(conn, intent_id, Intent.FAILED)
            self._set(conn, comp_id, Comp.OUT_OF_SERVICE, "door_did_not_open")
            self._event(Event.DOOR_JAMMED, {"compartment": comp_id, "intent": intent_id})
            self._event(
                Event.OUT_OF_SERVICE, {"compartment": comp_id, "reason": "door_did_not_open"}
            )

    # -- doors -----------------------------------------------------------

    def door_opened(self, comp_id: str) -> dict[str, Any]:
        """A debounced open: completes the live intent's first half, or is an alarm."""
        with self._change() as conn:
            row = self.compartment(comp_id)
            intent = self.live_intent(comp_id)
            conn.execute("UPDATE compartments SET door = 'open' WHERE id = ?", (comp_id,))
            if intent is not None and intent["state"] == Intent.PENDING:
                conn.execute(
                    "UPDATE unlock_intents SET state = 'opened', updated_at = ? WHERE id = ?",
                    (self.clock.time(), intent["id"]),
                )
                self._set(conn, comp_id, Comp.OPEN)
                self._event(
                    Event.DOOR_OPENED,
                    {"compartment": comp_id, "intent": intent["id"], "purpose": intent["purpose"]},
                )
                return {"forced": False, "intent": intent["id"], "purpose": intent["purpose"]}
            self._event(Event.DOOR_FORCED, {"compartment": comp_id, "state": row["state"]})
            if row["state"] != Comp.OUT_OF_SERVICE:
                self._set(conn, comp_id, Comp.NEEDS_CHECK, "forced")
                self._event(Event.NEEDS_CHECK, {"compartment": comp_id, "reason": "forced"})
            return {"forced": True, "intent": None, "purpose": None}

    def door_left_open(self, comp_id: str) -> None:
        with self._change() as conn:
            intent = self.live_intent(comp_id)
            if intent is not None:
                conn.execute(
                    "UPDATE unlock_intents SET alarm = 'left_open' WHERE id = ?", (intent["id"],)
                )
            self._event(Event.DOOR_LEFT_OPEN, {"compartment": comp_id})

    def door_closed(self, comp_id: str, item: bool | None = None) -> dict[str, Any]:
        """A debounced close: completes the live intent (stores or hands over a parcel).

        ``item`` is what the compartment's item sensor sees now (None: it has
        none). Where it disagrees with the door cycle (a drop-off with nothing
        inside, a pickup with something still inside, a given-back compartment
        not empty) the custody change does not happen: the compartment needs a
        check and a ``custody.mismatch`` alarm is journalled.
        """
        with self._change() as conn:
            conn.execute("UPDATE compartments SET door = 'closed' WHERE id = ?", (comp_id,))
            self._event(Event.DOOR_CLOSED, {"compartment": comp_id})
            intent = self.live_intent(comp_id)
            if intent is None or intent["state"] == Intent.PENDING:
                return {"completed": None}
            after_alarm = intent["alarm"] is not None
            self._finish(conn, intent["id"], Intent.DONE)
            mismatch = self._mismatch(intent, item)
            if mismatch is not None:
                reason, expected = mismatch
                self._event(
                    Event.CUSTODY_MISMATCH,
                    {
                        "compartment": comp_id,
                        "intent": intent["id"],
                        "purpose": intent["purpose"],
                        "expected": expected,
                        "seen": "item" if item else "empty",
                    },
                )
                self._set(conn, comp_id, Comp.NEEDS_CHECK, reason)
                self._event(Event.NEEDS_CHECK, {"compartment": comp_id, "reason": reason})
                return {"completed": reason, "intent": intent["id"], "parcel": intent["parcel_id"]}
            if intent["state"] == Intent.RELEASED:
                self._settle(conn, comp_id, Comp.FREE, after_alarm)
                return {"completed": "released", "intent": intent["id"]}
            if intent["purpose"] == Purpose.DROPOFF:
                parcel_id = self._store_parcel(conn, intent)
                self._settle(conn, comp_id, Comp.OCCUPIED, after_alarm)
                return {"completed": "stored", "intent": intent["id"], "parcel": parcel_id}
            if intent["purpose"] in (Purpose.PICKUP, Purpose.COLLECT):
                self._hand_over(conn, intent)
                self._settle(conn, comp_id, Comp.FREE, after_alarm)
                return {
                    "completed": "collected",
                    "intent": intent["id"],
                    "parcel": intent["parcel_id"],
                }
            # A technician's or remote open: what is inside is for a person to confirm.
            self._set(conn, comp_id, Comp.NEEDS_CHECK, f"{intent['purpose']}_open")
            self._event(Event.NEEDS_CHECK, {"compartment": comp_id, "reason": intent["purpose"]})
            return {"completed": intent["purpose"], "intent": intent["id"]}

    @staticmethod
    def _mismatch(intent: dict[str, Any], item: bool | None) -> tuple[str, str] | None:
        """``(needs_check reason, what was expected inside)`` where the item sensor
        contradicts what the door cycle would complete; None where it agrees or is absent."""
        if item is None or intent["purpose"] in (Purpose.SERVICE, Purpose.REMOTE):
            return None
        if intent["state"] == Intent.RELEASED:
            return ("item_left_inside", "empty") if item else None
        if intent["purpose"] == Purpose.DROPOFF:
            return None if item else ("parcel_not_seen", "item")
        return ("parcel_still_inside", "empty") if item else None

    def _settle(self, conn: Any, comp_id: str, state: Comp, after_alarm: bool) -> None:
        """Give the compartment its state after a door cycle; an alarm means a check first."""
        if after_alarm:
            self._set(conn, comp_id, Comp.NEEDS_CHECK, "left_open")
            self._event(Event.NEEDS_CHECK, {"compartment": comp_id, "reason": "left_open"})
        else:
            self._set(conn, comp_id, state)

    def _store_parcel(self, conn: Any, intent: dict[str, Any]) -> int:
        now = self.clock.time()
        code = self._unique_code(conn)
        row = conn.execute(
            "SELECT id, recipient, hold_hours FROM parcels"
            " WHERE barcode = ? AND state = 'expected'",
            (intent["barcode"],),
        ).fetchone()
        hours = row["hold_hours"] if row is not None and row["hold_hours"] else None
        pickup_by = now + (hours or self.config.pickup.hold_hours) * 3600
        fields = (
            intent["compartment_id"],
            self.key.digest("pickup", code),
            len(code),
            intent["actor"],
        )
        if row is None:
            parcel_id = conn.execute(
                "INSERT INTO parcels (barcode, size, state, compartment_id, code_hmac, code_length,"
                " courier_id, pickup_by, stored_at, created_at, updated_at)"
                " VALUES (?, ?, 'stored', ?, ?, ?, ?, ?, ?, ?, ?)",
                (intent["barcode"], intent["size"], *fields, pickup_by, now, now, now),
            ).lastrowid
            recipient = ""
        else:
            parcel_id, recipient = row[0], row[1]
            conn.execute(
                "UPDATE parcels SET state = 'stored', compartment_id = ?, code_hmac = ?,"
                " code_length = ?, courier_id = ?, pickup_by = ?, stored_at = ?, updated_at = ?"
                " WHERE id = ?",
                (*fields, pickup_by, now, now, parcel_id),
            )
        conn.execute(
            "UPDATE unlock_intents SET parcel_id = ? WHERE id = ?", (parcel_id, intent["id"])
        )
        seq = self._event(
            Event.PARCEL_STORED,
            {
                "parcel": parcel_id,
                "barcode": intent["barcode"],
                "compartment": intent["compartment_id"],
                "size": intent["size"],
                "recipient": recipient,
                "courier": intent["actor"],
                "pickup_by": pickup_by,
            },
        )
        if self.keep_notices:  # someone delivers it: kept, sealed, until they have it
            conn.execute(
                "INSERT INTO pickup_notices (parcel_id, seq, code) VALUES (?, ?, ?)",
                (parcel_id, seq, self.key.seal(code, int(parcel_id))),
            )
        return int(parcel_id)

    def _unique_code(self, conn: Any) -> str:
        for _ in range(100):
            code = codes.new_pickup_code(self.config.pickup.code_length)
            taken = conn.execute(
                "SELECT 1 FROM parcels WHERE code_hmac = ? AND state IN ('stored','expired')",
                (self.key.digest("pickup", code),),
            ).fetchone()
            if not taken:
                return code
        raise StoreError("could not find an unused pickup code; code_length is too short")

    def _hand_over(self, conn: Any, intent: dict[str, Any]) -> None:
        """The parcel left the locker: collected by its recipient, or taken back by a courier."""
        now = self.clock.time()
        resident = intent["purpose"] == Purpose.PICKUP
        conn.execute(
            "UPDATE parcels SET state = ?, closed_at = ?, updated_at = ? WHERE id = ?",
            (Parcel.COLLECTED if resident else Parcel.RETURNED, now, now, intent["parcel_id"]),
        )
        conn.execute("DELETE FROM pickup_notices WHERE parcel_id = ?", (intent["parcel_id"],))
        if resident:
            # The one thing that ends the keypad's back-off streak; the budget stays.
            rules = self.config.pickup.throttle
            steady = self._throttle_now()
            state = self._load_throttle(conn, "pickup", steady)
            credentials.save_throttle(conn, "pickup", throttle.after_pickup(state, steady, rules))
        self._event(
            Event.PARCEL_COLLECTED if resident else Event.PARCEL_RETURNED,
            {
                "parcel": intent["parcel_id"],
                "compartment": intent["compartment_id"],
                "actor": intent["actor"],
            },
        )
