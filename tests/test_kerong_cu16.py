"""CU16 codec: the worked frames from hardware.md, and hypothesis round trips."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.kerong import cu16


def h(text: str) -> bytes:
    return bytes.fromhex(text)


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        (cu16.status_request(0), "02 00 30 03 35"),
        (cu16.status_request(1), "02 10 30 03 45"),
        (cu16.unlock_request(0, 1), "02 00 31 03 36"),
        (cu16.unlock_request(0, 16), "02 0F 31 03 45"),
        (cu16.unlock_request(1, 1), "02 10 31 03 46"),
        (cu16.unlock_request(2, 5), "02 24 31 03 5A"),
        (cu16.Frame(0x00, cu16.CMD_UNLOCK_ALL).encode(), "02 00 33 03 38"),
        (cu16.bus_status_request(), "02 F0 32 03 27"),
        (cu16.Frame(0x00, cu16.CMD_BUS_STATUS).encode(), "02 00 32 03 37"),
        (cu16.energize_time_request(0, 500), "02 00 37 00 32 03 6E"),
        (cu16.Status(0, 0x0001, 0x0000).encode(), "02 00 35 01 00 00 00 03 3B"),
        (cu16.Status(1, 0x80FF, 0x0004).encode(), "02 10 35 FF 80 04 00 03 CD"),
        (cu16.Status(0, 0, 0, cu16.REPLY_BUS_STATUS).encode(), "02 00 36 00 00 00 00 03 3B"),
        (cu16.Status(1, 0, 0, cu16.REPLY_BUS_STATUS).encode(), "02 10 36 00 00 00 00 03 4B"),
    ],
)
def test_worked_frames(frame: bytes, expected: str) -> None:
    assert frame == h(expected)


@pytest.mark.parametrize(
    ("data", "expected"), [("02 00 31 03", 0x36), ("02 F0 32 03", 0x27), ("02 00 00 60 03", 0x65)]
)
def test_checksum_vectors(data: str, expected: int) -> None:
    assert cu16.checksum(h(data)) == expected


def test_decodes_reply_from_hardware_md() -> None:
    (frame,) = cu16.Decoder(cu16.REPLY_LENGTHS).feed(h("02 10 35 FF 80 04 00 03 CD"))
    status = cu16.decode_status(frame)
    assert (status.board, status.locks, status.sensors) == (1, 0x80FF, 0x0004)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: cu16.unlock_request(0, 0), "lock 0 outside 1..16"),
        (lambda: cu16.unlock_request(0, 17), "lock 17 outside 1..16"),
        (lambda: cu16.status_request(15), "board address 15 outside 0..14"),
        (lambda: cu16.energize_time_request(0, 24_010), "not a multiple of 10 in 0..24000"),
        (lambda: cu16.energize_time_request(0, 505), "not a multiple of 10"),
    ],
)
def test_out_of_range_requests_are_refused(call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


def test_decoder_drops_bad_checksum_and_resyncs() -> None:
    decoder = cu16.Decoder(cu16.REPLY_LENGTHS)
    good = cu16.Status(0, 1, 2).encode()
    bad = good[:-1] + b"\x00"
    frames = decoder.feed(b"\xff\x55" + bad + good)
    assert [cu16.decode_status(f).sensors for f in frames] == [2]
    assert decoder.bad_checksum == 1
    assert decoder.dropped_bytes > 0


def test_decoder_recovers_after_truncated_frame() -> None:
    decoder = cu16.Decoder(cu16.REPLY_LENGTHS)
    good = cu16.Status(3, 0xAAAA, 0x5555).encode()
    assert decoder.feed(good[:4]) == []
    frames = decoder.feed(good)
    assert [cu16.decode_status(f) for f in frames] == [cu16.Status(3, 0xAAAA, 0x5555)]


def test_decoder_skips_unknown_command() -> None:
    decoder = cu16.Decoder(cu16.REPLY_LENGTHS)
    assert decoder.feed(h("02 00 99 03 9E")) == []
    assert decoder.unknown_command == 1


statuses = st.builds(
    cu16.Status,
    board=st.integers(0, cu16.MAX_BOARD),
    locks=st.integers(0, 0xFFFF),
    sensors=st.integers(0, 0xFFFF),
    cmd=st.sampled_from([cu16.REPLY_STATUS, cu16.REPLY_BUS_STATUS]),
)


@given(status=statuses)
def test_status_round_trip(status: cu16.Status) -> None:
    (frame,) = cu16.Decoder(cu16.REPLY_LENGTHS).feed(status.encode())
    assert cu16.decode_status(frame) == status


@given(board=st.integers(0, cu16.MAX_BOARD), lock=st.integers(1, cu16.LOCKS))
def test_unlock_round_trip(board: int, lock: int) -> None:
    (frame,) = cu16.Decoder(cu16.REQUEST_LENGTHS).feed(cu16.unlock_request(board, lock))
    assert (frame.cmd, frame.board, frame.lock) == (cu16.CMD_UNLOCK, board, lock)


@given(
    items=st.lists(statuses, min_size=1, max_size=8),
    noise=st.lists(st.binary(max_size=6).filter(lambda b: 0x02 not in b), min_size=9, max_size=9),
    cuts=st.lists(st.integers(1, 7), max_size=20),
)
def test_any_chunking_and_noise_between_frames(items, noise, cuts) -> None:
    stream = b"".join(n + s.encode() for n, s in zip(noise, items, strict=False)) + noise[-1]
    decoder = cu16.Decoder(cu16.REPLY_LENGTHS)
    frames, position = [], 0
    for cut in [*cuts, len(stream)]:
        frames += decoder.feed(stream[position : position + cut])
        position += cut
    frames += decoder.feed(stream[position:])
    assert [cu16.decode_status(f) for f in frames] == items


@given(data=st.binary(max_size=64))
def test_garbage_never_raises(data: bytes) -> None:
    decoder = cu16.Decoder(cu16.REPLY_LENGTHS)
    for frame in decoder.feed(data):
        assert frame.encode() in data
