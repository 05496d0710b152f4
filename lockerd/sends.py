"""Sending and returning at the locker: the public's send flows (a drop-off's machine,
begun by a send code instead of a courier's scan) and couriers collecting the outbound
parcels of their carrier. Part of the locker service; one loop owns it all."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from lockerd import sendcode
from lockerd.errors import BadRequest, FlowError
from lockerd.flows import Flow, Kind, State
from lockerd.flows import machine as m
from lockerd.store.intents import Reservation
from lockerd.store.records import OutboundRecord

if TYPE_CHECKING:
    from lockerd.locker import Locker


class Sends:
    """The send flows of the public and couriers' collection of outbound parcels."""

    def __init__(
        self,
        locker: Locker,
        keys: list[Ed25519PublicKey],
        track: Callable[[Flow], Flow],
        changed: Callable[[Flow], None],
    ):
        """``keys``: the back office's (``pickup.qr_keys``); ``track`` and ``changed``: the
        locker's keeping and publishing of a flow."""
        self._l, self._keys = locker, keys
        self._track, self._changed = track, changed

    async def start(self, code: object, prefer_low: bool = False, more_time: bool = False) -> Flow:
        """A send or return code typed or scanned: verified offline, then its parcel's
        door opens (the smallest free compartment of its size). Every refused code is
        counted against the pickup codes' wrong-code budget. ``more_time``: the sender
        asked for more time (:meth:`lockerd.flows.Flow.person_s`)."""
        lk = self._l
        if isinstance(code, str) and sendcode.TYPED.fullmatch(code):
            return await self._begun(
                await lk.db(
                    lk.store.sending.begin_typed, code, lk.bank.unavailable(), bool(prefer_low)
                ),
                prefer_low,
                more_time,
            )
        try:
            claims = sendcode.verify(
                code, self._keys, lk.config.locker.id, lk.clock.time(), lk.sizes
            )
        except FlowError as exc:
            if exc.code == "send_not_enabled":
                raise
            raise await lk.db(lk.store.sending.refuse, exc) from None
        begun = await lk.db(lk.store.sending.begin, claims, lk.bank.unavailable(), bool(prefer_low))
        return await self._begun(begun, prefer_low, more_time)

    async def _begun(
        self, begun: tuple[Reservation, int], prefer_low: bool, more_time: bool
    ) -> Flow:
        """The send flow of a committed deposit intent, its door pulsed."""
        lk, (reservation, outbound_id) = self._l, begun
        parcel = await lk.db(lk.store.outbound.get, outbound_id)
        assert parcel is not None
        flow = Flow(Kind.SEND, State.OPENING, barcode=parcel.reference, size=parcel.size)
        flow.outbound, flow.prefer_low = outbound_id, bool(prefer_low)
        flow.more_time = more_time
        self._track(flow)
        reserved = m.Reserved(reservation.compartment_id, reservation.intent_id, parcel.size)
        await lk.runner.drive(flow, reserved)
        self._changed(flow)
        return flow

    def flow(self, flow_id: str) -> Flow:
        """The send ``flow_id`` (NotFound if there is none)."""
        return self._l.flow(flow_id, Kind.SEND)

    async def size(self, flow_id: str, size: object) -> Flow:
        """A larger size after "does not fit", or another door after one did not open."""
        flow = self.flow(flow_id)
        await self._l.runner.drive(flow, m.SizeChosen(size))
        self._changed(flow)
        return flow

    async def doesnt_fit(self, flow_id: str) -> Flow:
        flow = self.flow(flow_id)
        comp = flow.compartment
        await self._l.runner.drive(
            flow, m.DoesntFit(comp and self._l.config.compartment_size(comp))
        )
        return flow

    async def door_did_not_open(self, flow_id: str) -> Flow:
        return await self._l.runner.says_not_open(self.flow(flow_id))

    async def any_height(self, flow_id: str) -> Flow:
        """No low compartment was free: the sender takes one out of reach after all."""
        flow = self.flow(flow_id)
        await self._l.runner.drive(flow, m.AnyHeight())
        self._changed(flow)
        return flow

    async def cancel(self, flow_id: str) -> Flow:
        flow = self.flow(flow_id)
        await self._l.runner.drive(flow, m.Cancel())
        return flow

    async def leave_unshut(self, flow_id: str) -> Flow:
        """A cancelled send's door will not shut: the sender leaves it, and the
        compartment needs a check."""
        flow = self.flow(flow_id)
        await self._l.runner.drive(flow, m.LeaveUnshut())
        return flow

    # -- couriers ------------------------------------------------------------------

    async def collectable(self, token: str | None) -> list[OutboundRecord]:
        """The parcels sent or returned here that the courier's carrier takes."""
        session = self._l.session(token, "collect")
        return await self._l.db(self._l.store.outbound.collectable, session.courier.carrier)

    async def collect(self, token: str | None, outbound_id: object) -> Flow:
        """Open an outbound parcel's door for a courier of its carrier."""
        lk = self._l
        session = lk.session(token, "collect")
        if not isinstance(outbound_id, int) or isinstance(outbound_id, bool):
            raise BadRequest(
                "invalid_field", "outbound must be an outbound parcel id (an integer)",
                field="outbound",
            )  # fmt: skip
        session.no_door_at_hand()
        courier = session.courier
        reservation = await lk.db(
            lk.store.sending.reserve_for_collect,
            courier.id,
            courier.carrier,
            outbound_id,
            lk.runner.unreachable(),
        )
        flow = Flow(Kind.COLLECT, State.OPENING, courier=courier.id, barcode=reservation.barcode)
        flow.size, flow.outbound = reservation.size, outbound_id
        flow.more_time = session.more_time
        session.flow = self._track(flow)
        await lk.runner.open(flow, reservation)
        self._changed(flow)
        return flow
