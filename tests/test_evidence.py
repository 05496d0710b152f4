"""What counts as a door cycle, what an item sensor says, and a bus that keeps its pace.

Each test reproduces a way the locker once broke its first promise against
twins that model the hardware facts (hardware.md 1.6 and 7): a pulse nobody
followed up recorded as a door cycle, infrared item sensors read as doors,
a silent board slowing its whole bus, a damaged reply blinding the bus.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from drivers.kerong import cu16
from lockerd.bank import CONFIRM_GAP
from lockerd.config import ConfigError, parse
from lockerd.errors import FlowError
from lockerd.kiosk.guard import http_status
from tests import families
from tests.rig import Rig, bank_text

#: A second CU16 on the bank's bus, with a compartment of its own.
NEIGHBOUR = (
    {"name": "cu1", "bus": "rs485", "power_group": "psu", "address": 1, "door_input": "sensor"},
    {"id": "N1", "size": "S", "column": 4, "row": 1, "board": "cu1", "lock": 1},
)


def _bank(state: Path, *, hook: bool = False, items: bool = False, neighbour: bool = False):
    """The test bank's data: doors read from the locks' switches (``hook``), each
    compartment's infrared sensor on the input of its lock (``items``), a second board."""
    data = families.bank(state, family="kerong-cu16-hook" if hook else "kerong-cu16")
    if items:
        for comp in data["compartment"]:
            comp["item_sensor"] = comp["lock"]
    if neighbour:
        board, comp = NEIGHBOUR
        data["board"].append(dict(board))
        data["compartment"].append(dict(comp))
    return data


def _config(state: Path, **changes: bool):
    return families.config(_bank(state, **changes), state)


def _events(rig: Rig, kind: str) -> list[dict]:
    return [e for e in rig.store.journal.events() if e["type"] == kind]


# -- a door read from its lock's switch ---------------------------------------------


async def test_a_release_only_inside_the_pulse_is_no_door_cycle(tmp_path) -> None:
    rig = await Rig(_config(tmp_path, hook=True)).start()
    try:
        pulled = await rig.stored("EVD00001", "M")
        rig.nobody_at(pulled)
        pickup = await rig.api.pickups.code(rig.code_for("EVD00001"))
        bank = rig.locker.bank
        released = []
        for _ in range(40):  # the latch is out for the energize time, then catches
            await rig.clock.advance(0.05)
            released.append(rig.door(pulled).latched is False)
        assert any(released) and not released[-1]
        assert pickup.state == "opening"
        assert bank.door(pulled) == "closed"
        assert len(_events(rig, "door.opened")) == 1, "only the drop-off's opening"
        assert rig.state(pulled) == "reserved"
    finally:
        await rig.stop()


async def test_a_door_pulled_during_the_pulse_is_seen_open_after_the_window(tmp_path) -> None:
    rig = await Rig(_config(tmp_path, hook=True)).start()
    try:
        token = await rig.courier()
        rig.door("S1").hand = True  # the courier pulls the handle as the lock buzzes
        flow = await rig.api.dropoff_scan(token, "EVD00002", "S")
        pulsed = rig.door("S1").pulses[0]
        assert rig.door("S1").is_open
        await rig.seen("S1", "open")
        assert flow.state == "open"
        bank = rig.locker.bank
        window = bank.energize_s("S1") + rig.config.timing.release_margin_ms / 1000
        opened_at = _events(rig, "door.opened")[-1]["at"] - rig.clock.time() + rig.clock.monotonic()
        assert opened_at >= pulsed + window - 1e-6
        # ...and not much later: the board is read every fast_poll_ms meanwhile.
        fast = rig.config.timing.fast_poll_ms / 1000
        debounce = rig.config.timing.debounce_polls
        assert opened_at <= pulsed + window + fast + debounce * CONFIRM_GAP + 0.01
        await rig.person_closes("S1")
        assert flow.state == "stored"
    finally:
        await rig.stop()


async def test_a_board_is_read_at_the_fast_rate_while_its_door_is_awaited(tmp_path) -> None:
    rig = await Rig(_config(tmp_path, hook=True)).start()
    try:
        token = await rig.courier()
        rig.nobody_at("S1")
        await rig.api.dropoff_scan(token, "EVD00003", "S")
        start = rig.clock.monotonic()
        await rig.clock.advance(1.0)
        reads = [
            t for t, frame in rig.sim.received if frame == cu16.status_request(0) and t >= start
        ]
        gaps = [b - a for a, b in itertools.pairwise(reads)]
        fast = rig.config.timing.fast_poll_ms / 1000
        assert len(reads) >= 0.8 / fast
        assert max(gaps) <= fast + 1e-6
    finally:
        await rig.stop()


# -- item sensors ----------------------------------------------------------------------


#: Families with inputs for item sensors, and where each compartment's is wired:
#: (item input of compartment 1..5, the board it is on).
ITEM_FAMILIES = {
    "kerong-cu16-hook": ((1, 2, 3, 4, 5), ""),  # the infrared input of each lock
    "kerong-cu48-hook": ((1, 2, 3, 4, 5), ""),
    "modbus-rtu": ((11, 12, 13, 14, 15), ""),  # opto inputs the door switches leave free
    "gpio+mcp23017": ((10, 11, 12, 13, 14), "doors"),  # on the door switches' expander
}


def _with_items(state: Path, family: str):
    inputs, board = ITEM_FAMILIES[family]
    data = families.bank(state, family=family)
    for comp, item in zip(data["compartment"], inputs, strict=True):
        comp["item_sensor"] = item
        if board:
            comp["item_board"] = board
    return families.config(data, state)


@pytest.fixture(params=sorted(ITEM_FAMILIES))
async def items_rig(request, tmp_path):
    rig = await Rig(_with_items(tmp_path, request.param)).start()
    yield rig
    await rig.stop()


async def test_a_dropoff_completes_when_the_parcel_is_seen_inside(items_rig) -> None:
    rig = items_rig
    token = await rig.courier()
    rig.door("S1").hand = True
    flow = await rig.api.dropoff_scan(token, "EVD00010", "S")
    await rig.person_opens("S1", put_in=True)
    await rig.person_closes("S1")
    assert flow.state == "stored"
    assert rig.state("S1") == "occupied"
    assert not _events(rig, "custody.mismatch")


async def test_a_dropoff_with_nothing_inside_is_an_alarm_not_a_parcel(items_rig) -> None:
    rig = items_rig
    token = await rig.courier()
    rig.door("S1").hand = True
    flow = await rig.api.dropoff_scan(token, "EVD00011", "S")
    await rig.person_opens("S1")  # ...and shuts it without putting the parcel in
    await rig.person_closes("S1")
    assert (flow.state, flow.error["code"]) == ("failed", "parcel_not_seen")
    assert rig.state("S1") == "needs_check"
    assert "parcel.stored" not in rig.event_types()
    [alarm] = _events(rig, "custody.mismatch")
    assert alarm["data"] | {"intent": 0} == {
        "compartment": "S1",
        "intent": 0,
        "purpose": "dropoff",
        "expected": "item",
        "seen": "empty",
    }
    assert not rig.store.parcels.notices()


async def test_a_cancelled_dropoff_with_the_parcel_left_inside_needs_a_check(items_rig) -> None:
    rig = items_rig
    token = await rig.courier()
    rig.door("S1").hand = True
    flow = await rig.api.dropoff_scan(token, "EVD00012", "S")
    await rig.person_opens("S1", put_in=True)
    await rig.api.dropoff_cancel(token, flow.id)
    assert flow.state == "closing"
    await rig.person_closes("S1")  # ...with the parcel still inside
    assert (flow.state, flow.error["code"]) == ("failed", "item_left_inside")
    assert rig.store.compartments.get("S1").reason == "item_left_inside"
    assert rig.state("S1") == "needs_check"
    assert "parcel.stored" not in rig.event_types()


async def test_a_pickup_completes_when_the_parcel_is_gone(items_rig) -> None:
    rig = items_rig
    assert await rig.stored("EVD00012", "M") == "M1"
    rig.door("M1").hand = True
    pickup = await rig.api.pickups.code(rig.code_for("EVD00012"))
    await rig.person_opens("M1", take_out=True)
    await rig.person_closes("M1")
    assert pickup.state == "collected"
    assert rig.state("M1") == "free"


async def test_a_pickup_that_leaves_the_parcel_inside_keeps_it_stored(items_rig) -> None:
    rig = items_rig
    assert await rig.stored("EVD00013", "M") == "M1"
    rig.door("M1").hand = True
    pickup = await rig.api.pickups.code(rig.code_for("EVD00013"))
    await rig.person_opens("M1")  # opens and shuts again without taking it
    await rig.person_closes("M1")
    assert (pickup.state, pickup.error["code"]) == ("failed", "parcel_still_inside")
    assert rig.state("M1") == "needs_check"
    state = rig.store.db.conn.execute(
        "SELECT state FROM parcels WHERE barcode = 'EVD00013'"
    ).fetchone()[0]
    assert state == "stored"
    assert "parcel.collected" not in rig.event_types()
    assert _events(rig, "custody.mismatch")[-1]["data"]["purpose"] == "pickup"


async def test_an_empty_bank_with_infrared_inputs_offers_every_compartment(tmp_path) -> None:
    """A Kerong bank as shipped: the infrared inputs read "nothing inside" (0) on an
    empty bank, and are never taken for doors unless the installer says so."""
    rig = await Rig(_config(tmp_path, hook=True, items=True)).start()
    try:
        assert rig.sim.board(0).sensor_bits() == 0
        assert {rig.state(c) for c in rig.config.compartment_ids} == {"free"}
        assert rig.locker.bank.unavailable() == set()
        token = await rig.courier()
        flow = await rig.api.dropoff_scan(token, "EVD00014", "S")
        assert flow.state == "opening"
    finally:
        await rig.stop()


# -- a silent board on the bus ----------------------------------------------------------


async def test_a_silent_neighbour_does_not_slow_a_healthy_board(tmp_path) -> None:
    rig = await Rig(_config(tmp_path, neighbour=True), bus_time=True).start()
    try:
        interval = rig.config.timing.poll_interval_ms / 1000
        rig.sim.board(1).faults.silent = True
        went_silent = rig.clock.monotonic()
        while "board.offline" not in rig.event_types():
            await rig.clock.advance(0.05)
        # Three missed polls: the first with its retries (at once, one after the
        # other; then one quiet line before another request), the later two a
        # single short try each.
        bus = rig.config.bus[0]
        first = (bus.retries + 2) * bus.timeout_ms / 1000
        assert rig.clock.monotonic() - went_silent <= first + 3 * interval
        offline_at = rig.clock.monotonic()
        await rig.clock.advance(7)
        probes = [t for t, f in rig.sim.received if f == cu16.status_request(1)]
        assert len([t for t in probes if t > rig.clock.monotonic() - 7]) <= 2
        # A door forced on the healthy board: the alarm within one poll period
        # plus the confirming read and the wire time.
        rig.door("S2").force()
        forced_at = rig.clock.monotonic()
        while "door.forced" not in rig.event_types():
            await rig.clock.advance(0.005)
        debounce = rig.config.timing.debounce_polls
        wire = 2 * debounce * 14 * 10 / 19200
        assert rig.clock.monotonic() - forced_at <= interval + (debounce - 1) * CONFIRM_GAP + wire
        # Polling of the healthy board kept its period since.
        reads = [t for t, f in rig.sim.received if f == cu16.status_request(0) and t >= offline_at]
        late = [b - a for a, b in itertools.pairwise(reads) if b - a > interval + 0.01]
        assert not late, late
    finally:
        await rig.stop()


async def test_a_pickup_on_a_silent_board_is_refused_and_nothing_is_pulsed(tmp_path) -> None:
    rig = await Rig(_config(tmp_path, neighbour=True), bus_time=True).start()
    try:
        assert [await rig.stored(f"EVD0002{n}", "S") for n in range(3)] == ["S1", "S2", "N1"]
        code = rig.code_for("EVD00022")
        rig.sim.board(1).faults.silent = True
        while "board.offline" not in rig.event_types():
            await rig.clock.advance(0.05)
        pulses = rig.unlocks_of("N1")
        with pytest.raises(FlowError) as refused:
            await rig.api.pickups.code(code)
        assert refused.value.code == "compartment_unreachable"
        assert http_status(refused.value) == 503
        assert rig.unlocks_of("N1") == pulses
        assert rig.state("N1") == "occupied"
        # Back on the bus: the same code opens the door.
        rig.sim.board(1).faults.silent = False
        while "board.online" not in rig.event_types():
            await rig.clock.advance(0.1)
        rig.door("N1").hand = True
        pickup = await rig.api.pickups.code(code)
        assert pickup.compartment == "N1" and rig.unlocks_of("N1") == pulses + 1
    finally:
        await rig.stop()


async def test_a_damaged_reply_is_retried_at_once(tmp_path) -> None:
    rig = await Rig(_config(tmp_path), bus_time=True).start()
    try:
        mark = len(rig.sim.received)
        rig.sim.board(0).faults.corrupt_replies = 1
        await rig.polls(1)
        reads = [t for t, f in rig.sim.received[mark:] if f == cu16.status_request(0)]
        assert reads[1] - reads[0] < 0.05, "no wait for the timeout after a damaged reply"
        assert rig.hw.links["rs485"].stats.damaged == 1
        assert rig.locker.bank.boards["cu0"].missed == 0
    finally:
        await rig.stop()


# -- config ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (("lock = 1\n", "lock = 1\nitem_sensor = 17\n"), "input 17 is outside 1..16 on 'cu0'"),
        (
            ("lock = 1\n", 'lock = 1\nitem_sensor = 1\nitem_board = "nope"\n'),
            "no board named 'nope'",
        ),
        (("lock = 1\n", 'lock = 1\nitem_board = "cu0"\n'), "item_board goes with item_sensor"),
        (
            ("lock = 1\n", "lock = 1\nitem_sensor = 2\n"),
            "compartment[1].sensor): 'cu0' input 2 is already 'S1''s item-sensor input",
        ),
    ],
)
def test_item_sensor_config_errors_name_the_key(tmp_path, change, problem) -> None:
    text = bank_text(tmp_path).replace(*change, 1)
    with pytest.raises(ConfigError) as info:
        parse(text, tmp_path / "locker.toml")
    where = "" if problem.startswith("compartment[") else "compartment[0]."
    assert any(where in p and problem in p for p in info.value.problems), info.value.problems


async def test_a_restart_checks_each_compartment_against_its_item_sensor(tmp_path) -> None:
    """Invariant 3 with item sensors: what the store says against what is inside."""
    config = _with_items(tmp_path, "kerong-cu16-hook")
    rig = await Rig(config).start()
    rig.door("S1").hand = True
    token = await rig.courier()
    await rig.api.dropoff_scan(token, "EVD00030", "S")
    await rig.person_opens("S1", put_in=True)
    await rig.person_closes("S1")
    await rig.stop()

    again = Rig(config)  # new twins: S1 is empty (the parcel went), S2 holds something
    again.door("S2").is_open = True
    again.door("S2").put_in()
    again.door("S2").is_open = False
    await again.start()
    try:
        assert again.store.compartments.get("S1").reason == "empty_at_start"
        assert again.store.compartments.get("S2").reason == "item_at_start"
        assert {again.state("S1"), again.state("S2"), again.state("M1")} == {
            "needs_check",
            "free",
        }
        assert again.state("M1") == "free"
    finally:
        await again.stop()


async def test_a_silent_board_on_a_busy_bus_is_still_probed_and_comes_back(tmp_path) -> None:
    """A bus whose poll leaves less than a probe's time in each period still tries its
    silent board once a probe period is overdue, so a board back on the bus is found."""
    busy = _bank(tmp_path, neighbour=True)
    busy["timing"]["poll_interval_ms"] = 20
    config = families.config(busy, tmp_path)
    rig = await Rig(config, bus_time=True).start()
    try:
        rig.sim.board(1).faults.silent = True
        while "board.offline" not in rig.event_types():
            await rig.clock.advance(0.05)
        rig.sim.board(1).faults.silent = False
        back = rig.clock.monotonic()
        while "board.online" not in rig.event_types():
            await rig.clock.advance(0.05)
            assert rig.clock.monotonic() - back <= 2 * rig.config.timing.offline_probe_s + 1
    finally:
        await rig.stop()


async def test_door_did_not_open_during_the_pulse_still_gets_its_repulse(tmp_path) -> None:
    """Tapped while the coil still holds the latch out: the status read waits for the
    pulse to end, finds the latch caught, and the one re-pulse goes out."""
    rig = await Rig(_config(tmp_path)).start()
    try:
        token = await rig.courier()
        rig.nobody_at("S1")
        flow = await rig.api.dropoff_scan(token, "EVD00040", "S")
        assert rig.door("S1").latched is False, "the pulse is still under way"
        await rig.api.dropoff_door_did_not_open(token, flow.id)
        assert rig.unlocks_of("S1") == 2
        assert flow.attempt == 2
    finally:
        await rig.stop()


async def test_a_pickup_said_not_open_while_the_lock_switch_reads_open_needs_a_check(
    tmp_path,
) -> None:
    """Only the lock's switch is read: it says released, the resident says the door did
    not open. Nobody can tell whether the parcel was taken: the compartment needs a check
    (``disputed_pickup``), and no parcel is claimed stuck inside."""
    rig = await Rig(_config(tmp_path, hook=True)).start()
    try:
        comp = await rig.stored("EVD00009", "S")
        rig.nobody_at(comp)
        door = rig.door(comp)
        door.latch_broken, door.jammed = True, True  # reads released, does not move
        flow = await rig.api.pickups.code(rig.code_for("EVD00009"))
        await rig.seen(comp, "open")
        assert flow.state == "open"
        await rig.api.pickups.door_did_not_open(flow.id)
        assert (flow.state, flow.error["code"]) == ("failed", "disputed_pickup")
        row = rig.store.compartments.get(comp)
        assert (row.state, row.reason) == ("needs_check", "disputed_pickup")
        checks = [e["data"] for e in _events(rig, "compartment.needs_check")]
        assert checks[-1] == {"compartment": comp, "reason": "disputed_pickup"}
        for kind in ("parcel.stuck", "compartment.out_of_service", "parcel.collected"):
            assert _events(rig, kind) == [], kind
        assert rig.store.intents.live(comp) is None
        assert flow.view()["stuck"] == []
    finally:
        await rig.stop()
