"""The bank: compartments mapped to board channels, under the lock-safety rules.

Rules enforced here, below every flow (DESIGN.md invariants 1, 4 and 5):

- a lock is pulsed only for an unlock intent the store confirms is committed
  and live for that compartment;
- one energized lock per power group, with a gap between pulses;
- no pulse longer than ``safety.max_pulse_ms``;
- a cooldown per lock;
- a retry only after a fresh status read shows the lock still latched and
  the door still shut.

What counts as a door opening depends on how the door is read. A door
sensor is its own evidence. A door read from its lock's switch reads
"released" for the whole energize time of every pulse, whether or not
anybody pulls the door (the latch catches again when the pulse ends if the
door did not move), so such a release counts as the door opening only when
it outlasts the board's energize time plus ``timing.release_margin_ms``.

Each bus has one thread that owns its link; every board call goes through
it, so one request is in flight per bus. Door and lock signals are kept
apart and decoded with each board's configured polarity. A board that has
gone silent is tried once every ``timing.offline_probe_s``, never in every
poll, so the healthy boards on its bus keep their pace; a board with a
door just unlocked is read every ``timing.fast_poll_ms`` until the door is
seen open or the door-open timeout ends.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from drivers.base import Inputs, LockBoard
from drivers.errors import DriverError
from lockerd.clock import Clock
from lockerd.config import Config
from lockerd.config.schema import CompartmentConfig
from lockerd.domain import Door
from lockerd.errors import LockerError
from lockerd.families import BoardConfig
from lockerd.worker import Runner

log = logging.getLogger(__name__)
T = TypeVar("T")
V = TypeVar("V")

#: Settle time before a read that confirms a door change (switch bounce is
#: over within a few ms; a glitch on the line is gone by then).
CONFIRM_GAP = 0.02
#: The shortest reply timeout a silent board is probed with: the longest status
#: exchange (a CU48's 24 bytes at 9600 baud) is 25 ms on the wire.
PROBE_MIN = 0.05


class SafetyError(LockerError, RuntimeError):
    """A pulse the safety rules refuse (no committed intent, too long, blind retry)."""


@dataclass(frozen=True)
class LockStatus:
    """A fresh read of one compartment: its door, and its latch where the board reports one."""

    door: Door
    latched: bool | None


@dataclass
class BoardState:
    """What the poller knows about one board."""

    config: BoardConfig
    driver: LockBoard
    bus: str
    online: bool = True
    missed: int = 0
    reads: int = 0
    failures: int = 0
    #: When a silent board is next tried (monotonic seconds).
    next_probe: float = 0.0
    #: Its last answer, if that left every input it senses accepted: the same answer
    #: again changes nothing, so it is not decoded again (a bank at rest costs per board).
    at_rest: Inputs | None = None


@dataclass
class _Debounced(Generic[V]):
    """A sensor value accepted only after enough equal reads in a row."""

    accepted: V
    candidate: V
    seen: int = 0

    def settle(self, value: V) -> None:
        """Take ``value`` as it is (a read at start-up)."""
        self.accepted, self.candidate, self.seen = value, value, 0

    def count(self, value: V, needed: int) -> bool:
        """One read; True when it makes ``value`` the accepted one."""
        if value == self.accepted or value != self.candidate:
            self.candidate, self.seen = value, 0
        if value == self.accepted:
            return False
        self.seen += 1
        if self.seen < needed:
            return False
        self.accepted, self.seen = value, 0
        return True

    @property
    def pending(self) -> bool:
        """A different value has been read and waits for more equal reads."""
        return self.candidate != self.accepted


@dataclass
class _Group:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    ready_at: float = 0.0
    gap: float = 0.0


Authorize = Callable[[str, int], Awaitable[bool]]
#: ``(compartment, door, previous door, item seen inside or None without a sensor)``
DoorListener = Callable[[str, Door, Door, bool | None], None]
HealthListener = Callable[[str, bool], None]


class Bank:
    """Owns the boards of one locker and every pulse sent to them."""

    def __init__(
        self,
        config: Config,
        drivers: dict[str, LockBoard],
        workers: dict[str, Runner],
        clock: Clock,
        authorize: Authorize,
    ):
        self.config = config
        self.clock = clock
        self._authorize = authorize
        self._workers = workers
        self.boards = {b.name: BoardState(b, drivers[b.name], b.bus) for b in config.boards}
        self._layout = {c.id: c for c in config.compartment}
        self._doors = {c.id: _Debounced(Door.UNKNOWN, Door.UNKNOWN) for c in config.compartment}
        self._items: dict[str, _Debounced[bool | None]] = {
            c.id: _Debounced(None, None) for c in config.compartment if c.item_sensor
        }
        #: Per board: the compartments whose lock, door and item sensor it has.
        self._locks_on = _by_board(config.compartment, lambda c: c.board)
        self._doors_on = _by_board(config.compartment, lambda c: c.door_board)
        self._items_on = _by_board(
            [c for c in config.compartment if c.item_sensor], lambda c: c.items_board
        )
        #: The latch of each compartment as last read (None: the board reports none).
        self._latched: dict[str, bool | None] = {}
        #: Until when a hook-read release of a just-pulsed lock is not evidence.
        self._pulse_window: dict[str, float] = {}
        #: Compartments whose door is awaited after a pulse, until when.
        self._awaited: dict[str, float] = {}
        #: Set by a pulse: its bus's poller stops resting and reads fast.
        self._wake = {bus.name: asyncio.Event() for bus in config.bus}
        self._groups = {g.name: _Group(gap=g.gap_ms / 1000) for g in config.power_group}
        #: Completed polls per bus (the watchdog is fed only while each keeps moving).
        self.polls: Counter[str] = Counter({bus.name: 0 for bus in config.bus})
        self._lock_ready: dict[str, float] = {}
        self.door_listeners: list[DoorListener] = []
        self.health_listeners: list[HealthListener] = []
        #: Bumped when what door(), latched() or a board's health say changes (a view's version).
        self.changes = 0

    # -- board calls -------------------------------------------------------

    async def _on_bus(self, bus: str, fn: Callable[..., T], *args: Any) -> T:
        return await self._workers[bus](fn, *args)

    async def probe(self, name: str) -> dict[str, Any]:
        """Read board ``name`` once on its bus, as a technician's bus scan: answer time or error."""
        board = self.boards[name]
        started = time.perf_counter()
        try:
            await self._on_bus(board.bus, board.driver.read_inputs)
            error = None
        except DriverError as exc:
            error = str(exc)
        return {"answer_ms": round((time.perf_counter() - started) * 1000, 2), "error": error}

    def _board_of(self, comp_id: str) -> tuple[CompartmentConfig, BoardState]:
        comp = self._layout[comp_id]
        return comp, self.boards[comp.board]

    # -- pulses ------------------------------------------------------------

    async def pulse(self, comp_id: str, intent_id: int) -> None:
        """Pulse ``comp_id``'s lock once for ``intent_id``, under every safety rule.

        Raises:
            SafetyError: the intent is not committed and live for this compartment.
            drivers.errors.DriverError: the board could not be reached.
        """
        comp, board = self._board_of(comp_id)
        pulse_ms = self.config.safety.pulse_ms
        if pulse_ms > self.config.safety.max_pulse_ms:
            raise SafetyError(f"pulse {pulse_ms} ms exceeds max_pulse_ms")
        group = self._groups[board.config.power_group]
        async with group.lock:
            ready = max(group.ready_at, self._lock_ready.get(comp_id, 0.0))
            wait = ready - self.clock.monotonic()
            if wait > 0:
                await self.clock.sleep(wait)
            # Checked after any wait, right before the coil: an intent cancelled
            # while this pulse waited its turn must not open the door.
            if not await self._authorize(comp_id, intent_id):
                raise SafetyError(f"no committed unlock intent {intent_id} for {comp_id}")
            start = self.clock.monotonic()
            energize = self.energize_s(comp_id)
            # Set before the frame goes out: the board may act on it even if the call fails.
            margin = self.config.timing.release_margin_ms / 1000
            self._pulse_window[comp_id] = start + energize + margin
            self._awaited[comp_id] = start + self.config.timing.door_open_timeout_s
            self._wake[self.boards[comp.door_board].bus].set()
            try:
                await self._on_bus(board.bus, board.driver.pulse, comp.lock, pulse_ms)
            finally:
                # Count the coil as energized for the whole pulse even if the
                # call failed part-way: the board may have acted on the frame.
                group.ready_at = start + max(pulse_ms / 1000, energize) + group.gap
                self._lock_ready[comp_id] = start + self.config.safety.cooldown_s

    def is_pulse_over(self, comp_id: str) -> bool:
        """Whether ``comp_id``'s last pulse (energize time plus ``timing.release_margin_ms``)
        can no longer be what holds its latch out."""
        return self.clock.monotonic() >= self._pulse_window.get(comp_id, -math.inf)

    def energize_s(self, comp_id: str) -> float:
        """How long a pulse keeps ``comp_id``'s coil energized: the board's own energize
        time where the board times it (Kerong, 0x8A), else the pulse this process asks for."""
        board = self.boards[self._layout[comp_id].board].config
        return (getattr(board, "energize_ms", 0) or self.config.safety.pulse_ms) / 1000

    async def pulse_over(self, comp_id: str) -> None:
        """Wait until the last pulse of ``comp_id``'s lock is over (its energize time plus
        ``timing.release_margin_ms``): a latch read before then may find the coil still
        holding it out, even behind a door already shut."""
        wait = self._pulse_window.get(comp_id, 0.0) - self.clock.monotonic()
        if wait > 0:
            await self.clock.sleep(wait)

    async def status(self, comp_id: str) -> LockStatus:
        """Read the boards now (not the poller's cached view): the lock's, and the door's."""
        comp, board = self._board_of(comp_id)
        inputs = await self._on_bus(board.bus, board.driver.read_inputs)
        latched = latch_of(board.config, comp, inputs)
        self.changes += self._latched.get(comp_id) != latched
        self._latched[comp_id] = latched
        board.at_rest = None  # the latch taken from this read: the next poll's is taken too
        sensing = self.boards[comp.door_board]
        if sensing is not board:
            inputs = await self._on_bus(sensing.bus, sensing.driver.read_inputs)
        return LockStatus(door_of(sensing.config, comp, inputs), latched)

    async def retry_pulse(self, comp_id: str, intent_id: int) -> str:
        """Re-pulse only if a fresh status read shows the latch still caught and the door shut.

        Returns ``"pulsed"``, ``"released"`` (the latch is already free: no pulse)
        or ``"open"`` (the door is open: no pulse).

        Raises:
            drivers.errors.DriverError: the status could not be read, so no pulse was sent.
        """
        await self.pulse_over(comp_id)  # a latch read under the coil says nothing
        status = await self.status(comp_id)
        if status.door == Door.OPEN:
            return "open"
        if status.latched is False:
            return "released"
        if status.door != Door.CLOSED:
            raise SafetyError(f"door sensor of {comp_id} unreadable; not re-pulsing blind")
        await self.pulse(comp_id, intent_id)
        return "pulsed"

    # -- doors ---------------------------------------------------------------

    def door(self, comp_id: str) -> Door:
        """The debounced door state the poller last accepted."""
        sensing = self.boards[self._layout[comp_id].door_board]
        return self._doors[comp_id].accepted if sensing.online else Door.UNKNOWN

    def latched(self, comp_id: str) -> bool | None:
        """The latch as the poller last read it; None where the board reports no latch
        or is silent."""
        if not self.boards[self._layout[comp_id].board].online:
            return None
        return self._latched.get(comp_id)

    def item(self, comp_id: str) -> bool | None:
        """Whether the item sensor (debounced) sees something inside; None without one."""
        track = self._items.get(comp_id)
        if track is None or not self.boards[self._layout[comp_id].items_board].online:
            return None
        return track.accepted

    def unreachable(self) -> set[str]:
        """Compartments a silent board (lock, door or item) serves: not to be pulsed. The
        boards are looked at, and the compartments only when one is silent."""
        silent = {name for name, board in self.boards.items() if not board.online}
        if not silent:
            return set()
        return {c.id for c in self._layout.values() if self._on_silent(c, silent)}

    def door_from_lock(self, comp_id: str) -> bool:
        """True where the door is read from the lock's own switch (no separate door sensor),
        so a released latch on a door that did not move reads as open."""
        comp, board = self._board_of(comp_id)
        return board.config.door_from_hook and comp.door_board == comp.board

    def unavailable(self) -> set[str]:
        """Compartments not to offer now: lock board silent, or door not known shut."""
        silent = {name for name, board in self.boards.items() if not board.online}
        shut = Door.CLOSED
        unknown = {c for c, track in self._doors.items() if track.accepted != shut}
        if not silent:
            return unknown
        return unknown | {c.id for c in self._layout.values() if self._on_silent(c, silent)}

    @staticmethod
    def _on_silent(comp: CompartmentConfig, silent: set[str]) -> bool:
        """Whether a board ``comp`` depends on (lock, door, item) is among ``silent``."""
        items = comp.items_board if comp.item_sensor else None
        return comp.board in silent or comp.door_board in silent or items in silent

    async def read_all(self) -> dict[str, Door]:
        """One read of every board, accepted without debounce (start-up)."""
        for name, board in self.boards.items():
            try:
                inputs = await self._on_bus(board.bus, board.driver.read_inputs)
            except DriverError as exc:
                log.warning("board %s did not answer at start: %s", name, exc)
                self._missed(board, force_offline=True)
                continue
            board.reads += 1
            for comp in self._doors_on.get(name, ()):
                self._doors[comp.id].settle(door_of(board.config, comp, inputs))
            self.changes += 1
            self._note_latches_and_items(name, board, inputs, settle=True)
        return {c: self.door(c) for c in self._layout}

    def _note_latches_and_items(
        self, name: str, board: BoardState, inputs: Inputs, settle: bool = False
    ) -> None:
        latched = self._latched
        for comp in self._locks_on.get(name, ()):
            seen = latch_of(board.config, comp, inputs)
            if comp.id not in latched or latched[comp.id] != seen:
                self.changes += 1
            latched[comp.id] = seen
        for comp in self._items_on.get(name, ()):
            seen = item_of(board.config, comp, inputs)
            if settle:
                self._items[comp.id].settle(seen)
            else:
                self._items[comp.id].count(seen, self.config.timing.debounce_polls)

    async def poll_bus(self, bus: str, started: float | None = None) -> None:
        """Read every board on ``bus`` once and report accepted changes.

        The healthy boards are read in one call on the bus's thread (one wake-up
        of the loop a poll, whatever the number of boards); each bus has its
        own thread and poller, so buses are polled in parallel.

        A read that shows a door change is confirmed by re-reading that board
        after :data:`CONFIRM_GAP` (up to ``debounce_polls`` reads in all), so a
        real change is reported within one poll period and a one-read glitch
        never is.

        A board that missed its last poll is read last, with one try whose
        reply timeout fits in what is left of the poll period (``started`` is
        when it began; at least :data:`PROBE_MIN`); once it counts as silent,
        only every ``timing.offline_probe_s`` and only in a poll that leaves
        that much time (or once it is a whole probe period overdue, on a bus
        too busy for that). A dead board never holds up the healthy ones.
        """
        mine = [(name, board) for name, board in self.boards.items() if board.bus == bus]
        healthy = [(name, board) for name, board in mine if board.online and not board.missed]
        # One hop to the bus thread for every healthy board's read: the loop wakes once a poll.
        answers = await self._on_bus(bus, _read_each, [board.driver for _, board in healthy])
        for (name, board), answer in zip(healthy, answers, strict=True):
            await self._read_confirmed(name, board, self._track_read(name, board, answer))
        interval = self.config.timing.poll_interval_ms / 1000
        for name, board in mine:
            if board.online and not board.missed:
                continue
            now = self.clock.monotonic()
            left = (started if started is not None else now) + interval - now
            overdue = now >= board.next_probe + self.config.timing.offline_probe_s
            due = board.online or (now >= board.next_probe and (left >= PROBE_MIN or overdue))
            if due:
                await self._read_and_track(name, board, probe=max(left, PROBE_MIN))

    async def _read_confirmed(
        self, name: str, board: BoardState, pending: bool | None = None
    ) -> None:
        """Read ``board`` (``pending``: what a read just made says) and re-read it while a
        door change waits for confirmation, up to ``debounce_polls`` reads."""
        reads = 0
        if pending is None:
            pending = await self._read_and_track(name, board)
        while pending:
            reads += 1
            if reads >= self.config.timing.debounce_polls:
                break
            await self.clock.sleep(CONFIRM_GAP)
            pending = await self._read_and_track(name, board)

    async def _read_and_track(
        self, name: str, board: BoardState, probe: float | None = None
    ) -> bool:
        """One read of ``board``; True if a door change is waiting for confirmation."""
        read = functools.partial(board.driver.read_inputs, probe=probe)
        try:
            answer: Inputs | DriverError = await self._on_bus(board.bus, read)
        except DriverError as exc:
            answer = exc
        return self._track_read(name, board, answer)

    def _track_read(self, name: str, board: BoardState, answer: Inputs | DriverError) -> bool:
        """Take one read's answer; True if a door change is waiting for confirmation."""
        if isinstance(answer, DriverError):
            self._missed(board)
            return False
        inputs = answer
        self._answered(board)
        if inputs == board.at_rest:
            return False
        self._note_latches_and_items(name, board, inputs)
        pending = False
        for comp in self._doors_on.get(name, ()):
            pending |= self._track(comp.id, door_of(board.config, comp, inputs))
        board.at_rest = inputs if self._accepted(name, board, inputs) else None
        return pending

    def _accepted(self, name: str, board: BoardState, inputs: Inputs) -> bool:
        """Whether every door and item ``board`` senses reads, in ``inputs``, what is
        accepted, with no other value waiting (nor a release masked by a pulse)."""
        doors, items = self._doors, self._items
        for comp in self._doors_on.get(name, ()):
            track = doors[comp.id]
            if track.pending or door_of(board.config, comp, inputs) != track.accepted:
                return False
        for comp in self._items_on.get(name, ()):
            item = items[comp.id]
            if item.pending or item_of(board.config, comp, inputs) != item.accepted:
                return False
        return True

    def _awaited_boards(self, bus: str) -> list[str]:
        """Boards on ``bus`` sensing a door that was just unlocked and is not yet seen open."""
        now = self.clock.monotonic()
        for comp_id, until in list(self._awaited.items()):
            if now >= until or self._doors[comp_id].accepted == Door.OPEN:
                del self._awaited[comp_id]
        names = {self._layout[c].door_board for c in self._awaited}
        return [
            name
            for name, board in self.boards.items()
            if name in names and board.bus == bus and board.online
        ]

    async def run_poller(self, bus: str) -> None:
        """Poll ``bus`` every ``timing.poll_interval_ms`` until cancelled; between polls, read
        boards with an awaited door every ``timing.fast_poll_ms``."""
        interval = self.config.timing.poll_interval_ms / 1000
        fast = self.config.timing.fast_poll_ms / 1000
        while True:
            started = self.clock.monotonic()
            try:
                await self.poll_bus(bus, started)
                self.polls[bus] += 1
                while (left := started + interval - self.clock.monotonic()) > 0:
                    awaited = self._awaited_boards(bus)
                    if not awaited:
                        await self._rest(bus, left)  # a pulse on this bus wakes it early
                        continue
                    await self.clock.sleep(min(fast, left))
                    for name in awaited:
                        await self._read_confirmed(name, self.boards[name])
            except Exception:  # a bug here must not stop the poller; the log says what
                log.exception("poll of bus %s failed", bus)
                await self.clock.sleep(max(0.0, interval - (self.clock.monotonic() - started)))

    async def _rest(self, bus: str, seconds: float) -> None:
        """Sleep ``seconds``, or until a pulse wants a board on ``bus`` read fast (one timer
        and one wait: no task of its own)."""
        wake = self._wake[bus]
        wake.clear()
        timer = self.clock.call_later(seconds, wake.set)
        try:
            await wake.wait()
        finally:
            timer.cancel()

    def _track(self, comp_id: str, door: Door) -> bool:
        """Count one read of a door; True while a change waits for more equal reads."""
        track = self._doors[comp_id]
        if (
            door == Door.OPEN
            and track.accepted != Door.OPEN
            and self.door_from_lock(comp_id)
            and self.clock.monotonic() < self._pulse_window.get(comp_id, -1.0)
        ):
            # The latch is out because the coil is (or was just) energized; that
            # says nothing about the door until the release outlasts the pulse.
            door = track.accepted
        previous = track.accepted
        if not track.count(door, self.config.timing.debounce_polls):
            return track.pending
        self.changes += 1
        item = self.item(comp_id)
        for listener in self.door_listeners:
            listener(comp_id, door, previous, item)
        return False

    def _missed(self, board: BoardState, force_offline: bool = False) -> None:
        board.at_rest = None
        board.missed += 1
        board.failures += 1
        board.next_probe = self.clock.monotonic() + self.config.timing.offline_probe_s
        limit = self.config.timing.offline_after_polls
        if board.online and (force_offline or board.missed >= limit):
            board.online = False
            self.changes += 1
            for listener in self.health_listeners:
                listener(board.config.name, False)

    def _answered(self, board: BoardState) -> None:
        board.reads += 1
        board.missed = 0
        if not board.online:
            board.online = True
            self.changes += 1
            for listener in self.health_listeners:
                listener(board.config.name, True)

    async def close(self) -> None:
        for board in self.boards.values():
            board.driver.release_now()  # a pulse this process times (GPIO) ends now
        for name, board in self.boards.items():
            try:
                await self._on_bus(board.bus, board.driver.close)
            except Exception:  # one failing board must not stop the others being released
                log.exception("closing board %s failed", name)


def _read_each(drivers: list[LockBoard]) -> list[Inputs | DriverError]:
    """In the bus thread: each board read once, in order; a board's error is its answer."""
    answers: list[Inputs | DriverError] = []
    for driver in drivers:
        try:
            answers.append(driver.read_inputs())
        except DriverError as exc:
            answers.append(exc)
    return answers


def _by_board(
    comps: Iterable[CompartmentConfig], board_of: Callable[[CompartmentConfig], str]
) -> dict[str, list[CompartmentConfig]]:
    out: dict[str, list[CompartmentConfig]] = {}
    for comp in comps:
        out.setdefault(board_of(comp), []).append(comp)
    return out


def latch_of(board: BoardConfig, comp: CompartmentConfig, inputs: Inputs) -> bool | None:
    """The lock board's polarity applied to its feedback bit; None where it reports none."""
    if not board.has_feedback:
        return None
    return ((inputs.locks >> (comp.lock - 1)) & 1) == board.locked_bit


def item_of(board: BoardConfig, comp: CompartmentConfig, inputs: Inputs) -> bool:
    """The item-sensor board's polarity applied to the compartment's item input."""
    bit = (inputs.sensors >> (comp.item_sensor - 1)) & 1
    return bit == getattr(board, "item_bit", 1)


def door_of(board: BoardConfig, comp: CompartmentConfig, inputs: Inputs) -> Door:
    """The sensing board's polarity applied to the door's bit (the lock's, on hook-only boards)."""
    if board.door_from_hook:
        return Door.CLOSED if latch_of(board, comp, inputs) else Door.OPEN
    sensor_bit = (inputs.sensors >> (comp.sensor_channel - 1)) & 1
    return Door.CLOSED if sensor_bit == board.closed_bit else Door.OPEN


def decode(board: BoardConfig, comp: CompartmentConfig, inputs: Inputs) -> LockStatus:
    """Door and latch of a compartment whose lock and door switch are on one board."""
    return LockStatus(door_of(board, comp, inputs), latch_of(board, comp, inputs))
