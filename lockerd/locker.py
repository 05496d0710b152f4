"""The locker service: one asyncio loop owns every flow, timer and session.

It turns kiosk requests and door changes into store transactions and bank
pulses, in the order invariants 1-3 demand: commit the unlock intent, pulse,
see the door open within the timeout (else one status-checked re-pulse,
else out of service), and complete custody when the door is seen closed.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from drivers.errors import DriverError
from lockerd import codes, polarity, qrtoken
from lockerd.bank import Bank, LockStatus, SafetyError
from lockerd.clock import Clock, Timer
from lockerd.config import Config
from lockerd.domain import Door, Event
from lockerd.errors import BadRequest, FlowError, NotFound, Unauthorized
from lockerd.flows import Flow, check_barcode, check_courier_code, check_size, next_size
from lockerd.store import Reservation, Store
from lockerd.store.credentials import Courier
from lockerd.worker import Worker

log = logging.getLogger(__name__)
Message = dict[str, Any]
KEPT_FLOWS = 200
#: What a flow became when its door closed, by what the door cycle completed.
FINISHED = {"stored": "stored", "remote": "closed", "service": "closed"}
#: Door cycles whose item sensor disagreed: the flow fails with this error.
MISMATCH = {
    "parcel_not_seen": (
        "parcel_not_seen",
        "no parcel was seen in {} after its door closed; it will be checked",
    ),
    "parcel_still_inside": (
        "parcel_still_inside",
        "the parcel still seems to be in {}; it will be checked",
    ),
}


@dataclass
class Session:
    courier: Courier
    expires: float
    flow: Flow | None = None


class Locker:
    """Drop-off, pickup, door monitoring and the event stream."""

    def __init__(self, config: Config, store: Store, db: Worker, bank: Bank, clock: Clock):
        self.config = config
        self.store = store
        self.db = db
        self.bank = bank
        self.clock = clock
        self.sizes = config.size_order
        self.flows: OrderedDict[str, Flow] = OrderedDict()
        self._by_compartment: dict[str, Flow] = {}
        self._sessions: dict[str, Session] = {}
        self._left_open: dict[str, Timer] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._subscribers: set[asyncio.Queue[Message]] = set()
        self._door_queue: asyncio.Queue[tuple[str, Door, bool | None]] = asyncio.Queue()
        self._sweep: Timer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._qr_keys = [qrtoken.public_key(k) for k in config.pickup.qr_keys]
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
        unlocking = await self.db(lambda: {c for c in ids if self.store.live_intent(c)})
        items = {c: self.bank.item(c) for c in ids}
        await self.db(self.store.reconcile, doors, items)
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
            await self.db(self.store.record, Event.BOARD_POLARITY_SUSPECT, suspect.data())

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

    def _from_store_thread(self, events: list[Message]) -> None:
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
            if oldest.active:
                break
            self.flows.popitem(last=False)
        return flow

    def flow(self, flow_id: str, kind: str) -> Flow:
        flow = self.flows.get(flow_id)
        if flow is None or flow.kind != kind:
            raise NotFound("unknown_flow", f"no {kind} {flow_id!r}")
        return flow

    # -- couriers --------------------------------------------------------------

    async def courier_login(self, code: object) -> tuple[str, Courier]:
        courier = await self.db(self.store.courier_login, check_courier_code(code))
        token = secrets.token_urlsafe(24)
        self._sessions[token] = Session(courier, self._session_expiry())
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
            raise FlowError("not_allowed", f"this courier may not {right}", status=403)
        session.expires = self._session_expiry()
        return session

    def _session_expiry(self) -> float:
        return self.clock.monotonic() + self.config.timing.courier_idle_s

    # -- drop-off ----------------------------------------------------------------

    async def dropoff_scan(
        self, token: str | None, barcode: object, size: object = None, prefer_low: bool = False
    ) -> Flow:
        session = self.session(token, "deliver")
        barcode = check_barcode(barcode)
        if session.flow is not None and session.flow.active:
            raise FlowError("door_in_progress", "finish the open door first")
        chosen = None if size is None else check_size(size, self.sizes)
        expected = await self.db(self.store.expected_size, barcode)
        flow = Flow("dropoff", "need_size", courier=session.courier.id, barcode=barcode)
        flow.prefer_low = bool(prefer_low)
        chosen = chosen or expected
        if chosen is not None:
            await self._reserve_and_open(flow, chosen)
        session.flow = self._track(flow)
        self._changed(flow)
        return flow

    async def dropoff_size(self, token: str | None, flow_id: str, size: object) -> Flow:
        flow = self.own_dropoff(token, flow_id)
        if flow.state not in ("need_size", "offer_size", "did_not_open"):
            raise FlowError("wrong_state", f"this drop-off is {flow.state}, not waiting for a size")
        await self._reserve_and_open(flow, check_size(size, self.sizes, flow.offered_size))
        self._changed(flow)
        return flow

    async def dropoff_doesnt_fit(self, token: str | None, flow_id: str) -> Flow:
        flow = self.own_dropoff(token, flow_id)
        if flow.state != "open" or flow.intent is None or flow.compartment is None:
            raise FlowError("door_not_open", "open the door and try the parcel first")
        await self.db(self.store.release, flow.intent, "doesnt_fit")
        self._by_compartment.pop(flow.compartment, None)
        larger = next_size(self.config.compartment_size(flow.compartment), self.sizes)
        flow.state, flow.offered_size = (
            ("offer_size", larger) if larger else ("no_larger_size", None)
        )
        flow.compartment = flow.intent = None
        self._changed(flow)
        return flow

    async def dropoff_door_did_not_open(self, token: str | None, flow_id: str) -> Flow:
        flow = self.own_dropoff(token, flow_id)
        if flow.state == "open" and flow.compartment and self.bank.door_from_lock(flow.compartment):
            # Only the lock's switch is read here: it says released, the courier
            # says the door did not move. That is a jammed door.
            await self._give_up(flow, courier_here=True)
            return flow
        if flow.state != "opening":
            raise FlowError("wrong_state", f"this drop-off is {flow.state}, not opening")
        flow.cancel_timer()
        await self._door_timeout(flow, courier_here=True)
        return flow

    async def dropoff_cancel(self, token: str | None, flow_id: str) -> Flow:
        flow = self.own_dropoff(token, flow_id)
        if flow.state in ("stored", "cancelled", "failed"):
            raise FlowError("wrong_state", f"this drop-off is already {flow.state}")
        if flow.active and flow.intent is not None and flow.compartment is not None:
            flow.cancel_timer()
            await self.db(self.store.release, flow.intent, "cancelled")
            self._by_compartment.pop(flow.compartment, None)
        flow.state = "cancelled"
        self._changed(flow)
        return flow

    def own_dropoff(self, token: str | None, flow_id: str) -> Flow:
        """The drop-off ``flow_id`` of the courier logged in with ``token``."""
        session = self.session(token, "deliver")
        flow = self.flow(flow_id, "dropoff")
        if flow.courier != session.courier.id:
            raise NotFound("unknown_flow", f"no dropoff {flow_id!r}")
        return flow

    async def _reserve_and_open(self, flow: Flow, size: str) -> None:
        assert flow.courier is not None and flow.barcode is not None
        reservation = await self.db(
            self.store.reserve_for_dropoff,
            flow.courier,
            flow.barcode,
            size,
            self.bank.unavailable(),
            flow.prefer_low,
        )
        flow.size, flow.offered_size, flow.error = size, None, None
        await self._open(flow, reservation)

    # -- service -----------------------------------------------------------------

    async def return_to_service(self, comp_id: str, actor: str) -> str:
        """Put a checked compartment back in use; its door must be shut and its lock latched."""
        if comp_id not in self.config.compartment_ids:
            raise NotFound("unknown_compartment", f"no compartment {comp_id!r}")
        await self.require_shut_and_latched(comp_id)
        return await self.db(self.store.return_to_service, comp_id, actor)

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
                status=503,
            ) from exc

    # -- pickup -----------------------------------------------------------------

    async def pickup(self, code: object) -> Flow:
        problem = codes.check_code_format(code, await self.db(self.store.code_lengths))
        if problem is not None:
            raise BadRequest("invalid_code", problem, field="code")
        reservation = await self.db(self.store.reserve_for_pickup, code, self.unreachable())
        return await self._pickup(reservation)

    def unreachable(self) -> set[str]:
        """Compartments whose lock, door or item board is silent now: not to be pulsed."""
        return {c for c in self.config.compartment_ids if not self.bank.board_online(c)}

    async def pickup_token(self, token: object) -> Flow:
        """A pickup by QR code: verified offline, then single use."""
        locker_id, now = self.config.locker.id, self.clock.time()
        try:
            claims = qrtoken.verify(token, self._qr_keys, locker_id, now)
        except qrtoken.ForgedToken:
            raise await self.db(self.store.forged_token) from None
        reservation = await self.db(self.store.reserve_for_token, claims, self.unreachable())
        return await self._pickup(reservation)

    async def _pickup(self, reservation: Reservation) -> Flow:
        flow = self._track(Flow("pickup", "opening", size=reservation.size))
        await self._open(flow, reservation)
        self._changed(flow)
        return flow

    async def open_reserved(self, kind: str, reservation: Reservation) -> Flow:
        """Open a door whose intent is committed: a ``remote`` command or a ``service`` open."""
        flow = self._track(Flow(kind, "opening", size=reservation.size))
        await self._open(flow, reservation)
        self._changed(flow)
        return flow

    # -- courier collection of expired parcels ---------------------------------

    async def collectable(self, token: str | None) -> list[dict[str, Any]]:
        self.session(token, "collect")
        return await self.db(self.store.collectable)

    async def collect(self, token: str | None, parcel_id: object) -> Flow:
        session = self.session(token, "collect")
        if not isinstance(parcel_id, int) or isinstance(parcel_id, bool):
            raise BadRequest(
                "invalid_field", "parcel must be a parcel id (an integer)", field="parcel"
            )
        if session.flow is not None and session.flow.active:
            raise FlowError("door_in_progress", "finish the open door first")
        reservation = await self.db(
            self.store.reserve_for_collect, session.courier.id, parcel_id, self.unreachable()
        )
        flow = Flow("collect", "opening", courier=session.courier.id, barcode=reservation.barcode)
        flow.size = reservation.size
        session.flow = self._track(flow)
        await self._open(flow, reservation)
        self._changed(flow)
        return flow

    # -- opening a door ----------------------------------------------------------

    async def _open(self, flow: Flow, reservation: Reservation) -> None:
        flow.compartment, flow.intent = reservation.compartment_id, reservation.intent_id
        flow.state, flow.attempt, flow.alarm = "opening", 1, None
        self._by_compartment[reservation.compartment_id] = flow
        await self._pulse(flow, 1)
        flow.timer = self._later(
            self.config.timing.door_open_timeout_s, lambda: self._door_timeout(flow)
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
        await self.db(self.store.record_pulse, flow.compartment, flow.intent, attempt)

    async def _door_timeout(self, flow: Flow, courier_here: bool = False) -> None:
        """The door did not open in time (or the courier says so: ``courier_here``)."""
        flow.timer = None
        if flow.state != "opening" or flow.compartment is None or flow.intent is None:
            return
        if flow.attempt == 1:
            try:
                outcome = await self.bank.retry_pulse(flow.compartment, flow.intent)
            except (DriverError, SafetyError) as exc:
                log.warning("status read of %s before re-pulse failed: %s", flow.compartment, exc)
                outcome = "unreadable"
            if outcome != "unreadable":
                flow.attempt = 2
                if outcome == "pulsed":
                    await self.db(self.store.record_pulse, flow.compartment, flow.intent, 2)
                timeout = self.config.timing.door_open_timeout_s
                flow.timer = self._later(timeout, lambda: self._door_timeout(flow))
                self._changed(flow)
                return
        await self._give_up(flow, courier_here)

    async def _give_up(self, flow: Flow, courier_here: bool = False) -> None:
        """Take the compartment whose door would not open out of service. A drop-off
        goes on to another compartment only when the courier is at the kiosk to say
        so: one who walked away must not leave door after door pulsed and broken."""
        assert flow.compartment is not None and flow.intent is not None
        await self.db(self.store.unlock_failed, flow.intent)
        self._by_compartment.pop(flow.compartment, None)
        failed = flow.compartment
        flow.compartment = flow.intent = None
        size = flow.size if flow.kind == "dropoff" else None
        if (
            size is not None
            and not courier_here
            and await self.db(self.store.has_room, size, self.bank.unavailable())
        ):
            flow.state, flow.offered_size = "did_not_open", flow.size
            flow.error = {
                "code": "door_did_not_open",
                "message": f"{failed} did not open",
                "compartment": failed,
            }
        elif size is not None:
            try:
                await self._reserve_and_open(flow, size)
            except FlowError as exc:
                flow.state, flow.error = "failed", {"code": exc.code, "message": exc.message}
        else:  # a pickup or collection: the parcel is behind that door and nowhere else
            flow.state = "failed"
            flow.error = {"code": "compartment_out_of_order", "message": f"{failed} would not open"}
        self._changed(flow)

    # -- doors ---------------------------------------------------------------------

    def _on_door(self, comp_id: str, door: Door, previous: Door, item: bool | None) -> None:
        if previous == Door.UNKNOWN and door == Door.CLOSED:
            return  # a board answering again with the door as it was: nothing happened
        self._door_queue.put_nowait((comp_id, door, item))

    def _on_health(self, board: str, online: bool) -> None:
        self._spawn(self.db(self.store.board_health, board, online))

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
        result = await self.db(self.store.door_opened, comp_id)
        self._arm_left_open(comp_id)
        flow = self._by_compartment.get(comp_id)
        if result["forced"] or flow is None or flow.intent != result["intent"]:
            return
        flow.cancel_timer()
        flow.state = "open"
        self._changed(flow)

    async def _door_closed(self, comp_id: str, item: bool | None) -> None:
        timer = self._left_open.pop(comp_id, None)
        if timer is not None:
            timer.cancel()
        result = await self.db(self.store.door_closed, comp_id, item)
        flow = self._by_compartment.get(comp_id)
        if flow is None or result["completed"] is None or flow.intent != result.get("intent"):
            return
        del self._by_compartment[comp_id]
        mismatch = MISMATCH.get(result["completed"])
        if mismatch is not None:
            code, message = mismatch
            flow.state = "failed"
            flow.error = {"code": code, "message": message.format(comp_id)}
        else:
            flow.state = FINISHED.get(result["completed"], "collected")
        flow.parcel = result.get("parcel")
        self._changed(flow)

    def _arm_left_open(self, comp_id: str) -> None:
        if comp_id in self._left_open:
            return
        self._left_open[comp_id] = self._later(
            self.config.timing.door_left_open_s, lambda: self._door_left_open(comp_id)
        )

    async def _door_left_open(self, comp_id: str) -> None:
        if self._left_open.pop(comp_id, None) is None or self.bank.door(comp_id) != Door.OPEN:
            return
        await self.db(self.store.door_left_open, comp_id)
        flow = self._by_compartment.get(comp_id)
        if flow is not None:
            flow.alarm = "left_open"
            self._changed(flow)

    # -- deadlines ---------------------------------------------------------------------

    def _arm_sweep(self) -> None:
        self._sweep = self._later(self.config.timing.expiry_sweep_s, self._expire)

    async def _expire(self) -> None:
        try:
            await self.db(self.store.expire_due)
        finally:
            self._arm_sweep()

    # -- views -----------------------------------------------------------------------------

    async def bank_view(self) -> list[dict[str, Any]]:
        rows = await self.db(self.store.compartments)
        view = []
        for comp in self.config.compartment:
            row = next(r for r in rows if r["id"] == comp.id)
            view.append(
                {
                    "id": comp.id,
                    "size": comp.size,
                    "column": comp.column,
                    "row": comp.row,
                    "low_reach": comp.low_reach,
                    "state": row["state"],
                    "reason": row["reason"],
                    "door": str(self.bank.door(comp.id)),
                    "lock": self._lock_view(comp.id, comp.board),
                    "parcel": row["parcel_barcode"],
                }
            )
        return view

    def _lock_view(self, comp_id: str, board: str) -> str | None:
        """The lock as the poller last read it: ``latched``, ``released``, ``unknown`` (its
        board is silent), or None where the board reports no latch."""
        if not self.bank.boards[board].config.has_feedback:
            return None
        latched = self.bank.latched(comp_id)
        return "unknown" if latched is None else "latched" if latched else "released"
