"""The locker service: one asyncio loop owns every flow, timer and session.

It turns kiosk requests and door changes into events for the flows' state
machines (``lockerd.flows.machine``), whose decisions the ``FlowRunner`` carries
out as store transactions and bank pulses, in the order invariants 1-3 demand:
commit the unlock intent, pulse, see the door open within the timeout (else one
status-checked re-pulse, else out of service), and complete custody when the
door is seen closed. It also holds courier sessions, door monitoring and the
event stream.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any

from drivers.errors import DriverError
from lockerd import polarity, qrtoken
from lockerd.bank import Bank, LockStatus
from lockerd.clock import Clock, Timer
from lockerd.config import Config
from lockerd.domain import Door, Event
from lockerd.errors import BadRequest, FlowError, NotFound, Unauthorized
from lockerd.flowrunner import FlowRunner
from lockerd.flows import (
    MORE_TIME,
    Flow,
    Kind,
    State,
    check_barcode,
    check_courier_code,
    check_size,
)
from lockerd.flows import machine as m
from lockerd.pickups import Pickups
from lockerd.reads import Reads
from lockerd.sends import Sends
from lockerd.store import Reservation, Store
from lockerd.store.credentials import Courier
from lockerd.store.records import Collectable, JournalEntry
from lockerd.worker import Runner

log = logging.getLogger(__name__)
Message = Mapping[str, Any]
KEPT_FLOWS = 200


@dataclass
class Session:
    courier: Courier
    expires: float
    flow: Flow | None = None
    #: The courier asked for more time at login: each of the session's flows has it.
    more_time: bool = False

    def no_door_at_hand(self) -> None:
        """Refuse a new door while this courier's last flow still has one: opening, open,
        or a cancelled drop-off's door not yet seen shut."""
        if self.flow is not None and self.flow.at_door:
            raise FlowError("door_in_progress", "finish the open door first")


class Locker:
    """Drop-off, pickup, door monitoring and the event stream."""

    def __init__(self, config: Config, store: Store, db: Runner, bank: Bank, clock: Clock):
        self.config = config
        self.store = store
        self.db = db
        self.bank = bank
        #: What the faces (kiosk, lockerctl, demo panel) read of this locker.
        self.reads = Reads(config, store, db, bank)
        self.clock = clock
        self.sizes = config.size_order
        self.flows: OrderedDict[str, Flow] = OrderedDict()
        self._sessions: dict[str, Session] = {}
        self._left_open: dict[str, Timer] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._subscribers: set[asyncio.Queue[Message]] = set()
        self._door_queue: asyncio.Queue[tuple[str, Door, bool | None]] = asyncio.Queue()
        self._sweep: Timer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.runner = FlowRunner(config, store, db, bank, self._later, self._changed)
        self._qr_keys = [qrtoken.public_key(k) for k in config.pickup.qr_keys]
        #: The public's sends and returns, and couriers collecting them.
        self.sends = Sends(self, self._qr_keys, self._track, self._changed)
        #: Residents collecting their parcels.
        self.pickups = Pickups(self, self._qr_keys, self._track, self._changed)
        #: Boards whose start-up read looked like wrong polarity (lockerctl status, diag).
        self.alarms: list[polarity.Suspect] = []

    # -- life cycle --------------------------------------------------------

    async def start(self) -> dict[str, Door]:
        """Read every board, reconcile the store with it, and start watching doors."""
        self._loop = asyncio.get_running_loop()
        self.store.subscribe(self._from_store_thread)
        self.bank.health_listeners.append(self._on_health)
        doors = await self.bank.read_all()
        ids = self.config.compartment_ids
        unlocking = await self.db(lambda: {c for c in ids if self.store.intents.live(c)})
        items = {c: self.bank.item(c) for c in ids}
        await self.db(self.store.custody.reconcile, doors, items)
        await self._check_polarity(unlocking)
        self.bank.door_listeners.append(self._on_door)
        self._spawn(self._door_worker())
        self._arm_sweep()
        return doors

    async def _check_polarity(self, unlocking: set[str]) -> None:
        """Journal one ``board.polarity_suspect`` per board whose start-up read looks wired
        the other way round (once per start: a restart after a config change re-checks)."""
        self.alarms = polarity.suspects(self.bank, unlocking)
        for suspect in self.alarms:
            log.error("board %s: check %s: %s", suspect.board, suspect.key, suspect.detail)
            await self.db(self.store.journal.record, Event.BOARD_POLARITY_SUSPECT, suspect.data())

    async def stop(self) -> None:
        for timer in [*self._left_open.values(), self._sweep]:
            if timer is not None:
                timer.cancel()
        for flow in self.flows.values():
            flow.cancel_timer()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("locker task failed", exc_info=task.exception())

    def _later(self, delay: float, fn: Callable[[], Awaitable[Any]]) -> Timer:
        return self.clock.call_later(delay, lambda: self._spawn(fn()))  # type: ignore[arg-type]

    # -- event stream --------------------------------------------------------

    def subscribe(self) -> asyncio.Queue[Message]:
        """A queue that receives every journal event and flow update from now on."""
        queue: asyncio.Queue[Message] = asyncio.Queue(maxsize=1000)
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[Message]) -> None:
        self._subscribers.discard(queue)

    def publish(self, message: Message) -> None:
        for queue in list(self._subscribers):
            try:
                queue.put_nowait(message)
            except asyncio.QueueFull:
                # A reader this far behind is told so and dropped; it can
                # reconnect and replay from the journal by sequence number.
                self._subscribers.discard(queue)
                while not queue.empty():
                    queue.get_nowait()
                queue.put_nowait({"type": "overflow"})
                log.warning("dropped a stalled event-stream subscriber")

    def _from_store_thread(self, events: list[JournalEntry]) -> None:
        assert self._loop is not None
        for event in events:
            self._loop.call_soon_threadsafe(self.publish, event)

    def _changed(self, flow: Flow) -> None:
        flow.revision += 1
        self.publish({"type": "flow.updated", "flow": flow.view()})

    def _track(self, flow: Flow) -> Flow:
        self.flows[flow.id] = flow
        while len(self.flows) > KEPT_FLOWS:
            oldest = next(iter(self.flows.values()))
            if oldest.at_door:
                break
            self.flows.popitem(last=False)
        return flow

    def flow(self, flow_id: str, kind: Kind) -> Flow:
        flow = self.flows.get(flow_id)
        if flow is None or flow.kind != kind:
            raise NotFound("unknown_flow", f"no {kind} {flow_id!r}")
        return flow

    # -- couriers --------------------------------------------------------------

    async def courier_login(self, code: object, more_time: bool = False) -> tuple[str, Courier]:
        courier = await self.db(self.store.access.courier_login, check_courier_code(code))
        token = secrets.token_urlsafe(24)
        expiry = self._session_expiry(more_time)
        self._sessions[token] = Session(courier, expiry, more_time=more_time)
        return token, courier

    def courier_logout(self, token: str) -> None:
        """End the session; a door already open still completes its custody when it closes."""
        self._sessions.pop(token, None)

    def end_courier_sessions(self, courier_id: str) -> None:
        """A revoked courier is logged out everywhere at once."""
        for token, session in list(self._sessions.items()):
            if session.courier.id == courier_id:
                del self._sessions[token]

    def session(self, token: str | None, right: str | None = None) -> Session:
        session = self._sessions.get(token or "")
        now = self.clock.monotonic()
        if session is None or session.expires <= now:
            self._sessions.pop(token or "", None)
            raise Unauthorized("session_expired", "log in again with your courier code")
        if right is not None and right not in session.courier.rights:
            raise FlowError("not_allowed", f"this courier may not {right}")
        session.expires = self._session_expiry(session.more_time)
        return session

    def _session_expiry(self, more_time: bool) -> float:
        idle = self.config.timing.courier_idle_s
        return self.clock.monotonic() + (idle * MORE_TIME if more_time else idle)

    # -- drop-off ----------------------------------------------------------------

    async def dropoff_scan(
        self, token: str | None, barcode: object, size: object = None, prefer_low: bool = False
    ) -> Flow:
        session = self.session(token, "deliver")
        barcode = check_barcode(barcode)
        session.no_door_at_hand()
        chosen = None if size is None else check_size(size, self.sizes)
        expected = await self.db(self.store.parcels.expected_size, barcode)
        flow = Flow(Kind.DROPOFF, State.NEED_SIZE, courier=session.courier.id, barcode=barcode)
        flow.prefer_low, flow.more_time = bool(prefer_low), session.more_time
        await self.runner.drive(flow, m.Scanned(chosen or expected))
        session.flow = self._track(flow)
        self._changed(flow)
        return flow

    async def dropoff_size(self, token: str | None, flow_id: str, size: object) -> Flow:
        flow = self.own_dropoff(token, flow_id)
        await self.runner.drive(flow, m.SizeChosen(size))
        self._changed(flow)
        return flow

    async def dropoff_doesnt_fit(self, token: str | None, flow_id: str) -> Flow:
        flow = self.own_dropoff(token, flow_id)
        comp = flow.compartment
        await self.runner.drive(flow, m.DoesntFit(comp and self.config.compartment_size(comp)))
        return flow

    async def dropoff_door_did_not_open(self, token: str | None, flow_id: str) -> Flow:
        return await self.runner.says_not_open(self.own_dropoff(token, flow_id))

    async def dropoff_any_height(self, token: str | None, flow_id: str) -> Flow:
        """No low compartment was free: the courier takes one out of reach after all."""
        flow = self.own_dropoff(token, flow_id)
        await self.runner.drive(flow, m.AnyHeight())
        self._changed(flow)
        return flow

    async def dropoff_cancel(self, token: str | None, flow_id: str) -> Flow:
        flow = self.own_dropoff(token, flow_id)
        await self.runner.drive(flow, m.Cancel())
        return flow

    async def dropoff_leave_unshut(self, token: str | None, flow_id: str) -> Flow:
        """A cancelled drop-off's door will not shut: the courier leaves it, and the
        compartment needs a check."""
        flow = self.own_dropoff(token, flow_id)
        await self.runner.drive(flow, m.LeaveUnshut())
        return flow

    def own_dropoff(self, token: str | None, flow_id: str) -> Flow:
        """The drop-off ``flow_id`` of the courier logged in with ``token``."""
        session = self.session(token, "deliver")
        flow = self.flow(flow_id, Kind.DROPOFF)
        if flow.courier != session.courier.id:
            raise NotFound("unknown_flow", f"no dropoff {flow_id!r}")
        return flow

    # -- service -----------------------------------------------------------------

    async def return_to_service(self, comp_id: str, actor: str) -> str:
        """Put a checked compartment back in use; its door must be shut and its lock latched."""
        if comp_id not in self.config.compartment_ids:
            raise NotFound("unknown_compartment", f"no compartment {comp_id!r}")
        await self.require_shut_and_latched(comp_id)
        return await self.db(self.store.custody.return_to_service, comp_id, actor)

    async def require_shut_and_latched(self, comp_id: str) -> None:
        """Refuse to put ``comp_id`` back in use unless a fresh read of its boards shows the
        door shut (as the poller also last saw it) and the lock latched. Where the lock
        board reports no latch, the door alone decides; the kiosk's locker, ``lockerctl
        enable`` and the remote ``compartment.enable`` all ask here.

        Raises:
            FlowError: ``door_not_closed``, ``lock_not_latched``, or
                ``compartment_unreachable`` when a board cannot be read now.
        """
        status = await self._fresh_status(comp_id)
        if status.latched is False and not self.bank.is_pulse_over(comp_id):
            # Just pulsed: the coil may be what holds the latch out, and the latch
            # catches when the pulse ends. Judge it then.
            await self.bank.pulse_over(comp_id)
            status = await self._fresh_status(comp_id)
        if status.latched is False and (
            status.door == Door.CLOSED or self.bank.door_from_lock(comp_id)
        ):
            raise FlowError(
                "lock_not_latched",
                f"{comp_id}'s lock reads released: shut its door firmly until the latch"
                " catches, or check the lock, before putting it back in use",
            )
        if status.door != Door.CLOSED or self.bank.door(comp_id) != Door.CLOSED:
            raise FlowError("door_not_closed", f"close {comp_id} before putting it back in use")

    async def _fresh_status(self, comp_id: str) -> LockStatus:
        try:
            return await self.bank.status(comp_id)
        except DriverError as exc:
            raise FlowError(
                "compartment_unreachable",
                f"{comp_id} cannot be checked: its board does not answer ({exc})",
            ) from exc

    # -- pickup -----------------------------------------------------------------

    async def open_reserved(self, kind: Kind, reservation: Reservation) -> Flow:
        """Open a door whose intent is committed: a ``remote`` command or a ``service`` open."""
        flow = self._track(Flow(kind, State.OPENING, size=reservation.size))
        await self.runner.open(flow, reservation)
        self._changed(flow)
        return flow

    # -- courier collection of expired parcels ---------------------------------

    async def collectable(self, token: str | None) -> list[Collectable]:
        session = self.session(token, "collect")
        return await self.db(self.store.parcels.collectable, session.courier.carrier)

    async def collect(self, token: str | None, parcel_id: object) -> Flow:
        session = self.session(token, "collect")
        if not isinstance(parcel_id, int) or isinstance(parcel_id, bool):
            raise BadRequest(
                "invalid_field", "parcel must be a parcel id (an integer)", field="parcel"
            )
        session.no_door_at_hand()
        reservation = await self.db(
            self.store.access.reserve_for_collect,
            session.courier.id,
            parcel_id,
            self.runner.unreachable(),
            session.courier.carrier,
        )
        flow = Flow(
            Kind.COLLECT, State.OPENING, courier=session.courier.id, barcode=reservation.barcode
        )
        flow.size, flow.more_time = reservation.size, session.more_time
        session.flow = self._track(flow)
        await self.runner.open(flow, reservation)
        self._changed(flow)
        return flow

    # -- doors ---------------------------------------------------------------------

    def _on_door(self, comp_id: str, door: Door, previous: Door, item: bool | None) -> None:
        if previous == Door.UNKNOWN and door == Door.CLOSED:
            return  # a board answering again with the door as it was: nothing happened
        self._door_queue.put_nowait((comp_id, door, item))

    def _on_health(self, board: str, online: bool) -> None:
        self._spawn(self.db(self.store.journal.board_health, board, online))

    async def _door_worker(self) -> None:
        """Handle door changes one at a time, in the order the poller saw them."""
        while True:
            comp_id, door, item = await self._door_queue.get()
            try:
                if door == Door.OPEN:
                    await self._door_opened(comp_id)
                elif door == Door.CLOSED:
                    await self._door_closed(comp_id, item)
            except Exception:  # one bad event must not stop door monitoring
                log.exception("handling door %s %s failed", comp_id, door)

    async def _door_opened(self, comp_id: str) -> None:
        result = await self.db(self.store.custody.door_opened, comp_id)
        self._arm_left_open(comp_id)
        flow = self.runner.watching(comp_id)
        if result.forced or flow is None or flow.intent != result.intent:
            return
        await self.runner.drive(flow, m.DoorOpened())

    async def _door_closed(self, comp_id: str, item: bool | None) -> None:
        timer = self._left_open.pop(comp_id, None)
        if timer is not None:
            timer.cancel()
        result = await self.db(self.store.custody.door_closed, comp_id, item)
        flow = self.runner.watching(comp_id)
        if flow is None or result.completed is None or flow.intent != result.intent:
            return
        await self.runner.drive(flow, m.DoorClosed(result.completed, result.parcel))

    def _arm_left_open(self, comp_id: str) -> None:
        if comp_id in self._left_open:
            return
        self._left_open[comp_id] = self._later(
            self.config.timing.door_left_open_s, lambda: self._door_left_open(comp_id)
        )

    async def _door_left_open(self, comp_id: str) -> None:
        if self._left_open.pop(comp_id, None) is None or self.bank.door(comp_id) != Door.OPEN:
            return
        await self.db(self.store.custody.door_left_open, comp_id)
        flow = self.runner.watching(comp_id)
        if flow is not None:
            await self.runner.drive(flow, m.LeftOpen())

    # -- deadlines ---------------------------------------------------------------------

    def _arm_sweep(self) -> None:
        self._sweep = self._later(self.config.timing.expiry_sweep_s, self._expire)

    async def _expire(self) -> None:
        try:
            await self.db(self.store.parcels.expire_due)
        finally:
            self._arm_sweep()
