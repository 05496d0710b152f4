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
from lockerd import hardware
from lockerd.clock import FakeClock
from lockerd.config import Config, parse
from lockerd.daemon import assemble
from lockerd.domain import Door
from lockerd.locker import Locker
from lockerd.store import Store
from lockerd.worker import Worker

BANK = """
[locker]
id = "test-locker"
[state]
directory = "{state}"
[kiosk]
port = 0
[timing]
door_open_timeout_s = 20
door_left_open_s = 120
poll_interval_ms = 200
debounce_polls = 2
offline_after_polls = 3
expiry_sweep_s = 60
courier_idle_s = 300
[pickup]
code_length = 8
hold_hours = 72
[pickup.throttle]
free_failures = 2
backoff_base_s = 2
backoff_max_s = 60
lockout_after = 6
lockout_s = 900
[safety]
pulse_ms = 500
max_pulse_ms = 1000
cooldown_s = 3
[[size]]
name = "S"
[[size]]
name = "M"
[[size]]
name = "L"
[[power_group]]
name = "psu"
gap_ms = 300
[[bus]]
name = "rs485"
protocol = "kerong-cu16"
simulator = true
[[board]]
name = "cu0"
bus = "rs485"
power_group = "psu"
address = 0
locked_bit = {locked_bit}
closed_bit = {closed_bit}
door_input = "sensor"
[[compartment]]
id = "S1"
size = "S"
column = 1
row = 1
board = "cu0"
lock = 1
[[compartment]]
id = "S2"
size = "S"
column = 1
row = 2
board = "cu0"
lock = 2
[[compartment]]
id = "M1"
size = "M"
column = 2
row = 1
board = "cu0"
lock = 3
[[compartment]]
id = "M2"
size = "M"
column = 2
row = 2
board = "cu0"
lock = 4
low_reach = true
[[compartment]]
id = "L1"
size = "L"
column = 3
row = 1
board = "cu0"
lock = 5
sensor = 9
[demo]
couriers = [
  {{ id = "c1", code = "4321", name = "Courier One", rights = ["deliver", "collect"] }},
  {{ id = "c2", code = "5555", rights = ["collect"] }},
  {{ id = "c3", code = "7777" }},
]
expected_parcels = [{{ barcode = "EXP0001", size = "M", recipient = "flat-1" }}]
"""

T = TypeVar("T")


FAMILIES = (
    "kerong-cu16",
    "kerong-cu16-hook",
    "kerong-cu48",
    "kerong-cu48-hook",
    "generic-8a",
    "gpio",
    "modbus-rtu",
    "gpio+mcp23017",
    "generic-8a+pcf8574",
)

EXPANDER = """
[[bus]]
name = "i2c"
protocol = "i2c"
simulator = true
[[board]]
name = "doors"
bus = "i2c"
chip = "{chip}"
address = {address}
"""


def bank_config(
    state: Path, *, locked_bit: int = 1, closed_bit: int = 1, family: str = "kerong-cu16"
) -> Config:
    """The test bank on one board of ``family``, simulated (the board is always "cu0")."""
    text = bank_text(state, locked_bit=locked_bit, closed_bit=closed_bit, family=family)
    return parse(text, state / "locker.toml")


def bank_text(
    state: Path, *, locked_bit: int = 1, closed_bit: int = 1, family: str = "kerong-cu16"
) -> str:
    """The TOML of :func:`bank_config`, for a test that adds to it."""
    text = BANK.format(state=state, locked_bit=locked_bit, closed_bit=closed_bit)
    board = f"address = 0\nlocked_bit = {locked_bit}\nclosed_bit = {closed_bit}"
    locks = family.partition("+")[0]
    if locks.endswith("-hook"):  # no door switches: each door is read from its lock's switch
        locks = locks.removesuffix("-hook")
        text = text.replace('door_input = "sensor"', 'door_input = "hook"')
        text = text.replace("lock = 5\nsensor = 9", "lock = 5")
    if locks == "kerong-cu48":
        text = text.replace('protocol = "kerong-cu16"', 'protocol = "kerong-cu48"')
    elif locks == "modbus-rtu":
        text = text.replace(
            'protocol = "kerong-cu16"\nsimulator = true',
            'protocol = "modbus-rtu"\nsimulator = true\nbaud = 9600\ntimeout_ms = 100',
        )
        text = text.replace(
            f'{board}\ndoor_input = "sensor"',
            f"address = 1\nrelays = 8\ninputs = 16\nclosed_bit = {closed_bit}",
        )
    elif locks == "generic-8a":
        text = text.replace('protocol = "kerong-cu16"', 'protocol = "generic-8a"')
        text = text.replace(
            f'{board}\ndoor_input = "sensor"', f"address = 1\nlocks = 16\nlocked_bit = {locked_bit}"
        )
        text = text.replace("lock = 5\nsensor = 9", "lock = 5")  # the door is the lock's switch
    elif locks == "gpio":
        text = text.replace(
            'protocol = "kerong-cu16"\nsimulator = true', 'protocol = "gpio"\npin_factory = "mock"'
        )
        pins = "lock_pins = [17, 27, 22, 23, 24]"
        if family == "gpio":
            pins += "\ndoor_pins = [5, 6, 13, 19, 26, 12, 16, 20, 21]"
        text = text.replace(f'{board}\ndoor_input = "sensor"', f"{pins}\nclosed_bit = {closed_bit}")
        text = text.replace("pulse_ms = 500", "pulse_ms = 50")  # a GPIO pulse takes real time
    if "+" in family:
        text = _with_expander(text, family.partition("+")[2])
    return text


def _with_expander(text: str, chip: str) -> str:
    """Every door switch moved to an I2C expander ("doors"); the locks stay where they are."""
    sensor = "9" if chip == "mcp23017" else "6"  # the PCF8574 has eight inputs
    text = text.replace("lock = 5\nsensor = 9", "lock = 5")
    text = text.replace('board = "cu0"\nlock = 5', f'board = "cu0"\nlock = 5\nsensor = {sensor}')
    text = text.replace('board = "cu0"\n', 'board = "cu0"\nsensor_board = "doors"\n')
    address = "0x20" if chip == "mcp23017" else "0x38"
    return text.replace("[demo]", EXPANDER.format(chip=chip, address=address) + "[demo]")


class Rig:
    def __init__(
        self,
        config: Config,
        clock: FakeClock | None = None,
        bus_time: bool = False,
        notices: bool | None = True,
    ):
        """``bus_time``: every serial exchange costs its wire time (and a missing reply
        its whole timeout) on the fake clock, as on a real line. ``notices``: the rig
        stands in for the back office, so pickup codes wait for it (``None``: as the
        config says, and the test bank has neither sync nor the demo page)."""
        self.config = config
        self.clock = clock or FakeClock()
        self.hw = hardware.build(
            config,
            threaded=False,
            now=self.clock.monotonic,
            spend=self.clock.spend if bus_time else None,
        )
        self.sim: Cu16Simulator = self.hw.serial_sims.get("rs485")  # type: ignore[assignment]
        #: A GPIO pulse is timed in real time by the board while the fake clock
        #: stands still, so nobody could pull the door during it: on GPIO banks
        #: people stand at the doors with a hand on the handle (see person_opens).
        self.hands = bool(self.hw.gpio_sims)
        self._nobody: set[str] = set()
        self._arm_hands()
        self.store = Store.open(config, self.clock, notices=notices)
        self.store.sync_layout()
        self.store.seed_demo(config.demo)
        self.locker: Locker = assemble(config, self.store, self.hw, self.clock, Worker(None))
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
        return str(self.store.compartment(comp_id)["state"])

    def event_types(self) -> list[str]:
        return [e["type"] for e in self.store.events()]

    def code_for(self, barcode: str) -> str:
        return next(n["code"] for n in self.store.pickup_notices() if n["barcode"] == barcode)

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
    """``rig.api.X(...)`` is ``rig.locker.X(...)`` awaited with the clock moving."""

    def __init__(self, rig: Rig):
        self._rig = rig

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._rig.locker, name)

        def call(*args: Any, **kwargs: Any) -> Awaitable[Any]:
            return self._rig.run(method(*args, **kwargs))

        return call
