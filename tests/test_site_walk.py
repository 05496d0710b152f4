"""The site acceptance walk (hil/site_walk.py) on the demo's simulators, with a simulated person."""

from __future__ import annotations

import asyncio
from typing import Any

from hil.site_walk import main, walk
from lockerd.config import load
from tests.daemon import ROOT

DEMO = ROOT / "config" / "demo.toml"


def person(skip: set[str] = frozenset()) -> Any:
    """Opens each door once its lock is pulsed, and shuts it once the locker saw it open."""

    async def attach(running) -> None:
        queue = running.locker.subscribe()
        doors = {c.id: running.hardware.sim_door(c) for c in running.locker.config.compartment}

        async def act() -> None:
            while True:
                event = await queue.get()
                comp = event.get("data", {}).get("compartment")
                if comp in skip:
                    continue
                if event.get("type") == "lock.pulsed":
                    doors[comp].open()
                elif event.get("type") == "door.opened":
                    doors[comp].close()

        asyncio.get_running_loop().create_task(act())

    return attach


async def test_the_walk_passes_every_door_a_person_cycles() -> None:
    lines: list[str] = []
    report = await walk(load(DEMO), wait=20, say=lines.append, on_start=person())
    assert [r["compartment"] for r in report] == [f"{c}{n}" for c in "AB" for n in range(1, 5)] + [
        "C1",
        "C2",
    ]
    assert all(r["opened"] and r["closed"] and not r["error"] for r in report)
    assert lines[0] == "bus scan:" and lines[1].startswith("  cu0 on rs485: ")
    assert lines[-1] == "10 of 10 doors passed"


async def test_a_door_nobody_opens_fails_the_walk_by_name() -> None:
    lines: list[str] = []
    report = await walk(
        load(DEMO), only=["A1", "A2"], wait=3, say=lines.append, on_start=person({"A2"})
    )
    assert [(r["compartment"], r["closed"]) for r in report] == [("A1", True), ("A2", False)]
    assert lines[-1] == "1 of 2 doors passed; failed: A2"


def test_without_walk_nothing_is_pulsed(capsys) -> None:
    assert main(["--config", str(DEMO)]) == 2
    assert "add --walk" in capsys.readouterr().err


def test_an_unknown_compartment_is_refused(capsys) -> None:
    assert main(["--config", str(DEMO), "--walk", "--only", "Z9"]) == 2
    assert "no compartment Z9" in capsys.readouterr().err
