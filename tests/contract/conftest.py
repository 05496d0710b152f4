"""Contract-test targets: a board of every family, on its twin, over its real transport."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from lockerd import hardware
from tests.contract.capabilities import Target
from tests.families import FAMILIES, LOCK_BOARDS
from tests.rig import bank_config


def _targets() -> tuple[str, ...]:
    """The first test bank of each lock-board protocol, and each bank's expander."""
    first: dict[str, str] = {}
    for name, board in LOCK_BOARDS.items():
        first.setdefault(board.protocol, name)
    return (*first.values(), *(f"{family}:doors" for family in FAMILIES if "+" in family))


#: family[:board] -- the lock board "cu0" unless a board is named.
TARGETS = _targets()


@pytest.fixture(params=TARGETS)
def target(request, tmp_path):
    family, _, name = request.param.partition(":")
    config = bank_config(tmp_path, family=family)
    # A reply timeout with room for a twin thread on a busy machine (50 ms was missed
    # with both cores loaded), still short enough for the silence tests.
    buses = tuple(dataclasses.replace(b, timeout_ms=150, gap_ms=0) for b in config.bus)
    config = dataclasses.replace(config, bus=buses)
    world = [0.0]  # the twin's clock: energize times run on it, moved by the test
    # ptys and bus threads, as the daemon opens them
    opened = hardware.build(config, now=lambda: world[0])
    board = config.board_named(name or "cu0")
    compartments = [c for c in config.compartment if c.door_board == board.name]
    target = Target(board, opened.drivers[board.name], compartments, *_twin(opened, board))
    target.advance = lambda seconds: world.__setitem__(0, world[0] + seconds)
    target.max_pulse_ms = config.safety.max_pulse_ms
    yield target
    opened.drivers[board.name].close()
    opened.close()


def _twin(opened: hardware.Hardware, board: Any) -> tuple[Any, Any, Any]:
    """The door lookup, silencer and reply faults of a board's twin."""
    if board.bus in opened.serial_sims:
        sim = opened.serial_sims[board.bus].board(board.address)
        return sim.door, lambda on: setattr(sim.faults, "silent", on), sim.faults
    if board.bus in opened.i2c_sims:
        chip = opened.i2c_sims[board.bus].devices[board.address]
        return None, lambda on: setattr(chip, "nack", on), None
    return opened.gpio_sims[board.name].door, None, None
