"""An attacker at the keypad, on a fake clock: the throttle cannot be reset, and a lock-out
blocks typed codes only (never QR pickup, never couriers)."""

import dataclasses

import pytest

from lockerd.clock import FakeClock
from lockerd.errors import FlowError
from lockerd.kiosk.guard import http_status
from tests.rig import Rig, bank_config
from tests.test_qr import KEY, b64, token


async def guess(rig: Rig, code: str = "00000000") -> FlowError:
    """One typed code that must be refused; the clock then runs out any back-off."""
    with pytest.raises(FlowError) as info:
        await rig.api.pickups.code(code)
    if info.value.code != "locked_out":
        await rig.clock.advance(info.value.details.get("retry_after", 0))
    return info.value


async def test_a_refused_pickup_of_ones_own_parcel_does_not_reset_the_count(rig) -> None:
    # The attacker holds their own compartment open, then loops "wrong, wrong, own code".
    own = await rig.stored("PCL1", "S")
    await rig.stored("PCL2", "S")
    mine, victim = rig.code_for("PCL1"), rig.code_for("PCL2")
    await rig.api.pickups.code(mine)
    await rig.person_opens(own)
    answers = []
    for _ in range(rig.config.pickup.throttle.lockout_after):
        answers += [(await guess(rig)).code, (await guess(rig)).code]
        answers.append((await guess(rig, mine)).code)
        if "locked_out" in answers:
            break
    assert "locked_out" in answers, answers
    assert answers.count("wrong_code") < rig.config.pickup.throttle.lockout_after
    with pytest.raises(FlowError) as info:
        await rig.api.pickups.code(victim)
    assert (info.value.code, http_status(info.value)) == ("locked_out", 429)


async def test_a_refused_pickup_of_an_expired_parcel_does_not_reset_the_count(rig) -> None:
    await rig.stored("PCL1", "S")
    expired = rig.code_for("PCL1")
    await rig.jump(72 * 3600 + 61)
    for _ in range(2):
        await guess(rig)
    assert (await guess(rig, expired)).code == "parcel_expired"
    state = rig.store.access.throttle_state("pickup")
    assert state.failures == 2
    budget = rig.config.pickup.throttle.lockout_after
    assert (await guess(rig)).details["attempts_left"] == budget - 3


async def test_only_a_completed_pickup_ends_the_back_off_and_never_refills_the_budget(rig) -> None:
    comp = await rig.stored("PCL1", "S")
    for _ in range(3):
        await guess(rig)
    flow = await rig.api.pickups.code(rig.code_for("PCL1"))
    assert rig.store.access.throttle_state("pickup").failures == 3, "a right code alone is no reset"
    await rig.person_opens(comp)
    await rig.person_closes(comp)
    assert flow.state == "collected"
    assert rig.store.access.throttle_state("pickup").failures == 0
    left = (await guess(rig)).details
    assert left == {"attempts_left": rig.config.pickup.throttle.lockout_after - 4, "retry_after": 0}


async def test_the_lock_out_message_names_the_time_and_the_qr_code(rig) -> None:
    await rig.stored("PCL1", "S")
    while (answer := await guess(rig)).code != "locked_out":
        pass
    assert http_status(answer) == 429
    assert answer.details["retry_at"] == pytest.approx(
        rig.clock.time() + answer.details["retry_after"], abs=1
    )
    assert "QR code" in answer.message
    assert "too many wrong codes" in answer.message.lower()


@pytest.fixture
async def qr_rig(tmp_path):
    config = bank_config(tmp_path)
    pickup = dataclasses.replace(config.pickup, qr_keys=(b64(KEY),))
    rig = await Rig(dataclasses.replace(config, pickup=pickup)).start()
    yield rig
    await rig.stop()


async def test_a_lock_out_blocks_neither_qr_pickup_nor_couriers(qr_rig) -> None:
    rig = qr_rig
    comp = await rig.stored("PCL1", "S")
    while (await guess(rig)).code != "locked_out":
        pass
    flow = await rig.api.pickups.token(token(rig))
    assert flow.compartment == comp
    assert await rig.courier()


async def test_a_restart_refills_nothing(tmp_path) -> None:
    config = bank_config(tmp_path)
    rig = await Rig(config).start()
    await rig.stored("PCL1", "S")
    while (await guess(rig)).code != "locked_out":
        pass
    clock = rig.clock
    await rig.stop()
    again = await Rig(config, clock).start()
    try:
        await again.jump(900)
        assert (await guess(again)).code == "locked_out", "one code back, spent, locked again"
        budget = config.pickup.throttle.lockout_after
        assert again.store.access.throttle_state("pickup").failures == budget + 1
    finally:
        await again.stop()


# -- the wall clock: a step of it neither blocks the keypad for long nor refills it


async def test_a_board_that_boots_at_1970_takes_codes_at_once(tmp_path) -> None:
    # No real-time clock: after one wrong code and a completed pickup the daemon
    # restarts with the wall clock at the epoch, and NTP is out of reach.
    config = bank_config(tmp_path)
    rules = config.pickup.throttle
    rig = await Rig(config).start()
    comp = await rig.stored("PCL1", "S")
    await rig.stored("PCL2", "S")
    await guess(rig)
    await rig.api.pickups.code(rig.code_for("PCL1"))
    await rig.person_opens(comp)
    await rig.person_closes(comp)
    code = rig.code_for("PCL2")
    await rig.stop()
    again = await Rig(config, FakeClock(start=0.0)).start()
    try:
        with pytest.raises(FlowError) as info:
            await again.api.pickups.code("00000000")
        wrong = info.value
        assert wrong.code in ("wrong_code", "locked_out"), wrong
        assert wrong.details["retry_after"] <= max(rules.lockout_s, rules.backoff_max_s)
        if wrong.code == "locked_out":
            await again.clock.advance(wrong.details["retry_after"])
        flow = await again.api.pickups.code(code)
        assert flow.compartment is not None, "the resident's own code opens the door"
        # Still within the bound: the clock step handed out no more than a full budget.
        state = again.store.access.throttle_state("pickup")
        assert state.budget_full_at <= again.clock.time() + rules.lockout_after * rules.lockout_s
    finally:
        await again.stop()


async def test_a_backward_clock_step_during_a_lock_out_adds_at_most_one_lock_out(rig) -> None:
    await rig.stored("PCL1", "S")
    while (answer := await guess(rig)).code != "locked_out":
        pass
    rules = rig.config.pickup.throttle
    rig.clock.step_wall(-30 * 24 * 3600)
    blocked = await guess(rig)
    assert blocked.code == "locked_out"
    assert blocked.details["retry_after"] <= rules.lockout_s
    failures = rig.store.access.throttle_state("pickup").failures
    await rig.clock.advance(rules.lockout_s)
    await guess(rig)
    assert rig.store.access.throttle_state("pickup").failures == failures + 1, (
        "the code was checked"
    )
    assert http_status(answer) == 429


async def test_a_forward_clock_step_refills_nothing(rig) -> None:
    await rig.stored("PCL1", "S")
    while (answer := await guess(rig)).code != "locked_out":
        pass
    rules = rig.config.pickup.throttle
    rig.clock.step_wall(rules.lockout_after * rules.lockout_s + 3600)
    assert (await guess(rig)).code == "locked_out", "a wall-clock step is no time that passed"
    await rig.clock.advance(answer.details["retry_after"])
    assert (await guess(rig)).code == "locked_out", "one code back after the real wait, spent"
