"""The CU16 board driver against its simulator twin over a real pty."""

import pytest

from drivers.errors import BoardTimeout, LinkError
from drivers.kerong import codec
from drivers.kerong.board import Cu16Board
from drivers.kerong.sim import Cu16Simulator, SimCu16
from drivers.link import SerialLink


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
    sim.wait_for_frame(codec.unlock_request(0, 3), timeout=5)
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
    sim.wait_for_frame(codec.status_request(1), timeout=5)
    assert sim.frames() == [
        bytes.fromhex("02 10 37 00 32 03 7E"),
        bytes.fromhex("02 10 31 03 46"),
        bytes.fromhex("02 10 30 03 45"),
    ]
    assert sim.board(1).energize_ms == 500


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
    # The stale reply (all latched) lands after the timeout; the link waits
    # for a quiet line before asking again, so it never answers the new request.
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
