"""The real control socket and ``lockerctl`` in front of a fake-clock Rig.

The daemon-process tests (test_lockerctl.py) cannot reach inside the
simulated bank; these can, so a fault (a latch that does not catch, a board
wired the other way round) is set on the twin and lockerctl is run against
it as a technician would.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from lockerd.commands import handlers
from lockerd.control import ControlServer
from lockerd.sync.coordinator import SyncCoordinator
from tests.rig import Rig
from tests.test_lockerctl import Ctl


@asynccontextmanager
async def control(rig: Rig, sync: SyncCoordinator | None = None) -> AsyncIterator[Ctl]:
    """Serve ``rig``'s locker (syncing through ``sync``, if given) on a control socket (in
    a short /tmp path) and yield its lockerctl."""
    folder = Path(tempfile.mkdtemp(prefix="lockerctl-rig-", dir="/tmp"))
    server = ControlServer(rig.config, rig.locker, handlers(rig.config, rig.locker, sync))
    server.path = folder / "control.sock"
    await server.start()
    try:
        yield Ctl(server.path)
    finally:
        await server.stop()
        shutil.rmtree(folder, ignore_errors=True)
