"""Carries out what the flows' state machines decide, on the locker's loop: store calls,
bank pulses (with the status-checked re-pulse), the door-open timer, which flow a door
belongs to, and publishing the flow's view."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from drivers.errors import DriverError
from lockerd.bank import Bank, SafetyError
from lockerd.clock import Timer
from lockerd.config import Config
from lockerd.domain import Door
from lockerd.errors import FlowError
from lockerd.flows import Flow, Kind, State
from lockerd.flows import machine as m
from lockerd.store import Reservation, Store
from lockerd.worker import Runner

log = logging.getLogger(__name__)
#: A group pickup's door whose cycle ended so: the resident is offered the next door.
GROUP_DOOR_OVER = (State.COLLECTED, State.CLOSED, State.FAILED)
Later = Callable[[float, Callable[[], Awaitable[Any]]], Timer]


class FlowRunner:
    """Drives each flow's machine: feeds it events and carries out its decisions."""

    def __init__(
        self,
        config: Config,
        store: Store,
        db: Runner,
        bank: Bank,
        later: Later,
        publish: Callable[[Flow], None],
    ):
        self.config = config
        self.store = store
        self.db = db
        self.bank = bank
        self._later = later
        self._publish = publish
        self._machines = {kind: m.machine(kind, config.size_order) for kind in Kind}
        #: The flow each compartment's door changes go to.
        self.by_compartment: dict[str, Flow] = {}

    def watching(self, comp_id: str) -> Flow | None:
        """The flow whose door ``comp_id`` is, if any."""
        return self.by_compartment.get(comp_id)

    async def open(self, flow: Flow, reservation: Reservation) -> None:
        await self.drive(
            flow, m.Reserved(reservation.compartment_id, reservation.intent_id, reservation.size)
        )

    async def drive(self, flow: Flow, event: m.FlowEvent) -> None:
        """Feed ``event`` to the flow's machine, carry out its decisions in order, and at
        the end of a group pickup's door, offer the group's next door."""
        await self._drive(flow, event)
        if flow.group is not None and flow.state in GROUP_DOOR_OVER and flow.next_door is None:
            await self._offer_next(flow)

    async def says_not_open(self, flow: Flow) -> Flow:
        """The person at the kiosk says ``flow``'s door did not open (``lock_switch_only``:
        the door is read from the lock's own switch, which reads open once released)."""
        comp = flow.compartment
        await self.drive(
            flow, m.CourierSaysNotOpen(comp is not None and self.bank.door_from_lock(comp))
        )
        return flow

    async def _drive(self, flow: Flow, event: m.FlowEvent) -> None:
        for decision in self._machines[flow.kind].step(flow, event):
            answer = await self._decide(flow, decision)
            if answer is not None:
                await self._drive(flow, answer)

    def unreachable(self) -> set[str]:
        """Compartments whose lock, door or item board is silent now: not to be pulsed."""
        return self.bank.unreachable()

    async def _offer_next(self, flow: Flow) -> None:
        """A group door's cycle is over: the resident at the kiosk may ask for the next
        door within ``pickup.next_door_s``; nobody asks (or none is left), the pickup ends
        and the other parcels stay stored. No door is pulsed for nobody."""
        assert flow.group is not None
        args = (flow.group, flow.group_tried, self.unreachable())
        flow.next_door = await self.db(self.store.access.group_next, *args)
        if flow.next_door is None:
            return self.end_group(flow)
        offered = flow.person_s(self.config.pickup.next_door_s)
        flow.timer = self._later(offered, lambda: self._no_next(flow))
        self._publish(flow)

    async def _no_next(self, flow: Flow) -> None:
        flow.timer = None
        if flow.next_door is not None:
            self.end_group(flow)

    def end_group(self, flow: Flow) -> None:
        """The group pickup ends with the doors opened so far."""
        flow.cancel_timer()
        flow.group, flow.next_door, flow.group_total = None, None, len(flow.group_tried)
        self._publish(flow)

    async def open_next(self, flow: Flow) -> None:
        """The resident asks for the group's next door (offered by :meth:`_offer_next`)."""
        if flow.group is None or flow.next_door is None:
            raise FlowError("no_next_door", "there is no next door to open now")
        flow.cancel_timer()
        flow.next_door = None
        args = (flow.group, flow.group_tried, self.unreachable())
        reservation = await self.db(self.store.access.reserve_group_next, *args)
        if reservation is None:
            return self.end_group(flow)
        assert reservation.parcel_id is not None
        flow.group_tried.append(reservation.parcel_id)
        flow.error, flow.reopen = None, False
        await self.open(flow, reservation)

    async def _decide(self, flow: Flow, decision: m.Decision) -> m.FlowEvent | None:
        """Carry out one decision; the event that answers it, if it has one."""
        match decision:
            case m.Reserve():
                return await self._reserve(flow, decision)
            case m.Pulse():
                await self._pulse(flow, decision.attempt)
            case m.RetryPulse():
                intent = flow.intent
                outcome = await self._retry_pulse(flow)
                return m.RetryOutcome(outcome, decision.courier_here, intent)
            case m.CheckRoom():
                room = await self.db(
                    self.store.custody.has_room, decision.size, self.bank.unavailable()
                )
                return m.RoomChecked(room, decision.failed)
            case m.RecordPulse():
                assert flow.compartment is not None and flow.intent is not None
                await self.db(
                    self.store.journal.record_pulse, flow.compartment, flow.intent, decision.attempt
                )
            case m.Release():
                custody = self.store.custody
                await self.db(
                    custody.release, decision.intent, decision.reason, decision.shut_first
                )
            case m.CheckShut():
                return await self._check_shut(flow, decision.again)
            case m.SettleCancelled():
                assert flow.compartment is not None
                item = self.bank.item(flow.compartment)
                settle = self.store.custody.settle_cancelled
                await self.db(settle, decision.intent, decision.latched, item)
            case m.LeaveForCheck():
                await self.db(self.store.custody.left_unshut, decision.intent, decision.compartment)
            case m.UnlockFailed() | m.NotOpened() | m.Disputed():
                await self.db(self._ending(decision), decision.intent)
            case _:
                self._now(flow, decision)
        return None

    def _ending(self, decision: m.UnlockFailed | m.NotOpened | m.Disputed) -> Callable[[int], None]:
        """How the store records a door that did not give what was asked of it."""
        match decision:
            case m.NotOpened():
                return self.store.custody.not_opened
            case m.Disputed():
                return self.store.custody.disputed
        return self.store.custody.unlock_failed

    def _now(self, flow: Flow, decision: m.Decision) -> None:
        """Carry out a decision that needs neither the store nor the bank."""
        match decision:
            case m.Watch():
                self.by_compartment[decision.compartment] = flow
            case m.Forget():
                self.by_compartment.pop(decision.compartment, None)
            case m.ArmTimer():
                flow.open_within_s = self.open_window(flow)
                flow.timer = self._later(flow.open_within_s, lambda: self._timed_out(flow))
            case m.CancelTimer():
                flow.cancel_timer()
            case m.Publish():
                self._publish(flow)

    def open_window(self, flow: Flow) -> float:
        """How long the pulsed door of ``flow`` has to be seen open: a resident's is
        ``timing.pickup_door_open_s``, as short as the latch warrants; either is
        :data:`lockerd.flows.MORE_TIME` times as long for a person who asked for more time."""
        timing = self.config.timing
        kind = flow.kind
        window = timing.pickup_door_open_s if kind == Kind.PICKUP else timing.door_open_timeout_s
        return flow.person_s(window)

    async def _timed_out(self, flow: Flow) -> None:
        flow.timer = None
        await self.drive(flow, m.DoorTimeout())

    async def _reserve(self, flow: Flow, decision: m.Reserve) -> m.FlowEvent:
        try:
            reservation = await self._reservation(flow, decision.size, decision.compartment)
        except FlowError as exc:
            if exc.code == "no_low_compartment":
                return m.NoLowFree(decision.size, str(exc.details["compartment"]))
            if not decision.or_fail:
                raise
            return m.ReserveFailed(exc.code, exc.message)
        return m.Reserved(reservation.compartment_id, reservation.intent_id, decision.size)

    async def _check_shut(self, flow: Flow, again: bool) -> m.ShutChecked:
        """Once the pulse is over (the coil may be what holds the latch out): the door
        and the latch read now. An unreadable board is not shut."""
        assert flow.compartment is not None
        comp_id = flow.compartment
        await self.bank.pulse_over(comp_id)
        try:
            status = await self.bank.status(comp_id)
        except DriverError as exc:
            log.warning("status read of %s after a cancel failed: %s", comp_id, exc)
            return m.ShutChecked(False, self.bank.door(comp_id) == Door.OPEN, again)
        is_open = Door.OPEN in (status.door, self.bank.door(comp_id))
        shut = status.door == Door.CLOSED and status.latched is not False and not is_open
        return m.ShutChecked(shut, is_open, again)

    async def _reservation(self, flow: Flow, size: str, named: str | None) -> Reservation:
        """A compartment of ``size`` (``named``: that one only) for a courier's drop-off or
        the public's send."""
        if flow.kind == Kind.SEND:
            assert flow.outbound is not None
            return await self.db(
                self.store.sending.reserve,
                flow.outbound,
                size,
                self.bank.unavailable(),
                flow.prefer_low,
                named,
            )
        assert flow.courier is not None and flow.barcode is not None
        return await self.db(
            self.store.custody.reserve_for_dropoff,
            flow.courier,
            flow.barcode,
            size,
            self.bank.unavailable(),
            flow.prefer_low,
            named,
        )

    async def _pulse(self, flow: Flow, attempt: int) -> None:
        assert flow.compartment is not None and flow.intent is not None
        try:
            await self.bank.pulse(flow.compartment, flow.intent)
        except SafetyError as exc:
            log.error("pulse of %s refused: %s", flow.compartment, exc)
            return
        except DriverError as exc:
            # The frame may not have gone out; the door-open timeout and its
            # status read decide what happens next, never a blind retry.
            log.warning("pulse of %s failed: %s", flow.compartment, exc)
            return
        await self.db(self.store.journal.record_pulse, flow.compartment, flow.intent, attempt)

    async def _retry_pulse(self, flow: Flow) -> str:
        """The status-checked re-pulse: ``pulsed``, ``released``, ``open`` or ``unreadable``."""
        comp_id, intent = flow.compartment, flow.intent
        assert comp_id is not None and intent is not None
        try:
            return await self.bank.retry_pulse(comp_id, intent)
        except (DriverError, SafetyError) as exc:
            log.warning("status read of %s before re-pulse failed: %s", comp_id, exc)
            return "unreadable"
