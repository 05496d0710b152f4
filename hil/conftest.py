"""Hardware-in-the-loop: ``pytest hil --config /etc/lockerd/lockerd.toml``.

Without ``--config`` every test here is skipped with the reason. These
checks only read the boards; nothing is pulsed. Stop the daemon first: it
holds the serial port exclusively.
"""

from __future__ import annotations

import pytest

from lockerd import hardware
from lockerd.config import Config, load


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--config", action="store", default=None, help="the real bank's lockerd config"
    )


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
