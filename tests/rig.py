"""A whole locker in one process on a fake clock: real store, real bank, CU16 twin in-process.

Board calls and store calls run inline on the loop, and the simulator
answers real CU16 bytes through a DirectLink, so advancing the FakeClock
is all it takes to move a flow on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, TypeVar

from drivers.kerong import cu16
from drivers.kerong.sim import Cu16Simulator
from drivers.simworld import SimDoor
from lockerd.clock import FakeClock
from lockerd.config import Config
from lockerd.daemon import assemble
from lockerd.domain import Door
from lockerd.locker import Locker
from lockerd.store import Store
from lockerd.worker import Runner
from tests import families, inline
from tests.inline import InlineRunner

T = TypeVar("T")


def bank_config(
    state: Path, *, locked_bit: int = 1, closed_bit: int = 1, family: str = "kerong-cu16"
) -> Config:
    """The test bank on one board of ``family``, simulated (the board is always "cu0")."""
    data = families.bank(state, family=family, locked_bit=locked_bit, closed_bit=closed_bit)
    return families.config(data, state)


def bank_text(
    state: Path, *, locked_bit: int = 1, closed_bit: int = 1, family: str = "kerong-cu16"
) -> str:
    """The TOML of :func:`bank_config`, for a test about reading it."""
    data = families.bank(state, family=family, locked_bit=locked_bit, closed_bit=closed_bit)
    return families.text(data)


class Rig:
    def __init__(
        self,
        config: Config,
        clock: FakeClock | None = None,
        bus_time: bool = False,
        notices: bool | None = True,
        runner: Runner | None = None,
    ):
        """``bus_time``: every serial exchange costs its wire time (and a missing reply
        its whole timeout) on the fake clock, as on a real line. ``notices``: the rig
        stands in for the back office, so pickup codes wait for it (``None``: as the
        config says, and the test bank has neither sync nor the demo page). ``runner``:
        how store calls run (default: inline, at once)."""
        self.config = config
        self.clock = clock or FakeClock()
        self.hw = inline.build(
            config, now=self.clock.monotonic, spend=self.clock.spend if bus_time else None
        )
        self.sim: Cu16Simulator = self.hw.serial_sims.get("rs485")  # type: ignore[assignment]
        #: A GPIO pulse is timed in real time by the board while the fake clock
        #: stands still, so nobody could pull the door during it: on GPIO banks
        #: people stand at the doors with a hand on the handle (see person_opens).
        self.hands = bool(self.hw.gpio_sims)
        self._nobody: set[str] = set()
        self._arm_hands()
        self.store = Store.open(config, self.clock, notices=notices)
        self.store.compartments.sync_layout()
        self.store.seed_demo(config.demo)
        self.locker: Locker = assemble(
            config, self.store, self.hw, self.clock, runner or InlineRunner()
        )
        self.api = _Driven(self)
        self.messages: list[dict[str, Any]] = []

    async def start(self) -> Rig:
        queue = self.locker.subscribe()
        await self.locker.start()
        self._collector = asyncio.get_running_loop().create_task(self._collect(queue))
        self._start_pollers()
        await self.clock.drain()
        return self

    def _start_pollers(self) -> None:
        loop = asyncio.get_running_loop()
        self._pollers = [
            loop.create_task(self.locker.bank.run_poller(bus.name)) for bus in self.config.bus
        ]

    async def jump(self, seconds: float) -> None:
        """Let hours pass with no door moving: the pollers sleep through them."""
        for task in self._pollers:
            task.cancel()
        await asyncio.gather(*self._pollers, return_exceptions=True)
        await self.clock.advance(seconds)
        self._start_pollers()
        await self.clock.drain()

    async def _collect(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        while True:
            self.messages.append(await queue.get())

    async def stop(self) -> None:
        for task in (*self._pollers, self._collector):
            task.cancel()
        await asyncio.gather(*self._pollers, self._collector, return_exceptions=True)
        await self.locker.stop()
        self.hw.close()
        self.store.close()

    async def run(self, call: Awaitable[T]) -> T:
        """Await ``call`` while time passes, as a kiosk waiting on a request would."""
        task = asyncio.ensure_future(call)
        await self.clock.drain()
        while not task.done():
            await self.clock.advance(0.05)
        return task.result()

    # -- the simulated world ---------------------------------------------

    def door(self, comp_id: str) -> SimDoor:
        door = self.hw.sim_door(next(c for c in self.config.compartment if c.id == comp_id))
        assert door is not None
        return door

    async def polls(self, count: int | None = None) -> None:
        """Let the poller run ``count`` times (default: enough to pass the debounce)."""
        count = self.config.timing.debounce_polls if count is None else count
        board = self.locker.bank.boards[self.config.compartment[0].door_board]
        target = board.reads + board.failures + count
        step = self.config.timing.poll_interval_ms / 1000 / 2
        while board.reads + board.failures < target:
            await self.clock.advance(step)

    def _arm_hands(self) -> None:
        if not self.hands:
            return
        for comp in self.config.compartment:
            if comp.id not in self._nobody:
                self.door(comp.id).hand = True

    def nobody_at(self, comp_id: str) -> None:
        """Nobody stands at ``comp_id``: its door is not pulled when its latch releases."""
        self._nobody.add(comp_id)
        self.door(comp_id).hand = False

    async def person_opens(
        self, comp_id: str, put_in: bool = False, take_out: bool = False
    ) -> None:
        """A person pulls the door (it opens only while its latch is out, or opened already
        under their hand during the pulse), puts in or takes out what is asked, and the
        poller sees the door open."""
        door = self.door(comp_id)
        assert door.open(), f"{comp_id} would not open (latched: {door.latched})"
        if put_in:
            door.put_in()
        if take_out:
            door.take_out()
        await self.seen(comp_id, Door.OPEN)

    async def person_closes(self, comp_id: str) -> None:
        self.door(comp_id).close()
        self._arm_hands()
        await self.seen(comp_id, Door.CLOSED)

    async def seen(self, comp_id: str, door: Door, within: float = 10.0) -> None:
        """Let the pollers run until the bank accepts ``door`` for ``comp_id`` and the
        door worker has handled it (at most ``within`` seconds of fake time)."""
        deadline = self.clock.monotonic() + within
        step = self.config.timing.poll_interval_ms / 1000 / 2
        while self.locker.bank.door(comp_id) != door:
            assert self.clock.monotonic() < deadline, f"{comp_id} never seen {door}"
            await self.clock.advance(step)
        await self.polls(1)

    def unlock_frames(self) -> list[bytes]:
        return [f for f in self.sim.frames() if f[2] == cu16.CMD_UNLOCK]

    def unlocks_of(self, comp_id: str) -> int:
        """Pulses the lock itself received (whatever the board family)."""
        return len(self.door(comp_id).pulses)

    # -- reading the store ---------------------------------------------------

    def state(self, comp_id: str) -> str:
        return str(self.store.compartments.get(comp_id).state)

    def event_types(self) -> list[str]:
        return [e["type"] for e in self.store.journal.events()]

    def code_for(self, barcode: str) -> str:
        return next(n.code for n in self.store.parcels.notices() if n.barcode == barcode)

    async def courier(self, code: str = "4321") -> str:
        token, _ = await self.api.courier_login(code)
        return token

    async def stored(self, barcode: str, size: str | None = None) -> str:
        """Drop a parcel off all the way (the courier puts it in); return its compartment."""
        token = await self.courier()
        flow = await self.api.dropoff_scan(token, barcode, size)
        assert flow.compartment is not None, flow.view()
        await self.person_opens(flow.compartment, put_in=True)
        await self.person_closes(flow.compartment)
        assert flow.state == "stored", flow.view()
        return flow.compartment


class _Driven:
    """``rig.api.X(...)`` is ``rig.locker.X(...)`` awaited with the clock moving (and
    ``rig.api.pickups.X(...)`` is ``rig.locker.pickups.X(...)``)."""

    def __init__(self, rig: Rig, target: Any = None):
        self._rig = rig
        self._target = rig.locker if target is None else target

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._target, name)
        if not callable(method):  # a part of the locker: its methods, driven alike
            return _Driven(self._rig, method)

        def call(*args: Any, **kwargs: Any) -> Awaitable[Any]:
            return self._rig.run(method(*args, **kwargs))

        return call
