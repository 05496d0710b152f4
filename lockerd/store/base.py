"""The store's plumbing: transactions that publish their journal events, reads, shared helpers.

Methods are blocking and called from the store thread only (or inline in
tests). Each operation returns plain data; refusals raise FlowError after
anything that must be remembered (a wrong-code count) has been committed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from lockerd import codes, throttle
from lockerd.clock import Clock
from lockerd.config import Config
from lockerd.config.schema import CompartmentConfig
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


#: The length of every code issued before parcels recorded theirs (the old fixed default).
LEGACY_CODE_LENGTH = 8


class StoreBase:
    """State and helpers every group of operations shares."""

    def __init__(self, db: Database, key: codes.DeviceKey, config: Config, clock: Clock):
        self.db = db
        self.key = key
        self.config = config
        self.clock = clock
        self._layout = {c.id: c for c in config.compartment}
        self._listeners: list[Callable[[list[JournalEntry]], None]] = []
        self._written: list[JournalEntry] = []
        #: Whether pickup codes wait (sealed) for someone to deliver them: the back
        #: office, or the demo's recipient messages. Without either, none is kept.
        self.keep_notices = True
        #: The throttle's time for this run: the wall clock that never jumps ahead.
        self._steady = throttle.SteadyTime()

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
        notices = [dict(r) for r in rows]
        for notice in notices:
            notice["code"] = self.key.unseal(notice["code"], notice["parcel_id"])
        return notices

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

    def code_lengths(self) -> list[int]:
        """The pickup-code lengths the keypad takes: the configured one, and any that a
        parcel still in the locker was issued with (a length changed since, by an
        upgrade that derives it, a grown bank or another throttle). A code from before
        lengths were recorded counts as the old default's 8 digits."""
        rows = self.db.conn.execute(
            "SELECT DISTINCT code_length FROM parcels"
            " WHERE state IN ('stored','expired') AND code_hmac IS NOT NULL"
        ).fetchall()
        lengths = {self.config.pickup.code_length}
        lengths.update(LEGACY_CODE_LENGTH if r[0] is None else int(r[0]) for r in rows)
        return sorted(lengths)

    def throttle_state(self, scope: str) -> throttle.ThrottleState:
        return credentials.load_throttle(self.db.conn, scope)

    def _throttle_now(self) -> float:
        """The throttle's time now (:class:`lockerd.throttle.SteadyTime`)."""
        return self._steady.now(self.clock.time(), self.clock.monotonic())

    def _load_throttle(self, conn: Any, scope: str, now: float) -> throttle.ThrottleState:
        """A scope's throttle state, bounded at ``now``; a bound that bit is written back
        (in ``conn``'s transaction), so the wait it leaves runs out instead of sliding."""
        stored = credentials.load_throttle(conn, scope)
        state = throttle.bounded(stored, now, self.config.pickup.throttle)
        if state != stored:
            credentials.save_throttle(conn, scope, state)
        return state

    # -- helpers ---------------------------------------------------------

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

    def _expect(
        self,
        conn: Any,
        barcode: str,
        size: str | None,
        recipient: str,
        hold_hours: float | None = None,
    ) -> None:
        now = self.clock.time()
        cursor = conn.execute(
            "INSERT INTO parcels (barcode, size, recipient, hold_hours, state, created_at,"
            " updated_at) VALUES (?, ?, ?, ?, 'expected', ?, ?)",
            (barcode, size, recipient, hold_hours, now, now),
        )
        self._event(
            Event.PARCEL_EXPECTED,
            {"parcel": cursor.lastrowid, "barcode": barcode, "size": size},
        )

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

    def __init__(self, store: StoreBase):
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


def _public(parcel: dict[str, Any]) -> dict[str, Any]:
    parcel.pop("code_hmac", None)
    return parcel
