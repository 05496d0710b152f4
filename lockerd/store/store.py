"""Custody operations: each one a single transaction with its journal events.

Methods are blocking and called from the store thread only (or inline in
tests). Each returns plain data; refusals raise :class:`FlowError` after
anything that must be remembered (a wrong-code count) has been committed.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from lockerd import codes, throttle
from lockerd.clock import Clock
from lockerd.config import Config
from lockerd.config.schema import CompartmentConfig, DemoSection
from lockerd.domain import LIVE_INTENTS, Comp, Door, Event, Intent, Parcel, Purpose
from lockerd.errors import FlowError, StoreError
from lockerd.store import credentials
from lockerd.store._db import Database

JournalEntry = dict[str, Any]


@dataclass(frozen=True)
class Reservation:
    """A committed unlock intent: the compartment may now be pulsed."""

    intent_id: int
    compartment_id: str
    purpose: Purpose
    size: str
    parcel_id: int | None = None
    barcode: str | None = None


class Store:
    """The locker's durable state."""

    def __init__(self, db: Database, key: codes.DeviceKey, config: Config, clock: Clock):
        self.db = db
        self.key = key
        self.config = config
        self.clock = clock
        self._layout = {c.id: c for c in config.compartment}
        self._listeners: list[Callable[[list[JournalEntry]], None]] = []
        self._written: list[JournalEntry] = []
        self._lock = threading.Lock()

    # -- plumbing -------------------------------------------------------

    @classmethod
    def open(cls, config: Config, clock: Clock) -> Store:
        """Open (or create) the database and device key, and check they belong together."""
        db = Database(config.database_path)
        holds_codes = db.conn.execute(
            "SELECT EXISTS (SELECT 1 FROM parcels WHERE code_hmac IS NOT NULL)"
            " OR EXISTS (SELECT 1 FROM couriers)"
        ).fetchone()[0]
        key = codes.DeviceKey.load(config.key_path, create=not holds_codes)
        store = cls(db, key, config, clock)
        store._check_key_fingerprint()
        return store

    def _check_key_fingerprint(self) -> None:
        known = self.db.meta("key_fingerprint")
        if known is None:
            with self.db.transaction() as conn:
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('key_fingerprint', ?)",
                    (self.key.fingerprint,),
                )
        elif known != self.key.fingerprint:
            raise StoreError(
                f"{self.config.key_path} is not the device key this database was made with"
            )

    def subscribe(self, listener: Callable[[list[JournalEntry]], None]) -> None:
        """Call ``listener(events)`` after every commit that wrote journal events."""
        self._listeners.append(listener)

    def _event(self, kind: Event, data: dict[str, Any]) -> int:
        at = self.clock.time()
        seq = self.db.journal(at, kind, data)
        self._written.append({"seq": seq, "type": str(kind), "at": at, "data": data})
        return seq

    def _change(self) -> Any:
        return _Change(self)

    def close(self) -> None:
        self.db.close()

    # -- reads -----------------------------------------------------------

    def compartments(self) -> list[dict[str, Any]]:
        rows = self.db.conn.execute(
            "SELECT c.*, p.id AS parcel_id, p.barcode AS parcel_barcode, p.state AS parcel_state"
            " FROM compartments c LEFT JOIN parcels p"
            " ON p.compartment_id = c.id AND p.state IN ('stored','expired') ORDER BY c.id"
        ).fetchall()
        return [dict(r) for r in rows]

    def compartment(self, comp_id: str) -> dict[str, Any]:
        row = self.db.conn.execute("SELECT * FROM compartments WHERE id = ?", (comp_id,)).fetchone()
        if row is None:
            raise StoreError(f"no compartment {comp_id!r}")
        return dict(row)

    def parcel(self, parcel_id: int) -> dict[str, Any]:
        row = self.db.conn.execute("SELECT * FROM parcels WHERE id = ?", (parcel_id,)).fetchone()
        return {} if row is None else _public(dict(row))

    def parcels(self, state: Parcel | None = None) -> list[dict[str, Any]]:
        sql, args = "SELECT * FROM parcels", cast(tuple[str, ...], ())
        if state is not None:
            sql, args = sql + " WHERE state = ?", (str(state),)
        return [_public(dict(r)) for r in self.db.conn.execute(sql + " ORDER BY id", args)]

    def intent(self, intent_id: int) -> dict[str, Any]:
        row = self.db.conn.execute(
            "SELECT * FROM unlock_intents WHERE id = ?", (intent_id,)
        ).fetchone()
        return {} if row is None else dict(row)

    def intent_is_pending(self, comp_id: str, intent_id: int) -> bool:
        """True if ``intent_id`` is committed for ``comp_id`` and its door has not opened yet."""
        row = self.db.conn.execute(
            "SELECT 1 FROM unlock_intents WHERE id = ? AND compartment_id = ? AND state = ?",
            (intent_id, comp_id, Intent.PENDING),
        ).fetchone()
        return row is not None

    def live_intent(self, comp_id: str) -> dict[str, Any] | None:
        row = self.db.conn.execute(
            "SELECT * FROM unlock_intents WHERE compartment_id = ? AND state IN (?, ?, ?)",
            (comp_id, *LIVE_INTENTS),
        ).fetchone()
        return None if row is None else dict(row)

    def events(self, after: int = 0, limit: int = 1000) -> list[JournalEntry]:
        rows = self.db.conn.execute(
            "SELECT seq, at, type, data FROM journal WHERE seq > ? ORDER BY seq LIMIT ?",
            (after, limit),
        ).fetchall()
        return [{"seq": r[0], "at": r[1], "type": r[2], "data": json.loads(r[3])} for r in rows]

    def last_seq(self) -> int:
        """The newest journal sequence number (0 when the journal is empty)."""
        return int(self.db.conn.execute("SELECT COALESCE(MAX(seq), 0) FROM journal").fetchone()[0])

    def pickup_notices(self) -> list[dict[str, Any]]:
        rows = self.db.conn.execute(
            "SELECT n.parcel_id, n.seq, n.code, p.barcode, p.recipient, p.compartment_id,"
            " p.pickup_by FROM pickup_notices n JOIN parcels p ON p.id = n.parcel_id ORDER BY n.seq"
        ).fetchall()
        return [dict(r) for r in rows]

    def expected_size(self, barcode: str) -> str | None:
        """The announced size of an expected parcel; refuses a barcode already in the locker."""
        row = self.db.conn.execute(
            "SELECT state, size FROM parcels WHERE barcode = ? AND state IN ('expected','stored',"
            "'expired')",
            (barcode,),
        ).fetchone()
        if row is None:
            return None
        if row[0] != Parcel.EXPECTED:
            raise FlowError("already_stored", f"parcel {barcode} is already in the locker")
        return str(row[1]) if row[1] else None

    def throttle_state(self, scope: str) -> throttle.ThrottleState:
        return credentials.load_throttle(self.db.conn, scope, self.clock.time())

    # -- setup -----------------------------------------------------------

    def sync_layout(self) -> None:
        """Add configured compartments the database lacks; never drop one holding a parcel."""
        known = {r["id"]: r for r in self.compartments()}
        for comp_id, row in known.items():
            if comp_id not in self._layout and row["parcel_id"] is not None:
                raise StoreError(
                    f"compartment {comp_id} holds parcel {row['parcel_barcode']} but is not in "
                    f"{self.config.path}; put it back in the config or empty it first"
                )
        with self._change() as conn:
            for comp in self.config.compartment:
                if comp.id in known:
                    conn.execute(
                        "UPDATE compartments SET size = ? WHERE id = ?", (comp.size, comp.id)
                    )
                    continue
                conn.execute(
                    "INSERT INTO compartments (id, size, state, updated_at) VALUES (?, ?, ?, ?)",
                    (comp.id, comp.size, Comp.FREE, self.clock.time()),
                )

    def seed_demo(self, demo: DemoSection) -> None:
        """Insert the demo couriers and expected parcels that are not there yet."""
        with self._change() as conn:
            for courier in demo.couriers:
                exists = conn.execute("SELECT 1 FROM couriers WHERE id = ?", (courier.id,))
                if exists.fetchone():
                    continue
                conn.execute(
                    "INSERT INTO couriers (id, name, code_hmac, can_deliver, can_collect)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (
                        courier.id,
                        courier.name,
                        self.key.digest("courier", courier.code),
                        int("deliver" in courier.rights),
                        int("collect" in courier.rights),
                    ),
                )
                self._event(Event.COURIER_ADDED, {"courier": courier.id, "rights": courier.rights})
            for parcel in demo.expected_parcels:
                exists = conn.execute(
                    "SELECT 1 FROM parcels WHERE barcode = ?", (parcel.barcode,)
                ).fetchone()
                if not exists:
                    self._expect(conn, parcel.barcode, parcel.size, parcel.recipient)

    def _expect(self, conn: Any, barcode: str, size: str, recipient: str) -> None:
        now = self.clock.time()
        cursor = conn.execute(
            "INSERT INTO parcels (barcode, size, recipient, state, created_at, updated_at)"
            " VALUES (?, ?, ?, 'expected', ?, ?)",
            (barcode, size, recipient, now, now),
        )
        self._event(
            Event.PARCEL_EXPECTED,
            {"parcel": cursor.lastrowid, "barcode": barcode, "size": size},
        )

    def reconcile(self, doors: Mapping[str, Door]) -> list[dict[str, Any]]:
        """After a start: settle every compartment from the store and a fresh sensor read."""
        changes = []
        with self._change() as conn:
            interrupted = conn.execute(
                "SELECT id, compartment_id, purpose FROM unlock_intents WHERE state IN (?, ?, ?)",
                LIVE_INTENTS,
            ).fetchall()
            pending = {row[1]: row for row in interrupted}
            conn.execute(
                "UPDATE unlock_intents SET state = ?, updated_at = ? WHERE state IN (?, ?, ?)",
                (Intent.INTERRUPTED, self.clock.time(), *LIVE_INTENTS),
            )
            for row in self.compartments():
                door = doors.get(row["id"], Door.UNKNOWN)
                target, reason = _reconciled(row, door, row["id"] in pending)
                self._set(conn, row["id"], target, reason, door)
                if target != row["state"]:
                    change = {"compartment": row["id"], "from": row["state"], "to": str(target)}
                    change |= {"door": str(door), "reason": reason}
                    self._event(Event.RECONCILED, change)
                    changes.append(change)
            self._event(Event.STARTED, {"changed": len(changes), "interrupted": len(interrupted)})
        return changes

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
            free = {
                r[0]
                for r in conn.execute("SELECT id FROM compartments WHERE state = 'free'")
                if r[0] not in set(unavailable)
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

    def _intend(
        self,
        conn: Any,
        comp: CompartmentConfig,
        purpose: Purpose,
        actor: str,
        *,
        barcode: str | None = None,
        size: str | None = None,
        parcel_id: int | None = None,
    ) -> int:
        now = self.clock.time()
        cursor = conn.execute(
            "INSERT INTO unlock_intents (compartment_id, purpose, state, parcel_id, barcode, size,"
            " actor, created_at, updated_at) VALUES (?, ?, 'pending', ?, ?, ?, ?, ?, ?)",
            (comp.id, purpose, parcel_id, barcode, size, actor, now, now),
        )
        self._set(conn, comp.id, Comp.RESERVED)
        intent_id = int(cursor.lastrowid or 0)
        self._event(
            Event.UNLOCK_INTENT,
            {"intent": intent_id, "compartment": comp.id, "purpose": str(purpose), "actor": actor},
        )
        return intent_id

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

    def door_closed(self, comp_id: str) -> dict[str, Any]:
        """A debounced close: completes the live intent (stores or hands over a parcel)."""
        with self._change() as conn:
            conn.execute("UPDATE compartments SET door = 'closed' WHERE id = ?", (comp_id,))
            self._event(Event.DOOR_CLOSED, {"compartment": comp_id})
            intent = self.live_intent(comp_id)
            if intent is None or intent["state"] == Intent.PENDING:
                return {"completed": None}
            after_alarm = intent["alarm"] is not None
            self._finish(conn, intent["id"], Intent.DONE)
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
        pickup_by = now + self.config.pickup.hold_hours * 3600
        row = conn.execute(
            "SELECT id, recipient FROM parcels WHERE barcode = ? AND state = 'expected'",
            (intent["barcode"],),
        ).fetchone()
        fields = (intent["compartment_id"], self.key.digest("pickup", code), intent["actor"])
        if row is None:
            parcel_id = conn.execute(
                "INSERT INTO parcels (barcode, size, state, compartment_id, code_hmac, courier_id,"
                " pickup_by, stored_at, created_at, updated_at)"
                " VALUES (?, ?, 'stored', ?, ?, ?, ?, ?, ?, ?)",
                (intent["barcode"], intent["size"], *fields, pickup_by, now, now, now),
            ).lastrowid
            recipient = ""
        else:
            parcel_id, recipient = row[0], row[1]
            conn.execute(
                "UPDATE parcels SET state = 'stored', compartment_id = ?, code_hmac = ?,"
                " courier_id = ?, pickup_by = ?, stored_at = ?, updated_at = ? WHERE id = ?",
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
        conn.execute(
            "INSERT INTO pickup_notices (parcel_id, seq, code) VALUES (?, ?, ?)",
            (parcel_id, seq, code),
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
        self._event(
            Event.PARCEL_COLLECTED if resident else Event.PARCEL_RETURNED,
            {
                "parcel": intent["parcel_id"],
                "compartment": intent["compartment_id"],
                "actor": intent["actor"],
            },
        )

    # -- pickup ----------------------------------------------------------

    def reserve_for_pickup(self, code: str) -> Reservation:
        """Check a typed code under throttling; on a match commit the pickup intent."""
        now = self.clock.time()
        rules = self.config.pickup.throttle
        refusal: FlowError | None = None
        with self._change() as conn:
            state = credentials.load_throttle(conn, "pickup", now)
            credentials.refuse_if_blocked(state, now, "code")
            row = conn.execute(
                "SELECT id, barcode, state, compartment_id FROM parcels"
                " WHERE code_hmac = ? AND state IN ('stored','expired')",
                (self.key.digest("pickup", code),),
            ).fetchone()
            if row is None:
                state = throttle.after_failure(state, now, rules)
                credentials.save_throttle(conn, "pickup", state)
                self._event(
                    Event.PICKUP_DENIED, {"reason": "wrong_code", "failures": state.failures}
                )
                if state.locked_out:
                    self._event(Event.PICKUP_LOCKED_OUT, {"until": state.blocked_until})
                refusal = credentials.wrong_code_error(state, now, rules, "code")
            else:
                credentials.save_throttle(conn, "pickup", throttle.ThrottleState())
                refusal = self._pickup_refusal(conn, row)
                if refusal is None:
                    comp = self._layout[row["compartment_id"]]
                    intent_id = self._intend(
                        conn,
                        comp,
                        Purpose.PICKUP,
                        "resident",
                        barcode=row["barcode"],
                        size=comp.size,
                        parcel_id=row["id"],
                    )
        if refusal is not None:
            raise refusal
        return Reservation(intent_id, comp.id, Purpose.PICKUP, comp.size, row["id"], row["barcode"])

    def _pickup_refusal(self, conn: Any, parcel: Any) -> FlowError | None:
        comp_state = self.compartment(parcel["compartment_id"])["state"]
        reason = None
        if parcel["state"] == Parcel.EXPIRED:
            reason = FlowError("parcel_expired", "this parcel's pickup time has run out")
        elif comp_state == Comp.OUT_OF_SERVICE:
            reason = FlowError("compartment_out_of_order", "the compartment is out of order")
        elif comp_state not in (Comp.OCCUPIED, Comp.NEEDS_CHECK):
            reason = FlowError("pickup_in_progress", "this parcel's door is already opening")
        if reason is not None:
            self._event(Event.PICKUP_DENIED, {"reason": reason.code, "parcel": parcel["id"]})
        return reason

    def collectable(self) -> list[dict[str, Any]]:
        """Expired parcels still in the locker, for a courier with the right to collect."""
        rows = self.db.conn.execute(
            "SELECT id, barcode, compartment_id, pickup_by FROM parcels WHERE state = 'expired'"
            " ORDER BY pickup_by"
        ).fetchall()
        return [dict(r) for r in rows]

    def reserve_for_collect(self, courier: str, parcel_id: int) -> Reservation:
        """Commit the intent to open an expired parcel's compartment for a courier."""
        with self._change() as conn:
            row = conn.execute(
                "SELECT id, barcode, state, compartment_id FROM parcels WHERE id = ?", (parcel_id,)
            ).fetchone()
            if row is None or row["state"] != Parcel.EXPIRED:
                raise FlowError(
                    "not_collectable", f"parcel {parcel_id} is not an expired parcel here"
                )
            comp_state = self.compartment(row["compartment_id"])["state"]
            if comp_state == Comp.OUT_OF_SERVICE:
                raise FlowError("compartment_out_of_order", "the compartment is out of order")
            if comp_state not in (Comp.OCCUPIED, Comp.NEEDS_CHECK):
                raise FlowError("pickup_in_progress", "this parcel's door is already opening")
            comp = self._layout[row["compartment_id"]]
            intent_id = self._intend(
                conn,
                comp,
                Purpose.COLLECT,
                courier,
                barcode=row["barcode"],
                size=comp.size,
                parcel_id=row["id"],
            )
        return Reservation(
            intent_id, comp.id, Purpose.COLLECT, comp.size, row["id"], row["barcode"]
        )

    def courier_login(self, code: str) -> credentials.Courier:
        now = self.clock.time()
        rules = self.config.pickup.throttle
        with self._change() as conn:
            state = credentials.load_throttle(conn, "courier", now)
            credentials.refuse_if_blocked(state, now, "courier code")
            courier = credentials.courier_by_code(conn, self.key.digest("courier", code))
            if courier is None:
                state = throttle.after_failure(state, now, rules)
                self._event(Event.COURIER_DENIED, {"failures": state.failures})
            else:
                state = throttle.ThrottleState()
                self._event(Event.COURIER_LOGIN, {"courier": courier.id})
            credentials.save_throttle(conn, "courier", state)
        if courier is None:
            raise credentials.wrong_code_error(state, now, rules, "courier code")
        return courier

    # -- time ------------------------------------------------------------

    def expire_due(self) -> list[int]:
        """Mark stored parcels past their pickup deadline as expired."""
        now = self.clock.time()
        with self._change() as conn:
            due = conn.execute(
                "SELECT id, barcode, compartment_id FROM parcels WHERE state = 'stored'"
                " AND pickup_by <= ?",
                (now,),
            ).fetchall()
            for parcel in due:
                conn.execute(
                    "UPDATE parcels SET state = 'expired', updated_at = ? WHERE id = ?",
                    (now, parcel[0]),
                )
                conn.execute("DELETE FROM pickup_notices WHERE parcel_id = ?", (parcel[0],))
                self._event(
                    Event.PARCEL_EXPIRED,
                    {"parcel": parcel[0], "barcode": parcel[1], "compartment": parcel[2]},
                )
        return [p[0] for p in due]

    # -- board health ----------------------------------------------------

    def board_health(self, board: str, online: bool) -> None:
        with self._change():
            self._event(Event.BOARD_ONLINE if online else Event.BOARD_OFFLINE, {"board": board})

    # -- helpers ---------------------------------------------------------

    def _live(self, conn: Any, intent_id: int) -> dict[str, Any]:
        intent = self.intent(intent_id)
        if intent.get("state") not in LIVE_INTENTS:
            raise StoreError(f"unlock intent {intent_id} is not live ({intent.get('state')})")
        return intent

    def _finish(self, conn: Any, intent_id: int, state: Intent) -> None:
        conn.execute(
            "UPDATE unlock_intents SET state = ?, updated_at = ? WHERE id = ?",
            (state, self.clock.time(), intent_id),
        )

    def _set(
        self,
        conn: Any,
        comp_id: str,
        state: Comp,
        reason: str | None = None,
        door: Door | None = None,
    ) -> None:
        conn.execute(
            "UPDATE compartments SET state = ?, reason = ?, door = COALESCE(?, door),"
            " updated_at = ? WHERE id = ?",
            (state, reason, door, self.clock.time(), comp_id),
        )


class _Change:
    """One transaction; the journal events it wrote go to subscribers after COMMIT."""

    def __init__(self, store: Store):
        self._store = store
        self._tx = store.db.transaction()

    def __enter__(self) -> Any:
        self._store._written = []
        return self._tx.__enter__()

    def __exit__(self, *exc: Any) -> None:
        written, self._store._written = self._store._written, []
        self._tx.__exit__(*exc)
        if exc[0] is None and written:
            for listener in self._store._listeners:
                listener(written)


def _reconciled(row: dict[str, Any], door: Door, interrupted: bool) -> tuple[Comp, str | None]:
    """Where a compartment stands after a restart (DESIGN.md invariant 3)."""
    state = Comp(row["state"])
    if state in (Comp.OUT_OF_SERVICE, Comp.NEEDS_CHECK):
        return state, row["reason"]
    if interrupted or state in (Comp.RESERVED, Comp.OPEN):
        return Comp.NEEDS_CHECK, "interrupted_unlock"
    if door == Door.OPEN:
        return Comp.NEEDS_CHECK, "open_at_start"
    return state, None


def _public(parcel: dict[str, Any]) -> dict[str, Any]:
    parcel.pop("code_hmac", None)
    return parcel
