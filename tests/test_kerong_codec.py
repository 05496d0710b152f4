"""CU16 codec: the worked frames from hardware.md, and hypothesis round trips."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.kerong import codec


def h(text: str) -> bytes:
    return bytes.fromhex(text)


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        (codec.status_request(0), "02 00 30 03 35"),
        (codec.status_request(1), "02 10 30 03 45"),
        (codec.unlock_request(0, 1), "02 00 31 03 36"),
        (codec.unlock_request(0, 16), "02 0F 31 03 45"),
        (codec.unlock_request(1, 1), "02 10 31 03 46"),
        (codec.unlock_request(2, 5), "02 24 31 03 5A"),
        (codec.Frame(0x00, codec.CMD_UNLOCK_ALL).encode(), "02 00 33 03 38"),
        (codec.bus_status_request(), "02 F0 32 03 27"),
        (codec.Frame(0x00, codec.CMD_BUS_STATUS).encode(), "02 00 32 03 37"),
        (codec.energize_time_request(0, 500), "02 00 37 00 32 03 6E"),
        (codec.Status(0, 0x0001, 0x0000).encode(), "02 00 35 01 00 00 00 03 3B"),
        (codec.Status(1, 0x80FF, 0x0004).encode(), "02 10 35 FF 80 04 00 03 CD"),
        (codec.Status(0, 0, 0, codec.REPLY_BUS_STATUS).encode(), "02 00 36 00 00 00 00 03 3B"),
        (codec.Status(1, 0, 0, codec.REPLY_BUS_STATUS).encode(), "02 10 36 00 00 00 00 03 4B"),
    ],
)
def test_worked_frames(frame: bytes, expected: str) -> None:
    assert frame == h(expected)


@pytest.mark.parametrize(
    ("data", "expected"), [("02 00 31 03", 0x36), ("02 F0 32 03", 0x27), ("02 00 00 60 03", 0x65)]
)
def test_checksum_vectors(data: str, expected: int) -> None:
    assert codec.checksum(h(data)) == expected


def test_decodes_reply_from_hardware_md() -> None:
    (frame,) = codec.Decoder(codec.REPLY_LENGTHS).feed(h("02 10 35 FF 80 04 00 03 CD"))
    status = codec.decode_status(frame)
    assert (status.board, status.locks, status.sensors) == (1, 0x80FF, 0x0004)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: codec.unlock_request(0, 0), "lock 0 outside 1..16"),
        (lambda: codec.unlock_request(0, 17), "lock 17 outside 1..16"),
        (lambda: codec.status_request(15), "board address 15 outside 0..14"),
        (lambda: codec.energize_time_request(0, 24_010), "not a multiple of 10 in 0..24000"),
        (lambda: codec.energize_time_request(0, 505), "not a multiple of 10"),
    ],
)
def test_out_of_range_requests_are_refused(call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


def test_decoder_drops_bad_checksum_and_resyncs() -> None:
    decoder = codec.Decoder(codec.REPLY_LENGTHS)
    good = codec.Status(0, 1, 2).encode()
    bad = good[:-1] + b"\x00"
    frames = decoder.feed(b"\xff\x55" + bad + good)
    assert [codec.decode_status(f).sensors for f in frames] == [2]
    assert decoder.bad_checksum == 1
    assert decoder.dropped_bytes > 0


def test_decoder_recovers_after_truncated_frame() -> None:
    decoder = codec.Decoder(codec.REPLY_LENGTHS)
    good = codec.Status(3, 0xAAAA, 0x5555).encode()
    assert decoder.feed(good[:4]) == []
    frames = decoder.feed(good)
    assert [codec.decode_status(f) for f in frames] == [codec.Status(3, 0xAAAA, 0x5555)]


def test_decoder_skips_unknown_command() -> None:
    decoder = codec.Decoder(codec.REPLY_LENGTHS)
    assert decoder.feed(h("02 00 99 03 9E")) == []
    assert decoder.unknown_command == 1


statuses = st.builds(
    codec.Status,
    board=st.integers(0, codec.MAX_BOARD),
    locks=st.integers(0, 0xFFFF),
    sensors=st.integers(0, 0xFFFF),
    cmd=st.sampled_from([codec.REPLY_STATUS, codec.REPLY_BUS_STATUS]),
)


@given(status=statuses)
def test_status_round_trip(status: codec.Status) -> None:
    (frame,) = codec.Decoder(codec.REPLY_LENGTHS).feed(status.encode())
    assert codec.decode_status(frame) == status


@given(board=st.integers(0, codec.MAX_BOARD), lock=st.integers(1, codec.LOCKS))
def test_unlock_round_trip(board: int, lock: int) -> None:
    (frame,) = codec.Decoder(codec.REQUEST_LENGTHS).feed(codec.unlock_request(board, lock))
    assert (frame.cmd, frame.board, frame.lock) == (codec.CMD_UNLOCK, board, lock)


@given(
    items=st.lists(statuses, min_size=1, max_size=8),
    noise=st.lists(st.binary(max_size=6).filter(lambda b: 0x02 not in b), min_size=9, max_size=9),
    cuts=st.lists(st.integers(1, 7), max_size=20),
)
def test_any_chunking_and_noise_between_frames(items, noise, cuts) -> None:
    stream = b"".join(n + s.encode() for n, s in zip(noise, items, strict=False)) + noise[-1]
    decoder = codec.Decoder(codec.REPLY_LENGTHS)
    frames, position = [], 0
    for cut in [*cuts, len(stream)]:
        frames += decoder.feed(stream[position : position + cut])
        position += cut
    frames += decoder.feed(stream[position:])
    assert [codec.decode_status(f) for f in frames] == items


@given(data=st.binary(max_size=64))
def test_garbage_never_raises(data: bytes) -> None:
    decoder = codec.Decoder(codec.REPLY_LENGTHS)
    for frame in decoder.feed(data):
        assert frame.encode() in data
