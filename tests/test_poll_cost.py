"""A poll of a bank at rest costs the loop per board, not per door (issue 16: idle CPU).

Counted in calls into the bank's door and latch decoding (a profiler hook on the
loop's thread; the fake-clock rig reads the boards inline), so the figure is exact:
once every door is accepted, a board answering as it did before is not decoded
again, and a door that moves is decoded and reported as before.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from lockerd import bank
from lockerd.domain import Door

DECODERS = {bank.door_of.__code__, bank.latch_of.__code__, bank.item_of.__code__}


@contextmanager
def decodes() -> Iterator[list[int]]:
    """Counts the calls of the bank's decoders made meanwhile on this thread."""
    count = [0]

    def profile(frame: FrameType, event: str, arg: Any) -> None:
        if event == "call" and frame.f_code in DECODERS:
            count[0] += 1

    sys.setprofile(profile)
    try:
        yield count
    finally:
        sys.setprofile(None)


async def test_a_poll_of_a_bank_at_rest_decodes_no_door(rig) -> None:
    await rig.polls(2)  # every door accepted
    with decodes() as count:
        await rig.polls(5)
    assert count[0] == 0
    rig.door("S2").force()
    with decodes() as count:
        await rig.polls()
    assert count[0] > 0
    assert rig.locker.bank.door("S2") == Door.OPEN
