"""Shared fixtures: a whole locker on a fake clock, the kiosk page's browser, the sync rig."""

from __future__ import annotations

import pytest

from tests.browser import browser  # noqa: F401 (a fixture)
from tests.rig import Rig, bank_config
from tests.sync_rig import office, synced, synced_any  # noqa: F401 (fixtures)


@pytest.fixture
async def rig(tmp_path):
    locker = await Rig(bank_config(tmp_path)).start()
    yield locker
    await locker.stop()
