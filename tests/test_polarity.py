"""A board read the wrong way round raises one alarm at start, naming the key to check.

Wrong polarity fails safe (a shut door that reads open is never offered) but
would otherwise be silent. The twin is wired one way and the config says the
other, as on a site where ``closed_bit`` or ``locked_bit`` was never calibrated.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ctl_rig import control
from tests.families import FAMILIES
from tests.rig import Rig, bank_config

ALARM = "board.polarity_suspect"


async def started(tmp_path: Path, family: str = "kerong-cu16", **wired: int) -> Rig:
    """The test bank, its board (cu0) wired with the bit values in ``wired`` whatever the
    config says."""
    rig = Rig(bank_config(tmp_path, family=family))
    [board] = rig.sim.boards.values()
    for key, value in wired.items():
        setattr(board, key, value)
    return await rig.start()


def alarms(rig: Rig) -> list[dict]:
    return [e["data"] for e in rig.store.journal.events() if e["type"] == ALARM]


@pytest.mark.parametrize(
    ("family", "wired", "key", "says"),
    [
        ("kerong-cu16", {"closed_bit": 0}, "closed_bit", "all 5 doors it senses read open"),
        ("kerong-cu16", {"locked_bit": 0}, "locked_bit", "S1, S2, M1, M2, L1"),
        ("kerong-cu16-hook", {"locked_bit": 0}, "locked_bit", "all 5 doors it senses read open"),
        ("generic-8a", {"locked_bit": 0}, "locked_bit", "all 5 doors it senses read open"),
    ],
)
async def test_a_board_wired_the_other_way_raises_one_alarm(
    tmp_path, family, wired, key, says
) -> None:
    rig = await started(tmp_path, family, **wired)
    try:
        await rig.polls(5)
        [alarm] = alarms(rig)
        assert (alarm["board"], alarm["key"]) == ("cu0", key)
        assert says in alarm["detail"]
        assert rig.event_types().index("locker.started") < rig.event_types().index(ALARM)
    finally:
        await rig.stop()


@pytest.mark.parametrize("family", FAMILIES)
async def test_a_bank_wired_as_configured_raises_none(tmp_path, family) -> None:
    rig = await Rig(bank_config(tmp_path, family=family)).start()
    try:
        assert alarms(rig) == [] and rig.locker.alarms == []
    finally:
        await rig.stop()


async def test_a_door_found_open_at_start_is_no_polarity_alarm(tmp_path) -> None:
    rig = Rig(bank_config(tmp_path))
    rig.door("S1").force()  # its open door holds its latch out
    rig.door("M1").force()
    await rig.start()
    try:
        assert alarms(rig) == []
        assert rig.state("S1") == "needs_check"
    finally:
        await rig.stop()


async def test_the_alarm_is_raised_again_at_each_start_while_the_wiring_is_wrong(
    tmp_path,
) -> None:
    rig = await started(tmp_path, closed_bit=0)
    await rig.stop()
    rig = await started(tmp_path, closed_bit=0)
    try:
        assert [a["key"] for a in alarms(rig)] == ["closed_bit", "closed_bit"]
    finally:
        await rig.stop()


async def test_lockerctl_status_and_diag_show_the_alarm(tmp_path) -> None:
    rig = await started(tmp_path, locked_bit=0)
    try:
        async with control(rig) as ctl:
            code, out, _ = await ctl("status")
            assert code == 0
            lines = out.splitlines()
            grid_end = lines.index("", 2)  # the blank line after the grid
            assert lines[grid_end + 1].startswith("ALARM board cu0: check locked_bit")
            status = await ctl.json("status")
            assert [(a["board"], a["key"]) for a in status["alarms"]] == [("cu0", "locked_bit")]
            code, out, _ = await ctl("diag")
            assert "sensor: board cu0: check locked_bit" in out
    finally:
        await rig.stop()


async def test_lockerctl_status_has_no_alarm_line_on_a_bank_wired_as_configured(rig) -> None:
    async with control(rig) as ctl:
        _, out, _ = await ctl("status")
        assert "ALARM" not in out
        assert (await ctl.json("status"))["alarms"] == []
        _, out, _ = await ctl("diag")
        assert "sensors: every door agrees" in out
