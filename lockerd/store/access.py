"""Access: pickup and courier codes under throttling, expired-parcel collection, deadlines."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from lockerd import throttle
from lockerd.domain import Comp, Event, Parcel, Purpose
from lockerd.errors import FlowError
from lockerd.qrtoken import Claims
from lockerd.store import credentials
from lockerd.store.base import Reservation, StoreBase


class Access(StoreBase):
    # -- pickup ----------------------------------------------------------

    def reserve_for_pickup(self, code: str, unreachable: Iterable[str] = ()) -> Reservation:
        """Check a typed code under throttling; on a match commit the pickup intent.

        ``unreachable``: compartments whose boards are silent now (their doors
        are not pulsed; the resident is told to come back).
        """
        wall = self.clock.time()
        refusal: FlowError | None = None
        reservation: Reservation | None = None
        with self._change() as conn:
            now = self._throttle_now()
            state = self._load_throttle(conn, "pickup", now)
            refusal = credentials.blocked_error(state, now, "code", wall)
            if refusal is None:
                refusal, reservation = self._check_code(conn, code, state, now, wall, unreachable)
        if reservation is None:
            assert refusal is not None
            raise refusal
        return reservation

    def _check_code(
        self,
        conn: Any,
        code: str,
        state: throttle.ThrottleState,
        now: float,
        wall: float,
        unreachable: Iterable[str],
    ) -> tuple[FlowError | None, Reservation | None]:
        """A typed code the throttle lets through: the refusal, or the committed intent."""
        rules = self.config.pickup.throttle
        row = conn.execute(
            "SELECT id, barcode, state, compartment_id FROM parcels"
            " WHERE code_hmac = ? AND state IN ('stored','expired')",
            (self.key.digest("pickup", code),),
        ).fetchone()
        if row is None:
            state = throttle.after_failure(state, now, rules)
            credentials.save_throttle(conn, "pickup", state)
            self._event(Event.PICKUP_DENIED, {"reason": "wrong_code", "failures": state.failures})
            if state.locked_out:
                self._locked_out_event(state, now, wall)
            return credentials.wrong_code_error(state, now, rules, "code", wall), None
        # A right code is no reset: only a completed pickup ends the streak
        # (Custody._hand_over), or a refused one would hand out fresh tries.
        refusal = self._pickup_refusal(conn, row, unreachable)
        if refusal is not None:
            return refusal, None
        return None, self._intend_for(conn, row, Purpose.PICKUP, "resident")

    def _intend_for(self, conn: Any, parcel: Any, purpose: Purpose, actor: str) -> Reservation:
        """Commit the intent to open the compartment that holds ``parcel``."""
        comp = self._layout[parcel["compartment_id"]]
        intent_id = self._intend(
            conn,
            comp,
            purpose,
            actor,
            barcode=parcel["barcode"],
            size=comp.size,
            parcel_id=parcel["id"],
        )
        return Reservation(intent_id, comp.id, purpose, comp.size, parcel["id"], parcel["barcode"])

    def _pickup_refusal(
        self, conn: Any, parcel: Any, unreachable: Iterable[str] = ()
    ) -> FlowError | None:
        reason = self._door_refusal(parcel["compartment_id"], unreachable)
        if parcel["state"] == Parcel.EXPIRED:
            reason = FlowError("parcel_expired", "this parcel's pickup time has run out")
        if reason is not None:
            self._event(Event.PICKUP_DENIED, {"reason": reason.code, "parcel": parcel["id"]})
        return reason

    def reserve_for_token(self, claims: Claims, unreachable: Iterable[str] = ()) -> Reservation:
        """Commit the pickup intent for a verified QR token and spend the token with it."""
        refusal: FlowError | None = None
        reservation: Reservation | None = None
        with self._change() as conn:
            used = conn.execute("SELECT 1 FROM used_tokens WHERE jti = ?", (claims.token_id,))
            row = conn.execute(
                "SELECT id, barcode, state, compartment_id FROM parcels"
                " WHERE barcode = ? AND state IN ('stored','expired')",
                (claims.parcel,),
            ).fetchone()
            if used.fetchone():
                refusal = FlowError("token_used", "this QR code has already been used")
            elif row is None:
                refusal = FlowError("parcel_not_here", "that parcel is not in this locker")
            if refusal is not None:
                self._event(Event.PICKUP_DENIED, {"reason": refusal.code, "by": "qr"})
            else:
                # writes its own pickup.denied
                refusal = self._pickup_refusal(conn, row, unreachable)
            if refusal is None:
                reservation = self._intend_for(conn, row, Purpose.PICKUP, "resident")
                conn.execute(
                    "INSERT INTO used_tokens (jti, parcel_id, expires, used_at)"
                    " VALUES (?, ?, ?, ?)",
                    (claims.token_id, row["id"], claims.expires, self.clock.time()),
                )
        if reservation is None:
            assert refusal is not None
            raise refusal
        return reservation

    def forged_token(self) -> FlowError:
        """Count a forged QR code as a wrong code; return the error to answer with."""
        wall, rules = self.clock.time(), self.config.pickup.throttle
        with self._change() as conn:
            now = self._throttle_now()
            state = self._load_throttle(conn, "pickup", now)
            blocked = credentials.blocked_error(state, now, "code", wall)
            if blocked is None:
                state = throttle.after_failure(state, now, rules)
                credentials.save_throttle(conn, "pickup", state)
                self._event(
                    Event.PICKUP_DENIED, {"reason": "token_invalid", "failures": state.failures}
                )
                if state.locked_out:
                    self._locked_out_event(state, now, wall)
        if blocked is not None:
            return blocked
        if state.locked_out:
            return credentials.wrong_code_error(state, now, rules, "code", wall)
        return FlowError(
            "token_invalid",
            "this QR code was not issued for pickups here",
            attempts_left=throttle.attempts_left(state, now, rules),
        )

    def _locked_out_event(self, state: throttle.ThrottleState, now: float, wall: float) -> None:
        """``pickup.locked_out`` with the wall-clock time the lock-out ends."""
        self._event(Event.PICKUP_LOCKED_OUT, {"until": wall + throttle.blocked_for(state, now)})

    def _door_refusal(self, comp_id: str, unreachable: Iterable[str] = ()) -> FlowError | None:
        """Why the door of a compartment holding a parcel cannot be opened now, if it cannot."""
        if comp_id in set(unreachable):
            support = self.config.locker.support
            return FlowError(
                "compartment_unreachable",
                f"the door of {comp_id} cannot be opened just now; please try again later"
                + (f", or call {support}" if support else ""),
                support=support,
            )
        state = self.compartment(comp_id)["state"]
        if state == Comp.OUT_OF_SERVICE:
            return FlowError("compartment_out_of_order", "the compartment is out of order")
        if state not in (Comp.OCCUPIED, Comp.NEEDS_CHECK):
            return FlowError("pickup_in_progress", "this parcel's door is already opening")
        return None

    def collectable(self) -> list[dict[str, Any]]:
        """Expired parcels still in the locker, for a courier with the right to collect."""
        rows = self.db.conn.execute(
            "SELECT id, barcode, compartment_id, pickup_by FROM parcels WHERE state = 'expired'"
            " ORDER BY pickup_by"
        ).fetchall()
        return [dict(r) for r in rows]

    def reserve_for_collect(
        self, courier: str, parcel_id: int, unreachable: Iterable[str] = ()
    ) -> Reservation:
        """Commit the intent to open an expired parcel's compartment for a courier."""
        with self._change() as conn:
            row = conn.execute(
                "SELECT id, barcode, state, compartment_id FROM parcels WHERE id = ?", (parcel_id,)
            ).fetchone()
            if row is None or row["state"] != Parcel.EXPIRED:
                raise FlowError(
                    "not_collectable", f"parcel {parcel_id} is not an expired parcel here"
                )
            refusal = self._door_refusal(row["compartment_id"], unreachable)
            if refusal is not None:
                raise refusal
            return self._intend_for(conn, row, Purpose.COLLECT, courier)

    def courier_login(self, code: str) -> credentials.Courier:
        wall, rules = self.clock.time(), self.config.pickup.throttle
        courier: credentials.Courier | None = None
        with self._change() as conn:
            now = self._throttle_now()
            state = self._load_throttle(conn, "courier", now)
            blocked = credentials.blocked_error(state, now, "courier code", wall)
            if blocked is None:
                courier = credentials.courier_by_code(conn, self.key.digest("courier", code))
                if courier is None:
                    state = throttle.after_failure(state, now, rules)
                    self._event(Event.COURIER_DENIED, {"failures": state.failures})
                else:
                    state = throttle.after_pickup(state, now, rules)
                    self._event(Event.COURIER_LOGIN, {"courier": courier.id})
                credentials.save_throttle(conn, "courier", state)
        if blocked is not None:
            raise blocked
        if courier is None:
            raise credentials.wrong_code_error(state, now, rules, "courier code", wall)
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
