"""Contract-test targets: a board of every family, on its twin, over its real transport."""

from __future__ import annotations

import dataclasses

import pytest

from lockerd import hardware
from tests.contract.capabilities import Target
from tests.rig import FAMILIES, bank_config


@pytest.fixture(params=FAMILIES)
def target(request, tmp_path):
    config = bank_config(tmp_path, family=request.param)
    bus = dataclasses.replace(config.bus[0], timeout_ms=50, gap_ms=0)
    config = dataclasses.replace(config, bus=(bus,))
    opened = hardware.build(config)  # ptys and bus threads, as the daemon opens them
    board = config.boards[0]
    sim = opened.serial_sims.get(bus.name)
    gpio = opened.gpio_sims.get(board.name)
    door = sim.board(board.address).door if sim is not None else gpio.door
    faults = sim.board(board.address).faults if sim is not None else None
    yield Target(board, opened.drivers[board.name], list(config.compartment), door, faults)
    opened.drivers[board.name].close()
    opened.close()
