"""Access: pickup and courier codes under throttling, and expired-parcel collection."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Any

from lockerd import custody as rules
from lockerd import throttle
from lockerd.domain import Event, Parcel, Purpose
from lockerd.errors import FlowError
from lockerd.qrtoken import Claims
from lockerd.store import credentials
from lockerd.store._context import Context
from lockerd.store.intents import Reservation, parcel_door
from lockerd.store.tables import Tables


class AccessRepo:
    """Codes checked under throttling; each match commits its unlock intent."""

    def __init__(self, context: Context, tables: Tables):
        self._c = context
        self._compartments = tables.compartments
        self._intents = tables.intents
        self._throttles = tables.throttles

    def throttle_state(self, scope: str) -> throttle.ThrottleState:
        return self._throttles.state(scope)

    # -- pickup ----------------------------------------------------------

    def reserve_for_pickup(self, code: str, unreachable: Iterable[str] = ()) -> Reservation:
        """Check a typed code under throttling; on a match commit the pickup intent.

        ``unreachable``: compartments whose boards are silent now (their doors
        are not pulsed; the resident is told to come back).
        """
        wall = self._c.clock.time()
        refusal: FlowError | None = None
        reservation: Reservation | None = None
        with self._c.change() as conn:
            now = self._c.throttle_now()
            state = self._throttles.load(conn, "pickup", now)
            refusal = credentials.blocked_error(state, now, "code", wall)
            if refusal is None:
                refusal, reservation = self._check_code(conn, code, state, now, wall, unreachable)
        if reservation is None:
            assert refusal is not None
            raise refusal
        return reservation

    def _check_code(
        self,
        conn: sqlite3.Connection,
        code: str,
        state: throttle.ThrottleState,
        now: float,
        wall: float,
        unreachable: Iterable[str],
    ) -> tuple[FlowError | None, Reservation | None]:
        """A typed code the throttle lets through: the refusal, or the committed intent."""
        limits = self._c.config.pickup.throttle
        row = conn.execute(
            "SELECT id, barcode, state, compartment_id, pickup_group FROM parcels"
            " WHERE code_hmac = ? AND state IN ('stored','expired')",
            (self._c.key.digest("pickup", code),),
        ).fetchone()
        if row is None:
            state = self._failed(conn, state, now, wall, "wrong_code")
            return credentials.wrong_code_error(state, now, limits, "code", wall), None
        # A right code is no reset: only a completed pickup ends the streak
        # (CustodyRepo._hand_over), or a refused one would hand out fresh tries.
        refusal = self._pickup_refusal(conn, row, unreachable)
        if refusal is not None:
            return refusal, None
        return None, self._intend_for(conn, row, Purpose.PICKUP, "resident")

    def _intend_for(
        self, conn: sqlite3.Connection, parcel: Any, purpose: Purpose, actor: str
    ) -> Reservation:
        """Commit the intent to open the compartment that holds ``parcel``."""
        comp = self._c.layout[parcel["compartment_id"]]
        intent_id = self._intents.create(
            conn,
            comp,
            purpose,
            actor,
            barcode=parcel["barcode"],
            size=comp.size,
            parcel_id=parcel["id"],
        )
        return Reservation(
            intent_id,
            comp.id,
            purpose,
            comp.size,
            parcel["id"],
            parcel["barcode"],
            parcel["pickup_group"],
        )

    def _pickup_refusal(
        self, conn: sqlite3.Connection, parcel: Any, unreachable: Iterable[str] = ()
    ) -> FlowError | None:
        door = self._door_refusal(parcel["compartment_id"], unreachable)
        reason = rules.pickup_refusal(door, Parcel(parcel["state"]))
        if reason is not None:
            self._c.event(Event.PICKUP_DENIED, {"reason": reason.code, "parcel": parcel["id"]})
        return reason

    def reserve_group_next(
        self, group: str, tried: Iterable[int], unreachable: Iterable[str] = ()
    ) -> Reservation | None:
        """The next stored parcel of ``group`` (not in ``tried``) whose door can open now,
        its pickup intent committed: the same resident, whose code was checked once, takes
        each of their parcels in turn. None when no other can be opened now."""
        with self._c.change() as conn:
            row = self._group_next(conn, group, tried, unreachable)
            return None if row is None else self._intend_for(conn, row, Purpose.PICKUP, "resident")

    def group_next(
        self, group: str, tried: Iterable[int], unreachable: Iterable[str] = ()
    ) -> str | None:
        """The compartment :meth:`reserve_group_next` would open now, if any (nothing
        committed: the resident is asked first)."""
        row = self._group_next(self._c.conn, group, tried, unreachable)
        return None if row is None else str(row["compartment_id"])

    def _group_next(
        self, conn: sqlite3.Connection, group: str, tried: Iterable[int], unreachable: Iterable[str]
    ) -> Any:
        tried, unreachable = set(tried), set(unreachable)
        rows = conn.execute(
            "SELECT id, barcode, state, compartment_id, pickup_group FROM parcels"
            " WHERE pickup_group = ? AND state = 'stored' ORDER BY id",
            (group,),
        ).fetchall()
        for row in rows:
            if (
                row["id"] not in tried
                and self._door_refusal(row["compartment_id"], unreachable) is None
            ):
                return row
        return None

    def group_size(self, group: str) -> int:
        """How many parcels of ``group`` are stored now."""
        (count,) = self._c.conn.execute(
            "SELECT COUNT(*) FROM parcels WHERE pickup_group = ? AND state = 'stored'", (group,)
        ).fetchone()
        return int(count)

    def reserve_for_reopen(
        self, parcel_id: int, unreachable: Iterable[str] = (), grace: float | None = None
    ) -> Reservation:
        """Commit the intent to open a just-collected parcel's door once more for its
        resident (``pickup.reopened``), within ``grace`` seconds of its pickup (by default
        ``pickup.reopen_grace_s``; longer for a resident who asked for more time)."""
        with self._c.change() as conn:
            row = conn.execute(
                "SELECT id, barcode, state, compartment_id, closed_at, pickup_group FROM parcels"
                " WHERE id = ?",
                (parcel_id,),
            ).fetchone()
            if row is None:
                raise FlowError("reopen_expired", "the time to open this door again is over")
            refusal = self._reopen_refusal(conn, row, unreachable, grace)
            if refusal is not None:
                raise refusal
            reservation = self._intend_for(conn, row, Purpose.PICKUP, "resident")
            self._c.event(Event.PICKUP_REOPENED, _reopened(reservation))
        return reservation

    def _reopen_refusal(
        self,
        conn: sqlite3.Connection,
        parcel: Any,
        unreachable: Iterable[str],
        grace: float | None = None,
    ) -> FlowError | None:
        comp_id = parcel["compartment_id"]
        if comp_id in set(unreachable):
            return rules.unreachable(comp_id, self._c.config.locker.support)
        (pickups,) = conn.execute(
            "SELECT COUNT(*) FROM unlock_intents WHERE parcel_id = ? AND purpose = 'pickup'"
            " AND state != 'failed'",
            (parcel["id"],),
        ).fetchone()
        if grace is None:
            grace = self._c.config.pickup.reopen_grace_s
        state = self._compartments.get(comp_id).state
        now = self._c.clock.time()
        return rules.reopen_refusal(
            Parcel(parcel["state"]), parcel["closed_at"], now, grace, pickups, state
        )

    def reserve_for_token(self, claims: Claims, unreachable: Iterable[str] = ()) -> Reservation:
        """Commit the pickup intent for a verified QR token and spend the token with it."""
        refusal: FlowError | None = None
        reservation: Reservation | None = None
        with self._c.change() as conn:
            row = conn.execute(
                "SELECT id, barcode, state, compartment_id, pickup_group FROM parcels"
                " WHERE barcode = ? AND state IN ('stored','expired')",
                (claims.parcel,),
            ).fetchone()
            refusal = self._token_refusal(conn, claims, row, unreachable)
            if refusal is None:
                reservation = self._intend_for(conn, row, Purpose.PICKUP, "resident")
                conn.execute(
                    "INSERT INTO used_tokens (jti, parcel_id, expires, used_at)"
                    " VALUES (?, ?, ?, ?)",
                    (claims.token_id, row["id"], claims.expires, self._c.clock.time()),
                )
        if reservation is None:
            assert refusal is not None
            raise refusal
        return reservation

    def _token_refusal(
        self, conn: sqlite3.Connection, claims: Claims, parcel: Any, unreachable: Iterable[str]
    ) -> FlowError | None:
        """Why a verified token's parcel is not handed out now (journalled), if it is not."""
        used = conn.execute("SELECT 1 FROM used_tokens WHERE jti = ?", (claims.token_id,))
        refusal = None
        if used.fetchone():
            refusal = FlowError("token_used", "this QR code has already been used")
        elif parcel is None:
            refusal = FlowError("parcel_not_here", "that parcel is not in this locker")
        if refusal is not None:
            self._c.event(Event.PICKUP_DENIED, {"reason": refusal.code, "by": "qr"})
            return refusal
        return self._pickup_refusal(conn, parcel, unreachable)  # journals its own

    def forged_token(self) -> FlowError:
        """Count a forged QR code as a wrong code; return the error to answer with."""
        wall, limits = self._c.clock.time(), self._c.config.pickup.throttle
        with self._c.change() as conn:
            now = self._c.throttle_now()
            state = self._throttles.load(conn, "pickup", now)
            blocked = credentials.blocked_error(state, now, "code", wall)
            if blocked is None:
                state = self._failed(conn, state, now, wall, "token_invalid")
        if blocked is not None:
            return blocked
        if state.locked_out:
            return credentials.wrong_code_error(state, now, limits, "code", wall)
        return FlowError(
            "token_invalid",
            "this QR code was not issued for pickups here",
            attempts_left=throttle.attempts_left(state, now, limits),
        )

    def _failed(
        self,
        conn: sqlite3.Connection,
        state: throttle.ThrottleState,
        now: float,
        wall: float,
        reason: str,
    ) -> throttle.ThrottleState:
        """Count a failed pickup attempt (``pickup.denied``); the new state."""
        return self._throttles.code_failed(conn, state, now, wall, Event.PICKUP_DENIED, reason)

    def _door_refusal(self, comp_id: str, unreachable: Iterable[str] = ()) -> FlowError | None:
        """Why the door of a compartment holding a parcel cannot be opened now, if it cannot."""
        if comp_id in set(unreachable):
            return rules.unreachable(comp_id, self._c.config.locker.support)
        return rules.door_refusal(self._compartments.get(comp_id).state)

    def reserve_for_collect(
        self,
        courier: str,
        parcel_id: int,
        unreachable: Iterable[str] = (),
        carrier: str | None = None,
    ) -> Reservation:
        """Commit the intent to open an expired parcel's compartment for a courier (of
        ``carrier``: only a parcel its couriers brought, or nobody's carrier's)."""
        with self._c.change() as conn:
            row = conn.execute(
                "SELECT id, barcode, state, compartment_id, carrier, pickup_group FROM parcels"
                " WHERE id = ?",
                (parcel_id,),
            ).fetchone()
            if row is None or row["state"] != Parcel.EXPIRED:
                raise FlowError(
                    "not_collectable", f"parcel {parcel_id} is not an expired parcel here"
                )
            refusal = None if carrier is None else rules.collect_refusal(carrier, row["carrier"])
            refusal = refusal or self._door_refusal(row["compartment_id"], unreachable)
            if refusal is not None:
                raise refusal
            return self._intend_for(conn, row, Purpose.COLLECT, courier)

    def courier_login(self, code: str) -> credentials.Courier:
        wall, limits = self._c.clock.time(), self._c.config.pickup.throttle
        courier: credentials.Courier | None = None
        with self._c.change() as conn:
            now = self._c.throttle_now()
            state = self._throttles.load(conn, "courier", now)
            blocked = credentials.blocked_error(state, now, "courier code", wall)
            if blocked is None:
                courier = credentials.courier_by_code(conn, self._c.key.digest("courier", code))
                if courier is None:
                    state = throttle.after_failure(state, now, limits)
                    self._c.event(Event.COURIER_DENIED, {"failures": state.failures})
                else:
                    state = throttle.after_pickup(state, now, limits)
                    self._c.event(Event.COURIER_LOGIN, {"courier": courier.id})
                credentials.save_throttle(conn, "courier", state)
        if blocked is not None:
            raise blocked
        if courier is None:
            raise credentials.wrong_code_error(state, now, limits, "courier code", wall)
        return courier


def _reopened(reservation: Reservation) -> dict[str, Any]:
    """``pickup.reopened``'s data: the collected parcel whose door opens once more."""
    r = reservation
    return parcel_door(r.parcel_id, r.barcode, r.compartment_id, r.intent_id)
