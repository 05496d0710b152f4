"""The bank's safety rules (DESIGN.md invariants 1, 4, 5), below every flow."""

import dataclasses

import pytest

from drivers.base import Inputs
from drivers.kerong import cu16
from lockerd.bank import SafetyError, decode
from lockerd.domain import Door, Purpose
from lockerd.families.gpio import GpioBoardConfig
from lockerd.families.kerong import Cu16BoardConfig
from tests.rig import Rig, bank_config


async def _intent(rig, comp_id: str) -> int:
    comp = next(c for c in rig.config.compartment if c.id == comp_id)
    with rig.store.context.change() as conn:
        intent = rig.store.intents.create(conn, comp, Purpose.SERVICE, "test")
    return intent


async def test_no_pulse_without_a_committed_intent(rig) -> None:
    with pytest.raises(SafetyError, match="no committed unlock intent 999"):
        await rig.run(rig.locker.bank.pulse("S1", 999))
    intent = await _intent(rig, "S2")
    with pytest.raises(SafetyError):  # an intent for another compartment
        await rig.run(rig.locker.bank.pulse("S1", intent))
    assert rig.unlock_frames() == []


async def test_no_pulse_once_the_door_has_opened(rig) -> None:
    intent = await _intent(rig, "S1")
    await rig.run(rig.locker.bank.pulse("S1", intent))
    await rig.person_opens("S1")
    await rig.clock.advance(5)
    with pytest.raises(SafetyError):
        await rig.run(rig.locker.bank.pulse("S1", intent))
    assert rig.unlocks_of("S1") == 1


async def test_one_energized_lock_per_power_group(rig) -> None:
    first, second = await _intent(rig, "S1"), await _intent(rig, "S2")
    await rig.run(rig.locker.bank.pulse("S1", first))
    await rig.run(rig.locker.bank.pulse("S2", second))
    times = [t for t, f in rig.sim.received if f[2] == cu16.CMD_UNLOCK]
    # The board energizes each lock for its energize time (1000 ms by default),
    # then the 300 ms gap before the next lock of the same supply.
    assert times[1] - times[0] == pytest.approx(1.3, abs=0.06)


async def test_cooldown_per_lock(rig) -> None:
    intent = await _intent(rig, "S1")
    await rig.run(rig.locker.bank.pulse("S1", intent))
    await rig.run(rig.locker.bank.pulse("S1", intent))
    times = [t for t, f in rig.sim.received if f[2] == cu16.CMD_UNLOCK]
    assert times[1] - times[0] == pytest.approx(3.0, abs=0.06)


async def test_retry_reads_status_first_and_skips_an_open_door(rig) -> None:
    intent = await _intent(rig, "S1")
    await rig.run(rig.locker.bank.pulse("S1", intent))
    rig.door("S1").open()
    outcome = await rig.run(rig.locker.bank.retry_pulse("S1", intent))
    assert outcome == "open"
    assert rig.sim.frames()[-1] == cu16.status_request(0)
    assert rig.unlocks_of("S1") == 1


async def test_retry_skips_a_released_latch(rig) -> None:
    intent = await _intent(rig, "S1")
    await rig.run(rig.locker.bank.pulse("S1", intent))
    rig.door("S1").latch_broken = True  # the latch stays out after the pulse, door shut
    assert await rig.run(rig.locker.bank.retry_pulse("S1", intent)) == "released"
    assert rig.unlocks_of("S1") == 1


async def test_retry_waits_for_the_pulse_to_end_before_reading_the_latch(rig) -> None:
    intent = await _intent(rig, "S1")
    await rig.run(rig.locker.bank.pulse("S1", intent))
    assert rig.door("S1").latched is False  # the coil still holds it out
    assert await rig.run(rig.locker.bank.retry_pulse("S1", intent)) == "pulsed"
    assert rig.unlocks_of("S1") == 2


def test_pulse_longer_than_the_maximum_is_a_config_error(tmp_path) -> None:
    from lockerd.config import ConfigError
    from tests import families

    data = families.bank(tmp_path)
    data["safety"]["pulse_ms"] = 1500
    with pytest.raises(ConfigError, match=r"safety\.pulse_ms: 1500 exceeds max_pulse_ms"):
        families.config(data, tmp_path)


@pytest.mark.parametrize(("locked_bit", "closed_bit"), [(1, 1), (0, 0), (1, 0), (0, 1)])
async def test_polarity_is_configuration(tmp_path, locked_bit, closed_bit) -> None:
    rig = await Rig(bank_config(tmp_path, locked_bit=locked_bit, closed_bit=closed_bit)).start()
    try:
        assert rig.locker.bank.door("S1") == Door.CLOSED
        flow = await rig.api.dropoff_scan(await rig.courier(), "PCL1", "S")
        status = await rig.run(rig.locker.bank.status("S1"))
        assert (status.door, status.latched) == (Door.CLOSED, False)
        await rig.person_opens("S1")
        await rig.person_closes("S1")
        assert flow.state == "stored"
    finally:
        await rig.stop()


def test_decode_separates_door_and_latch() -> None:
    from lockerd.config.schema import CompartmentConfig

    comp = CompartmentConfig(id="X", size="S", column=1, row=1, board="b", lock=2, sensor=3)
    board = Cu16BoardConfig(name="b", bus="x", power_group="p", address=0, door_input="sensor")
    assert decode(board, comp, Inputs(locks=0b010, sensors=0b000)).latched is True
    assert decode(board, comp, Inputs(locks=0b010, sensors=0b000)).door == Door.OPEN
    assert decode(board, comp, Inputs(locks=0b000, sensors=0b100)).door == Door.CLOSED
    hook = dataclasses.replace(board, door_input="hook")
    assert decode(hook, comp, Inputs(locks=0b000, sensors=0b100)).door == Door.OPEN
    gpio = GpioBoardConfig(
        name="g", bus="x", power_group="p", lock_pins=(1, 2), door_pins=(3, 4, 5)
    )
    assert decode(gpio, comp, Inputs(locks=0, sensors=0)).latched is None
    assert decode(gpio, comp, Inputs(locks=0, sensors=0)).door == Door.CLOSED


async def test_an_intent_cancelled_while_its_pulse_waits_is_not_pulsed(rig) -> None:
    first, second = await _intent(rig, "S1"), await _intent(rig, "S2")
    await rig.run(rig.locker.bank.pulse("S1", first))
    import asyncio

    waiting = asyncio.ensure_future(rig.locker.bank.pulse("S2", second))
    await rig.clock.drain()  # S2's pulse now waits out S1's pulse and the gap
    rig.store.custody.release(second, "cancelled")
    await rig.clock.advance(1.5)
    with pytest.raises(SafetyError):
        await waiting
    assert rig.unlocks_of("S2") == 0
