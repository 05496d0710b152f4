"""Residents collecting: a pickup code or QR code opens its parcel's door (each next door
of a pickup group when the resident asks for it), "the door did not open", and a door
shut too early opened once more within the grace period. Part of the locker service;
one loop owns it all."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from lockerd import codes, qrtoken
from lockerd.errors import BadRequest, FlowError
from lockerd.flows import Flow, Kind, State
from lockerd.store import Reservation

if TYPE_CHECKING:
    from lockerd.locker import Locker


class Pickups:
    """The residents' pickup flows."""

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

    async def code(self, code: object, more_time: bool = False) -> Flow:
        """A pickup by typed code, under the wrong-code throttle; ``more_time``: the
        resident asked for more time (:meth:`lockerd.flows.Flow.person_s`)."""
        lk = self._l
        lengths = (await lk.reads.snapshot()).code_lengths  # kept, not read per code typed
        problem = codes.check_code_format(code, lengths)
        if problem is not None or not isinstance(code, str):
            raise BadRequest("invalid_code", problem or "a code is a string", field="code")
        reservation = await lk.db(lk.store.access.reserve_for_pickup, code, lk.runner.unreachable())
        return await self._open(reservation, more_time)

    async def token(self, token: object, more_time: bool = False) -> Flow:
        """A pickup by QR code: verified offline, then single use."""
        lk = self._l
        try:
            claims = qrtoken.verify(token, self._keys, lk.config.locker.id, lk.clock.time())
        except qrtoken.ForgedToken:
            raise await lk.db(lk.store.access.forged_token) from None
        reservation = await lk.db(
            lk.store.access.reserve_for_token, claims, lk.runner.unreachable()
        )
        return await self._open(reservation, more_time)

    async def _open(self, reservation: Reservation, more_time: bool) -> Flow:
        flow = self._track(Flow(Kind.PICKUP, State.OPENING, size=reservation.size))
        flow.more_time = more_time
        if reservation.group is not None and reservation.parcel_id is not None:
            # One code, checked once, for each of the group's parcels in turn.
            flow.group, flow.group_tried = reservation.group, [reservation.parcel_id]
            flow.group_total = await self._l.db(self._l.store.access.group_size, reservation.group)
        await self._l.runner.open(flow, reservation)
        self._changed(flow)
        return flow

    async def door_did_not_open(self, flow_id: str) -> Flow:
        """The resident says the pickup's door did not open: the status-checked re-pulse
        now (or, said again, the way out: the compartment out of service, the parcel
        kept in it)."""
        return await self._l.runner.says_not_open(self._l.flow(flow_id, Kind.PICKUP))

    async def next_door(self, flow_id: str) -> Flow:
        """The resident of a group pickup asks for the next door, offered after the last
        one closed (``next_door``): it is pulsed now."""
        flow = self._l.flow(flow_id, Kind.PICKUP)
        await self._l.runner.open_next(flow)
        self._changed(flow)
        return flow

    async def reopen(self, flow_id: str) -> Flow:
        """Open a collected pickup's door once more, within ``pickup.reopen_grace_s`` of its
        door cycle (a door shut too early): a new pickup flow, ``reopen``, on that door.
        In a group, the door just closed (its parcel); the group goes on from the new flow
        (its next door offered once the reopened door closes)."""
        lk = self._l
        done = lk.flow(flow_id, Kind.PICKUP)
        if done.state != State.COLLECTED or done.parcel is None or done.reopen:
            raise FlowError("reopen_expired", "this door cannot be opened again")
        grace = done.person_s(lk.config.pickup.reopen_grace_s)
        reservation = await lk.db(
            lk.store.access.reserve_for_reopen, done.parcel, lk.runner.unreachable(), grace
        )
        flow = self._track(Flow(Kind.PICKUP, State.OPENING, size=reservation.size, reopen=True))
        flow.more_time = done.more_time
        _hand_over(done, flow)
        await lk.runner.open(flow, reservation)
        self._changed(flow)
        return flow


def _hand_over(done: Flow, flow: Flow) -> None:
    """A group's door reopened: the new flow carries the group on; ``done`` offers no
    next door any more."""
    done.cancel_timer()
    flow.group, flow.group_tried, flow.group_total = done.group, done.group_tried, done.group_total
    flow.stuck = done.stuck
    done.group, done.next_door = None, None
