"""Run a drop-off in this process and die at a chosen step (used by test_crash.py).

``python -m tests.crash_drill STATE_DIR POINT`` exits with status 17 at
POINT, the way a power cut or SIGKILL would: no cleanup, no commit of a
transaction in flight.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

from tests.rig import Rig, bank_config


def die(*_: Any) -> None:
    os._exit(17)


def arm(rig: Rig, point: str) -> None:
    store, bank = rig.store, rig.locker.bank
    if point == "after_intent":

        async def pulse(*_: Any) -> None:
            die()

        bank.pulse = pulse  # type: ignore[method-assign]
    elif point == "after_pulse":
        store.journal.record_pulse = die  # type: ignore[method-assign]
    elif point == "after_door_opened":
        opened = store.custody.door_opened

        def door_opened(comp_id: str) -> Any:
            opened(comp_id)
            die()

        store.custody.door_opened = door_opened  # type: ignore[method-assign]
    elif point == "inside_store_transaction":
        store.parcels.store = die  # type: ignore[method-assign]
    elif point == "after_stored":
        closed = store.custody.door_closed

        def door_closed(comp_id: str, item: bool | None = None) -> Any:
            closed(comp_id, item)
            die()

        store.custody.door_closed = door_closed  # type: ignore[method-assign]
    else:
        raise SystemExit(f"unknown crash point {point}")


async def drill(state: Path, point: str) -> None:
    rig = await Rig(bank_config(state)).start()
    arm(rig, point)
    token = await rig.courier()
    flow = await rig.api.dropoff_scan(token, "CRASH001", "S")
    await rig.person_opens("S1")
    await rig.person_closes("S1")
    print(f"completed without reaching {point}: {flow.view()}")


if __name__ == "__main__":
    asyncio.run(drill(Path(sys.argv[1]), sys.argv[2]))
