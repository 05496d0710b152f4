"""CU48 codec against the captured frames in hardware.md, and the board on its twin."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.kerong import cu48
from drivers.kerong.board import Cu48Board
from drivers.kerong.sim import Cu48Simulator, SimCu48
from drivers.link import SerialLink


def h(text: str) -> bytes:
    return bytes.fromhex(text)


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        (cu48.status_request(0), "02 00 00 60 03 65"),
        (cu48.open_request(0, 1), "02 00 00 61 03 66"),
        (cu48.open_request(0, 2), "02 00 01 61 03 67"),
        (cu48.open_request(0, 3), "02 00 02 61 03 68"),
        (cu48.open_request(0, 5), "02 00 04 61 03 6A"),
        (cu48.open_request(0, 48), "02 00 2F 61 03 95"),
        (cu48.open_request(1, 1), "02 01 00 61 03 67"),
        (cu48.Status(0, 0, 0).encode(), "02 00 00 75" + " 00" * 12 + " 03 7A"),
        (cu48.Status(0, 1, 0).encode(), "02 00 00 75 01" + " 00" * 11 + " 03 7B"),
        (cu48.Status(0, 1 << 13, 0).encode(), "02 00 00 75 00 20" + " 00" * 10 + " 03 9A"),
        (cu48.Status(0, 1, 1).encode(), "02 00 00 75 01 00 00 00 00 00 01 00 00 00 00 00 03 7C"),
    ],
)
def test_captured_frames(frame: bytes, expected: str) -> None:
    assert frame == h(expected)


def test_decodes_a_captured_reply() -> None:
    decoder = cu48.Decoder(cu48.REPLY_LENGTHS)
    (frame,) = decoder.feed(h("02 00 00 75 01 00 00 00 00 00 01 00 00 00 00 00 03 7C"))
    assert cu48.decode_status(frame) == cu48.Status(0, 1, 1)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: cu48.open_request(0, 0), "lock 0 outside 1..48"),
        (lambda: cu48.open_request(0, 49), "lock 49 outside 1..48"),
        (lambda: cu48.status_request(16), "address 16 outside 0..15"),
    ],
)
def test_out_of_range(call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


@given(
    board=st.integers(0, cu48.MAX_BOARD),
    locks=st.integers(0, 2**48 - 1),
    sensors=st.integers(0, 2**48 - 1),
    noise=st.binary(max_size=8).filter(lambda b: 0x02 not in b),
)
def test_status_round_trip_through_noise(board, locks, sensors, noise) -> None:
    status = cu48.Status(board, locks, sensors)
    (frame,) = cu48.Decoder(cu48.REPLY_LENGTHS).feed(noise + status.encode() + noise)
    assert cu48.decode_status(frame) == status


@given(board=st.integers(0, cu48.MAX_BOARD), lock=st.integers(1, cu48.LOCKS))
def test_open_round_trip(board, lock) -> None:
    (frame,) = cu48.Decoder(cu48.REQUEST_LENGTHS).feed(cu48.open_request(board, lock))
    assert (frame.cmd, frame.board, frame.lock) == (cu48.CMD_OPEN, board, lock)


def test_board_on_its_twin_over_a_pty() -> None:
    sim = Cu48Simulator([SimCu48(0), SimCu48(3, reply_to_unlock=True)])
    for each in sim.boards.values():
        for door in each.doors:
            door.clock = lambda: 0.0  # the twin's time stands still: the pulse stays under way
    sim.start()
    link = SerialLink(sim.port, 19200, gap=0)
    try:
        board = Cu48Board(link, 3)
        assert board.read_inputs().locks == 2**48 - 1
        board.pulse(48, 500)
        sim.wait_for_frame(cu48.open_request(3, 48), timeout=5)
        assert board.read_inputs().locks == (2**48 - 1) & ~(1 << 47)
        assert sim.board(3).door(48).open()
        assert board.read_inputs().sensors == 0, "the infrared inputs see an empty bank"
        sim.board(3).door(48).put_in()
        assert board.read_inputs().sensors == 1 << 47
        assert Cu48Board(link, 0).read_inputs().locks == 2**48 - 1
    finally:
        link.close()
        sim.close()
