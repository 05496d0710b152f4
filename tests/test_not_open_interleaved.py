"""Saying "the door did not open" interleaved with everything else that can happen to a door
under way: the other requests of the same screen (cancel, does not fit, another size,
any height, the grace-period reopen), the door-open timer, and the person at the door
opening, filling or emptying and shutting it, with the store's calls letting other work
run in between as the daemon's store thread does. Whatever the order, every request is
answered with its flow or a refusal by name (a FlowError: never a 500), and no timer
or door change fails in the locker's own tasks.

Random schedules, reproducible by seed: a few in the default suite, many more in the
``slow`` group, for a send, a courier's drop-off and a resident's pickup, on a bank
with door sensors and on one that reads each door from its lock's switch."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import pytest

from lockerd import qrtoken
from lockerd.errors import FlowError
from lockerd.flows import Flow
from tests.inline import InlineRunner
from tests.rig import Rig, bank_config
from tests.test_send import KEY, code

P = ParamSpec("P")
T = TypeVar("T")
Ops = dict[str, Callable[[], Awaitable[Flow]]]
COMPARTMENTS = ("S1", "S2", "M1", "M2", "L1")
#: Waits between steps (s): a poll, a debounce, a pulse, and around the 20 s window.
WAITS = (0.05, 0.3, 1.0, 5.0, 19.9, 20.0, 21.0)
#: Errors logged on purpose: a pulse whose intent was given back while it waited its turn.
EXPECTED = ("refused: no committed unlock intent",)


class InterleavedRunner(InlineRunner):
    """Store calls that let the loop run other work before and after them, a random
    number of turns, as a call handed to the store's thread does."""

    def __init__(self, rnd: random.Random):
        super().__init__("interleaved")
        self.rnd = rnd

    async def __call__(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        await turns(self.rnd)
        result = fn(*args, **kwargs)
        await turns(self.rnd)
        return result


async def turns(rnd: random.Random, most: int = 3) -> None:
    for _ in range(rnd.randint(0, most)):
        await asyncio.sleep(0)


async def rig_for(tmp_path: Path, family: str, seed: int) -> Rig:
    config = bank_config(tmp_path, family=family)
    pickup = dataclasses.replace(config.pickup, qr_keys=(qrtoken.public_text(KEY),))
    runner = InterleavedRunner(random.Random(seed + 1))
    return await Rig(dataclasses.replace(config, pickup=pickup), runner=runner).start()


def doors(rig: Rig, rnd: random.Random) -> None:
    """Some doors jammed, nobody at some others."""
    for comp in COMPARTMENTS:
        luck = rnd.random()
        if luck < 0.3:
            rig.door(comp).jammed = True
        elif luck < 0.6:
            rig.nobody_at(comp)


async def send(rig: Rig, rnd: random.Random) -> tuple[Flow, Ops]:
    doors(rig, rnd)
    sends = rig.locker.sends
    flow = await rig.run(sends.start(code(rig), prefer_low=rnd.random() < 0.3))
    return flow, {
        "did_not_open": lambda: sends.door_did_not_open(flow.id),
        "cancel": lambda: sends.cancel(flow.id),
        "doesnt_fit": lambda: sends.doesnt_fit(flow.id),
        "size": lambda: sends.size(flow.id, rnd.choice(["S", "M", "L"])),
        "any_height": lambda: sends.any_height(flow.id),
    }


async def dropoff(rig: Rig, rnd: random.Random) -> tuple[Flow, Ops]:
    token = await rig.courier()
    doors(rig, rnd)
    lk = rig.locker
    flow = await rig.api.dropoff_scan(token, "PCL9", "S")
    return flow, {
        "did_not_open": lambda: lk.dropoff_door_did_not_open(token, flow.id),
        "cancel": lambda: lk.dropoff_cancel(token, flow.id),
        "doesnt_fit": lambda: lk.dropoff_doesnt_fit(token, flow.id),
        "size": lambda: lk.dropoff_size(token, flow.id, rnd.choice(["S", "M", "L"])),
    }


async def pickup(rig: Rig, rnd: random.Random) -> tuple[Flow, Ops]:
    comp = await rig.stored("PCL1", "S")
    rig.door(comp).jammed = rnd.random() < 0.4
    pickups = rig.locker.pickups
    flow = await rig.api.pickups.code(rig.code_for("PCL1"))
    return flow, {
        "did_not_open": lambda: pickups.door_did_not_open(flow.id),
        "reopen": lambda: pickups.reopen(flow.id),
    }


FLOWS = {"send": send, "dropoff": dropoff, "pickup": pickup}


class Schedule:
    """One random schedule: requests started as tasks, the person at the door, time."""

    def __init__(self, rig: Rig, flow: Flow, ops: Ops, rnd: random.Random):
        self.rig, self.flow, self.ops, self.rnd = rig, flow, ops, rnd
        self.started: list[tuple[str, asyncio.Future[Flow]]] = []

    async def step(self) -> None:
        what = self.rnd.choice([*self.ops, "did_not_open", "did_not_open", "door", "wait"])
        if what in self.ops:
            self.started.append((what, asyncio.ensure_future(self.ops[what]())))
        elif what == "door":
            self.person()
        await turns(self.rnd)
        if what == "wait":
            await self.rig.clock.advance(self.rnd.choice(WAITS))

    def person(self) -> None:
        """The person pulls the door (it opens only if its latch is out), may put in or
        take out the parcel, or pushes it shut."""
        if self.flow.compartment is None:
            return
        door = self.rig.door(self.flow.compartment)
        if door.is_open:
            door.close()
        elif door.open() and self.rnd.random() < 0.5:
            (door.take_out if self.flow.kind == "pickup" else door.put_in)()

    async def settle(self) -> list[tuple[str, BaseException | None]]:
        """Every request's end (time moving until all answered), then 100 s more."""
        for _ in range(3000):
            if all(task.done() for _, task in self.started):
                break
            await self.rig.clock.advance(0.05)
        await self.rig.clock.advance(100)
        assert all(task.done() for _, task in self.started), "a request never answered"
        return [(what, task.exception()) for what, task in self.started]


async def scheduled(rig: Rig, kind: str, seed: int) -> list[tuple[str, BaseException | None]]:
    rnd = random.Random(seed)
    flow, ops = await FLOWS[kind](rig, rnd)
    schedule = Schedule(rig, flow, ops, rnd)
    for _ in range(rnd.randint(3, 12)):
        await schedule.step()
    return await schedule.settle()


def seeds(default: int, slow: int) -> Any:
    """``default`` seeds in the default suite, ``slow`` more in the slow group."""
    return pytest.mark.parametrize(
        "seed",
        [*range(default), *(pytest.param(s, marks=pytest.mark.slow) for s in range(default, slow))],
    )


@seeds(4, 100)
@pytest.mark.parametrize("family", ["kerong-cu16", "kerong-cu16-hook"])
@pytest.mark.parametrize("kind", list(FLOWS))
async def test_did_not_open_interleaved_is_always_answered(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, kind: str, family: str, seed: int
) -> None:
    rig = await rig_for(tmp_path, family, seed)
    try:
        ends = await scheduled(rig, kind, seed)
    finally:
        await rig.stop()
    faults = [(what, repr(exc)) for what, exc in ends if exc and not isinstance(exc, FlowError)]
    assert not faults, f"seed {seed}: requests that failed: {faults}"
    logged = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert [m for m in logged if not any(e in m for e in EXPECTED)] == []
