"""The CU16 board driver against its simulator twin over a real pty (or in-process)."""

import logging
from typing import Any

import pytest

from drivers.directlink import DirectLink
from drivers.errors import BoardTimeout, LinkError
from drivers.kerong import cu16
from drivers.kerong.board import Cu16Board
from drivers.kerong.sim import Cu16Simulator, SimCu16
from drivers.link import SerialLink
from lockerd import hardware
from lockerd.lockerctl import diag_text
from tests import families, inline
from tests.ctl_rig import control
from tests.rig import Rig


@pytest.fixture
def sim():
    simulator = Cu16Simulator([SimCu16(0), SimCu16(1, locked_bit=0, closed_bit=0)])
    for board in simulator.boards.values():
        for door in board.doors:
            door.clock = lambda: 0.0  # the twin's time stands still: a pulse stays under way
    yield simulator.start()
    simulator.close()


@pytest.fixture
def link(sim):
    serial_link = SerialLink(sim.port, 19200, gap=0)
    yield serial_link
    serial_link.close()


def test_status_read_follows_latch_and_door(sim, link) -> None:
    board = Cu16Board(link, 0)
    assert board.read_inputs().locks == 0xFFFF  # all latched, locked_bit=1
    board.pulse(3, 500)
    sim.wait_for_frame(cu16.unlock_request(0, 3), timeout=5)
    inputs = board.read_inputs()
    assert inputs.locks == 0xFFFF & ~(1 << 2)
    assert inputs.sensors == 0, "the infrared inputs see an empty bank, not the doors"
    assert sim.board(0).door(3).open()
    assert board.read_inputs().sensors == 0
    sim.board(0).door(3).put_in()
    assert board.read_inputs().sensors == 1 << 2


def test_inverted_polarity_board(sim, link) -> None:
    assert Cu16Board(link, 1).read_inputs() == Cu16Board(link, 1).read_inputs()
    inputs = Cu16Board(link, 1).read_inputs()
    assert (inputs.locks, inputs.sensors) == (0, 0)


def test_frames_on_the_wire(sim, link) -> None:
    board = Cu16Board(link, 1, energize_ms=500)
    board.pulse(1, 500)
    board.read_inputs()
    sim.wait_for_frame(cu16.status_request(1), timeout=5)
    assert sim.frames() == [
        bytes.fromhex("02 10 37 00 32 03 7E"),
        bytes.fromhex("02 10 31 03 46"),
        bytes.fromhex("02 10 30 03 45"),
    ]
    assert sim.board(1).energize_ms == 500
    assert board.energize_confirmed is True


@pytest.fixture
def opened(tmp_path):
    """Open the test bank's CU16 board as the daemon does, with the given keys added."""
    opened: list[hardware.Hardware] = []

    def open_with(**board_keys: Any) -> tuple[Cu16Simulator, Cu16Board]:
        data = families.bank(tmp_path)
        data["board"][0].update(board_keys)
        opened.append(inline.build(families.config(data, tmp_path)))
        sim, board = opened[-1].serial_sims["rs485"], opened[-1].drivers["cu0"]
        assert isinstance(sim, Cu16Simulator) and isinstance(board, Cu16Board)
        return sim, board

    yield open_with
    for hw in opened:
        hw.close()


def test_energize_time_is_left_alone_unless_asked(opened) -> None:
    sim, board = opened(energize_ms=500)
    assert [f for f in sim.frames() if f[2] == cu16.CMD_ENERGIZE_TIME] == []
    assert board.energize_confirmed is None


def test_set_energize_time_writes_and_confirms_it(opened) -> None:
    sim, board = opened(energize_ms=500, set_energize_time=True)
    assert sim.frames() == [bytes.fromhex("02 00 37 00 32 03 6E")]
    assert board.energize_confirmed is True


@pytest.mark.parametrize(
    ("board", "answer"),
    [
        (SimCu16(0, answers_energize_time=False), "no answer"),
        (SimCu16(0, energize_ms=1000, keeps_energize_time=True), "it reports 1000 ms"),
    ],
    ids=["no-answer", "other-value"],
)
def test_unconfirmed_energize_time_warns_and_the_start_goes_on(board, answer, caplog) -> None:
    twin = Cu16Simulator([board])
    with caplog.at_level(logging.WARNING, logger="drivers.kerong.board"):
        driver = Cu16Board(DirectLink(twin.exchange), 0, energize_ms=500)
    assert caplog.messages == [
        f"CU16 board 0 did not confirm energize time 500 ms (set_energize_time): {answer}; "
        "the board keeps its own setting; check it with the vendor tool"
    ]
    assert driver.energize_confirmed is False
    assert driver.read_inputs().locks == 0xFFFF
    assert twin.frames()[0] == cu16.energize_time_request(0, 500)


def test_silent_board_times_out_after_retries(sim, link) -> None:
    sim.board(0).faults.silent = True
    board = Cu16Board(link, 0, timeout=0.05, status_retries=2)
    with pytest.raises(BoardTimeout):
        board.read_inputs()
    assert link.stats.timeouts == 3


@pytest.mark.parametrize(
    ("fault", "damaged", "timeouts"), [("corrupt_replies", 1, 0), ("truncate_replies", 0, 1)]
)
def test_bad_reply_is_dropped_and_status_retried(sim, link, fault, damaged, timeouts) -> None:
    setattr(sim.board(0).faults, fault, 1)
    board = Cu16Board(link, 0, timeout=0.1, status_retries=1)
    assert board.read_inputs().locks == 0xFFFF
    # A whole reply with a bad sum ends its exchange at once (no wait for the
    # timeout); a cut-short one can only be told by the timeout.
    assert (link.stats.damaged, link.stats.timeouts) == (damaged, timeouts)


def test_late_reply_is_not_taken_for_the_next_answer(sim, link) -> None:
    sim.board(0).faults.late_replies = 1
    sim.board(0).faults.late_by = 0.15
    board = Cu16Board(link, 0, timeout=0.1, status_retries=0)
    with pytest.raises(BoardTimeout):
        board.read_inputs()
    sim.board(0).door(2).pulse()
    # The stale reply (all latched) lands after the timeout, on a line the link has
    # not read since; it is flushed before the next request, and never taken for its
    # answer. (Waiting for it to be written, not for a time: a loaded machine may
    # write it at any point after the timeout.)
    assert sim.late_written.wait(10)
    assert board.read_inputs().locks == 0xFFFF & ~(1 << 1)
    assert link.stats.stray_frames == 0


def test_unknown_board_is_silent(sim, link) -> None:
    with pytest.raises(BoardTimeout):
        Cu16Board(link, 5, timeout=0.05, status_retries=0).read_inputs()


def test_bad_url_is_a_link_error() -> None:
    with pytest.raises(LinkError, match="cannot open /dev/does-not-exist"):
        SerialLink("/dev/does-not-exist", 19200)


def test_loop_url_echo_is_not_mistaken_for_a_reply() -> None:
    link = SerialLink("loop://", 19200, gap=0)
    with pytest.raises(BoardTimeout):
        Cu16Board(link, 0, timeout=0.05, status_retries=0).read_inputs()


async def test_diag_shows_the_energize_time_confirmed(tmp_path) -> None:
    data = families.bank(tmp_path)
    data["board"][0].update(energize_ms=500, set_energize_time=True)
    rig = await Rig(families.config(data, tmp_path)).start()
    try:
        async with control(rig) as ctl:
            code, out, _ = await ctl("diag")
        assert code == 0
        assert "cu0: energize time 500 ms confirmed" in out
    finally:
        await rig.stop()


def test_diag_text_says_an_unconfirmed_energize_time() -> None:
    board = {"board": "cu0", "bus": "rs485", "address": 0, "reads": 2, "failures": 0,
             "answer_ms": 1.0, "error": None,
             "energize_confirmed": False, "energize_ms": 500}  # fmt: skip
    text = diag_text({"boards": [board], "sensors": []})
    assert "cu0: did NOT confirm energize time 500 ms (set_energize_time)" in text
