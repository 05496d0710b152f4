"""Run a drop-off (or a send) in this process and die at a chosen step (used by
test_crash.py).

``python -m tests.crash_drill STATE_DIR POINT [dropoff|send]`` exits with status 17
at POINT, the way a power cut or SIGKILL would: no cleanup, no commit of a
transaction in flight. A send is a member of the public's parcel, deposited with a
send code (``SEND_CODE``) signed by ``KEY``, which ``config`` trusts.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import sys
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from lockerd import qrtoken, sendcode
from lockerd.config import Config
from tests.rig import Rig, bank_config

#: The back office's key in the drill: fixed, so the restarted locker trusts it too.
KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))


def config(state: Path) -> Config:
    """The test bank, trusting :data:`KEY`'s codes."""
    bank = bank_config(state)
    return dataclasses.replace(
        bank, pickup=dataclasses.replace(bank.pickup, qr_keys=(qrtoken.public_text(KEY),))
    )


def send_code(rig: Rig) -> str:
    """The send code of the drill's parcel (SEND0001, size S, for DHL)."""
    claims = sendcode.SendClaims(
        rig.config.locker.id, "send", "SEND0001", "S", "DHL", rig.clock.time() + 3600, "drill-1"
    )
    return sendcode.issue(claims, KEY)


def die(*_: Any) -> None:
    os._exit(17)


def arm(rig: Rig, point: str, kind: str) -> None:
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
    elif point == "inside_store_transaction" and kind == "send":
        store.outbound.complete = die  # type: ignore[method-assign]
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


async def drill(state: Path, point: str, kind: str) -> None:
    rig = await Rig(config(state)).start()
    arm(rig, point, kind)
    if kind == "send":
        flow = await rig.run(rig.locker.sends.start(send_code(rig)))
    else:
        flow = await rig.api.dropoff_scan(await rig.courier(), "CRASH001", "S")
    await rig.person_opens("S1")
    await rig.person_closes("S1")
    print(f"completed without reaching {point}: {flow.view()}")


if __name__ == "__main__":
    asyncio.run(drill(Path(sys.argv[1]), sys.argv[2], (sys.argv[3:] or ["dropoff"])[0]))
