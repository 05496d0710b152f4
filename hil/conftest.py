"""Hardware-in-the-loop: ``pytest hil --config /etc/lockerd/lockerd.toml``.

Without ``--config`` every test here is skipped with the reason. Nothing
here pulses a lock: the checks read the boards, and the board contract's
tests that need a person (open a door, unplug a board) skip on real
hardware. Stop the daemon first: it holds the serial port exclusively.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lockerd import hardware
from lockerd.config import Config, load
from tests.contract.capabilities import Target


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--config", action="store", default=None, help="the real bank's lockerd config"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "board_name" in metafunc.fixturenames:
        path = metafunc.config.getoption("--config")
        names = [b.name for b in load(Path(path)).boards] if path else ["(no --config)"]
        metafunc.parametrize("board_name", names)


@pytest.fixture(scope="session")
def config(request: pytest.FixtureRequest) -> Config:
    path = request.config.getoption("--config")
    if not path:
        pytest.skip("no real bank given: run `pytest hil --config FILE` on the locker")
    return load(path)


@pytest.fixture(scope="session")
def bank(config: Config):
    opened = hardware.build(config)
    yield opened
    opened.close()


@pytest.fixture
def target(config: Config, bank: hardware.Hardware, board_name: str) -> Target:
    board = config.board_named(board_name)
    compartments = [c for c in config.compartment if c.door_board == board_name]
    if not compartments:
        pytest.skip(f"{board_name} senses no door")
    target = Target(board, bank.drivers[board_name], compartments)
    target.max_pulse_ms = config.safety.max_pulse_ms
    return target
