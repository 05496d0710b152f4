"""Sending and returning at the locker: send codes under the pickup codes' wrong-code
budget, the deposit's unlock intent, and couriers collecting what their carrier takes."""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from lockerd import custody as rules
from lockerd import throttle
from lockerd.domain import Event, Parcel, Purpose
from lockerd.errors import FlowError, Refused
from lockerd.sendcode import SendClaims
from lockerd.store import credentials
from lockerd.store._context import Context
from lockerd.store.intents import Reservation
from lockerd.store.tables import Tables

T = TypeVar("T")
Check = Callable[[sqlite3.Connection], FlowError | None]

#: Refusals that are no wrong code: the keypad's own back-off, and a genuine code the
#: locker holds while a deposit it cut short waits for a technician (its doing, not the
#: sender's).
NOT_COUNTED = ("too_fast", "locked_out", "send_code_in_check")

#: Who deposits an outbound parcel (the intent's actor): a member of the public.
SENDER = "public"


class SendRepo:
    """Send codes checked under throttling; each accepted one commits its deposit intent."""

    def __init__(self, context: Context, tables: Tables):
        self._c = context
        self._compartments = tables.compartments
        self._intents = tables.intents
        self._throttles = tables.throttles
        self._outbound = tables.outbound

    def refuse(self, error: FlowError) -> FlowError:
        """Count a send code that is not genuine, not for here or expired as a wrong code
        (the pickup codes' budget); the error to answer with."""
        refusal, _ = self._under_throttle(lambda conn: error, None)
        assert refusal is not None
        return refusal

    def begin(
        self, claims: SendClaims, unavailable: Iterable[str] = (), prefer_low: bool = False
    ) -> tuple[Reservation, int]:
        """Commit the intent to deposit a verified code's parcel in the smallest free
        compartment that fits; the reservation and the outbound parcel's id."""
        return self._begin(lambda conn: claims, set(unavailable), prefer_low)

    def begin_typed(
        self, code: str, unavailable: Iterable[str] = (), prefer_low: bool = False
    ) -> tuple[Reservation, int]:
        """:meth:`begin` for a typed send code the back office announced (``send.expect``)."""
        return self._begin(lambda conn: self._typed(conn, code), set(unavailable), prefer_low)

    def _begin(
        self,
        claims_of: Callable[[sqlite3.Connection], SendClaims | FlowError],
        unavailable: set[str],
        prefer_low: bool,
    ) -> tuple[Reservation, int]:
        found: list[SendClaims] = []

        def check(conn: sqlite3.Connection) -> FlowError | None:
            claims = claims_of(conn)
            if isinstance(claims, FlowError):
                return claims
            found.append(claims)
            return self._code_refusal(conn, claims)

        refusal, begun = self._under_throttle(
            check, lambda conn: self._start(conn, found[0], unavailable, prefer_low)
        )
        if begun is None:
            assert refusal is not None
            raise refusal
        return begun

    def expect(self, conn: sqlite3.Connection, kind: str, data: dict[str, Any]) -> None:
        """The back office announces a send code to be typed here (``send.expect``:
        ``code``, ``reference``, ``size``, ``carrier``, ``valid_until``)."""
        order = self._c.config.size_order
        if data["size"] not in order:
            raise Refused(f"no size {data['size']!r} here ({', '.join(order)})")
        digest = self._c.key.digest("send", data["code"])
        if conn.execute("SELECT 1 FROM send_codes WHERE code_hmac = ?", (digest,)).fetchone():
            raise Refused("that send code is announced here already")
        conn.execute(
            "INSERT INTO send_codes (code_hmac, kind, reference, size, carrier, valid_until)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (digest, kind, data["reference"], data["size"], data["carrier"], data["valid_until"]),
        )

    def _typed(self, conn: sqlite3.Connection, code: str) -> SendClaims | FlowError:
        """The claims of an announced typed code, or why it deposits nothing."""
        digest = self._c.key.digest("send", code)
        row = conn.execute("SELECT * FROM send_codes WHERE code_hmac = ?", (digest,)).fetchone()
        if row is None:
            return FlowError("wrong_code", "that send code is not right")
        if row["valid_until"] <= self._c.clock.time():
            return FlowError("send_code_expired", "this send code has expired")
        return SendClaims(
            self._c.config.locker.id,
            row["kind"],
            row["reference"],
            row["size"],
            row["carrier"],
            row["valid_until"],
            f"typed-{digest.hex()[:32]}",
        )

    def reserve(
        self,
        outbound_id: int,
        size: str,
        unavailable: Iterable[str] = (),
        prefer_low: bool = False,
        named: str | None = None,
    ) -> Reservation:
        """Another compartment for a deposit under way (did not fit, door did not open;
        ``named``: only that one, as :meth:`CustodyRepo.reserve_for_dropoff`)."""
        with self._c.change() as conn:
            row = conn.execute(
                "SELECT reference, state FROM outbound WHERE id = ?", (outbound_id,)
            ).fetchone()
            if row is None or row["state"] != "depositing":
                raise FlowError("not_depositing", f"outbound parcel {outbound_id} is not open")
            return self._intend(
                conn, outbound_id, row["reference"], size, set(unavailable), prefer_low, named
            )

    def _under_throttle(
        self, check: Check, start: Callable[[sqlite3.Connection], T] | None
    ) -> tuple[FlowError | None, T | None]:
        """Run ``check`` (a refusal or None) unless the keypad is blocked, counting a
        refusal as a failed attempt; else ``start``: (the refusal, what ``start`` gave)."""
        wall = self._c.clock.time()
        with self._c.change() as conn:
            now = self._c.throttle_now()
            state = self._throttles.load(conn, "pickup", now)
            refusal = credentials.blocked_error(state, now, "code", wall) or check(conn)
            if refusal is not None and refusal.code not in NOT_COUNTED:
                return self._failed(conn, state, now, wall, refusal), None
            if refusal is not None or start is None:
                return refusal, None
            return None, start(conn)

    def _failed(
        self,
        conn: sqlite3.Connection,
        state: throttle.ThrottleState,
        now: float,
        wall: float,
        refusal: FlowError,
    ) -> FlowError:
        """Count a refused send code (``send.denied``; ``pickup.locked_out`` when it locks
        the keypad out); the refusal with the attempts left and the back-off it starts
        (``retry_after``, 0: none), or the lock-out."""
        limits = self._c.config.pickup.throttle
        denied = Event.SEND_DENIED
        state = self._throttles.code_failed(conn, state, now, wall, denied, refusal.code)
        if state.locked_out:
            return credentials.wrong_code_error(state, now, limits, "code", wall)
        left = throttle.attempts_left(state, now, limits)
        wait = math.ceil(throttle.blocked_for(state, now))
        details = refusal.details | {"attempts_left": left, "retry_after": wait}
        return FlowError(refusal.code, refusal.message, **details)

    def _code_refusal(self, conn: sqlite3.Connection, claims: SendClaims) -> FlowError | None:
        """Why a genuine code deposits nothing: spent, under way, held by a deposit cut
        short, or returning a parcel that is still here."""
        if self._outbound.held(conn, claims.token_id):
            return rules.send_held(self._c.config.locker.support)
        used = conn.execute(  # a deposit given up (cancelled) leaves it unused
            "SELECT 1 FROM outbound o WHERE code_id = ? AND (state IN ('awaiting_collection',"
            "'collected','removed') OR state = 'depositing' AND EXISTS (SELECT 1 FROM"
            " unlock_intents i WHERE i.outbound_id = o.id AND i.state IN"
            " ('pending','opened','released')))",
            (claims.token_id,),
        ).fetchone()
        returned = conn.execute(
            "SELECT state FROM parcels WHERE barcode = ? ORDER BY id DESC LIMIT 1",
            (claims.reference,),
        ).fetchone()
        state = None if returned is None else Parcel(returned[0])
        return rules.send_refusal(used is not None, state, claims.kind)

    def _start(
        self, conn: sqlite3.Connection, claims: SendClaims, unavailable: set[str], low: bool
    ) -> tuple[Reservation, int]:
        now = self._c.clock.time()
        conn.execute(  # the deposits of this code that were given up
            "UPDATE outbound SET state = 'cancelled', updated_at = ? WHERE code_id = ?"
            " AND state = 'depositing'",
            (now, claims.token_id),
        )
        returned = conn.execute(
            "SELECT id FROM parcels WHERE barcode = ? AND state = 'collected'"
            " ORDER BY id DESC LIMIT 1",
            (claims.reference,),
        ).fetchone()
        cursor = conn.execute(
            "INSERT INTO outbound (kind, reference, size, carrier, state, code_id, code_expires,"
            " returned_parcel_id, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, 'depositing', ?, ?, ?, ?, ?)",
            (claims.kind, claims.reference, claims.size, claims.carrier, claims.token_id,
             claims.expires, None if returned is None else returned[0], now, now),
        )  # fmt: skip
        outbound_id = int(cursor.lastrowid or 0)
        reservation = self._intend(
            conn, outbound_id, claims.reference, claims.size, unavailable, low
        )
        return reservation, outbound_id

    def _intend(
        self,
        conn: sqlite3.Connection,
        outbound_id: int,
        reference: str,
        size: str,
        unavailable: set[str],
        prefer_low: bool,
        named: str | None = None,
    ) -> Reservation:
        chosen, other = self._compartments.chosen_and_other(size, prefer_low, unavailable, named)
        if other is None:
            raise FlowError(
                "locker_full", f"no free compartment of size {size} or larger", size=size
            )
        if chosen is None:  # a sender who needs a low door: asked, as a courier is
            raise rules.no_low(size, other)
        intent_id = self._intents.create(
            conn, chosen, Purpose.DROPOFF, SENDER, barcode=reference, size=size,
            outbound_id=outbound_id,
        )  # fmt: skip
        return Reservation(intent_id, chosen.id, Purpose.DROPOFF, chosen.size, barcode=reference)

    # -- couriers collecting ----------------------------------------------------

    def reserve_for_collect(
        self, courier: str, carrier: str, outbound_id: int, unreachable: Iterable[str] = ()
    ) -> Reservation:
        """Commit the intent to open an outbound parcel's compartment for a courier of its
        carrier."""
        with self._c.change() as conn:
            row = conn.execute(
                "SELECT reference, carrier, compartment_id, state FROM outbound WHERE id = ?",
                (outbound_id,),
            ).fetchone()
            if row is None or row["state"] != "awaiting_collection":
                raise FlowError(
                    "not_collectable", f"outbound parcel {outbound_id} is not awaiting collection"
                )
            refusal = rules.collect_refusal(carrier, row["carrier"]) or self._door(
                row["compartment_id"], unreachable
            )
            if refusal is not None:
                raise refusal
            comp = self._c.layout[row["compartment_id"]]
            intent_id = self._intents.create(
                conn, comp, Purpose.COLLECT, courier, barcode=row["reference"], size=comp.size,
                outbound_id=outbound_id,
            )  # fmt: skip
            return Reservation(intent_id, comp.id, Purpose.COLLECT, comp.size, barcode=row[0])

    def _door(self, comp_id: str, unreachable: Iterable[str]) -> FlowError | None:
        if comp_id in set(unreachable):
            return rules.unreachable(comp_id, self._c.config.locker.support)
        return rules.door_refusal(self._compartments.get(comp_id).state)
