"""The site acceptance walk (hil/site_walk.py) on the demo's simulators, with a simulated person."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from hil.site_walk import main, walk
from lockerd.config import Config, load
from tests.daemon import ROOT

DEMO = ROOT / "config" / "demo.toml"


def bank() -> Config:
    """The demo's bank with doors that stay where they are unless somebody pulls them."""
    config = load(DEMO)
    return dataclasses.replace(config, demo=dataclasses.replace(config.demo, door_springs=False))


def person(skip: set[str] = frozenset()) -> Any:
    """Stands at every door but those in ``skip`` with a hand on its handle before any pulse
    (so the door opens the moment its latch releases), and shuts each door once the locker
    saw it open, then takes the handle again."""

    async def attach(running) -> None:
        queue = running.locker.subscribe()
        doors = {c.id: running.hardware.sim_door(c) for c in running.locker.config.compartment}
        for comp, door in doors.items():
            door.hand = comp not in skip

        async def act() -> None:
            while True:
                event = await queue.get()
                comp = event.get("data", {}).get("compartment")
                if comp in skip or event.get("type") != "door.opened":
                    continue
                doors[comp].close()
                doors[comp].hand = True  # ready for the next pulse, never pulling it open now

        asyncio.get_running_loop().create_task(act())

    return attach


async def test_the_walk_passes_every_door_a_person_cycles() -> None:
    lines: list[str] = []
    report = await walk(bank(), wait=20, say=lines.append, on_start=person())
    assert [r["compartment"] for r in report] == [f"{c}{n}" for c in "AB" for n in range(1, 5)] + [
        "C1",
        "C2",
    ]
    assert all(r["opened"] and r["closed"] and not r["error"] for r in report)
    # Each lock reads latched once its pulse is over; the GPIO cabinet has no lock feedback.
    assert [r["latched"] for r in report] == [True] * 8 + [None, None]
    assert lines[0] == "bus scan:" and lines[1].startswith("  cu0 on rs485: ")
    assert lines[-1] == "10 of 10 doors passed"


async def test_a_door_nobody_opens_fails_the_walk_by_name() -> None:
    lines: list[str] = []
    report = await walk(
        bank(), only=["A1", "A2"], wait=3, say=lines.append, on_start=person({"A2"})
    )
    assert [(r["compartment"], r["opened"], r["closed"]) for r in report] == [
        ("A1", True, True),
        ("A2", False, False),
    ]
    assert report[1]["error"] == "no door cycle within 3 s"
    assert lines[-1] == "1 of 2 doors passed; failed: A2"


def test_without_walk_nothing_is_pulsed(capsys) -> None:
    assert main(["--config", str(DEMO)]) == 2
    assert "add --walk" in capsys.readouterr().err


def test_an_unknown_compartment_is_refused(capsys) -> None:
    assert main(["--config", str(DEMO), "--walk", "--only", "Z9"]) == 2
    assert "no compartment Z9" in capsys.readouterr().err
