"""Shared fixtures: a whole locker on a fake clock."""

from __future__ import annotations

import pytest

from tests.rig import Rig, bank_config


@pytest.fixture
async def rig(tmp_path):
    locker = await Rig(bank_config(tmp_path)).start()
    yield locker
    await locker.stop()


# Shared fixtures of other modules: the kiosk page's browser, the sync rig.
from tests.browser import browser  # noqa: E402, F401
from tests.sync_rig import office, synced  # noqa: E402, F401
