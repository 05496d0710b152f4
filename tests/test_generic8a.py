"""Generic 0x8A/0x80 boards: hardware.md's vectors, round trips, and the board on its twin."""

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.generic8a import codec
from drivers.generic8a.board import Generic8aBoard
from drivers.generic8a.sim import Generic8aSimulator, SimGeneric8aBoard
from drivers.link import SerialLink


def h(text: str) -> bytes:
    return bytes.fromhex(text)


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        (codec.unlock_request(1, 1), "8A 01 01 11 9B"),
        (codec.query_request(1, 1), "80 01 01 33 B3"),
        (codec.query_all_request(1), "80 01 00 33 B2"),
        (codec.AllReply(1, 0xFFFFFFFF).encode(), "80 01 FF FF FF FF 33 B2"),
        (codec.LockReply(0x80, 1, 1, 0x11).encode(), "80 01 01 11 91"),
        (codec.LockReply(0x80, 1, 1, 0x00).encode(), "80 01 01 00 80"),
        (codec.LockReply(0x8A, 1, 1, 0x00).encode(), "8A 01 01 00 8A"),
    ],
)
def test_vectors(frame: bytes, expected: str) -> None:
    assert frame == h(expected)


@pytest.mark.parametrize(
    ("data", "expected"), [("8A 01 01 11", 0x9B), ("9A 01 01 11", 0x8B), ("90 01 02 02 02", 0x93)]
)
def test_bcc(data: str, expected: int) -> None:
    assert codec.bcc(h(data)) == expected


def test_query_all_reply_has_the_groups_reversed() -> None:
    (reply,) = codec.reply_decoder(8).feed(h("80 01 00 00 00 01 33 B3"))
    assert reply == codec.AllReply(1, 0x00000001)  # D1 (locks 1-8) is the last data byte
    (reply,) = codec.reply_decoder(8).feed(h("80 01 80 00 00 00 33 32"))
    assert reply.bits == 1 << 31


def test_unlock_all_is_never_encoded() -> None:
    with pytest.raises(ValueError, match=r"lock 0 outside 1\.\.32"):
        codec.unlock_request(1, 0)


def test_a_late_unlock_reply_inside_a_query_is_skipped() -> None:
    late = codec.LockReply(0x80, 1, 3, 0x00).encode()
    good = codec.AllReply(1, 0b101).encode()
    replies = codec.reply_decoder(8).feed(late + good)
    assert replies == [codec.AllReply(1, 0b101)]


@given(board=st.integers(1, codec.MAX_BOARD), bits=st.integers(0, 2**32 - 1))
def test_all_reply_round_trip(board: int, bits: int) -> None:
    (reply,) = codec.reply_decoder(8).feed(codec.AllReply(board, bits).encode())
    assert reply == codec.AllReply(board, bits)


@given(board=st.integers(1, codec.MAX_BOARD), lock=st.integers(1, codec.MAX_LOCKS))
def test_requests_round_trip(board: int, lock: int) -> None:
    stream = codec.unlock_request(board, lock) + codec.query_all_request(board)
    unlock, query = codec.request_decoder().feed(stream)
    assert (unlock.header, unlock.board, unlock.lock, unlock.command) == (0x8A, board, lock, 0x11)
    assert (query.header, query.lock, query.command) == (0x80, 0, 0x33)


@pytest.mark.parametrize("header", [0x80, 0x8A, None])
def test_board_on_its_twin_whatever_the_unlock_reply(header) -> None:
    sim = Generic8aSimulator(
        [SimGeneric8aBoard(1, channels=8, unlock_reply=header, unlock_reply_after=0.05)]
    ).start()
    link = SerialLink(sim.port, 9600, gap=0)
    try:
        board = Generic8aBoard(link, 1, 8)
        assert board.read_inputs().locks == 0xFF
        board.pulse(3, 500)
        sim.wait_for_frame(codec.unlock_request(1, 3), timeout=5)
        time.sleep(0.1)  # let the twin's delayed unlock reply land in the line
        assert board.read_inputs().locks == 0xFF & ~0b100
        assert sim.board(1).door(3).open()
    finally:
        link.close()
        sim.close()
