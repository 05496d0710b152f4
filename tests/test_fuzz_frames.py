"""Fuzz: serial frames into every board codec's decoder, and garbage replies into every board.

Arbitrary bytes and mutated valid frames never make a decoder raise and
never come out as a frame whose check fails; valid frames, in any chunking
and between noise, come out exactly. A board driver answered with garbage
over the in-process link raises only :class:`~drivers.errors.DriverError`
kinds, and what it reports came from a valid reply of its own address.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import strategies as st

from drivers.directlink import DirectLink
from drivers.errors import DriverError, FrameError
from drivers.framing import StreamDecoder
from drivers.generic8a import codec as xor
from drivers.generic8a.board import Generic8aBoard
from drivers.kerong import cu16, cu48
from drivers.kerong.board import Cu16Board, Cu48Board
from drivers.modbus.board import ModbusRelayBoard, RtuClient
from drivers.modbus.sim import FIXED, ModbusSimulator, SimRelayBoard, crc
from tests.fuzzing import groups, run


@dataclass(frozen=True)
class Codec:
    """One decoder as a listening end runs it, and how to tell a frame it gave back is sound."""

    make: Callable[[], StreamDecoder[Any]]
    raw: Callable[[Any], bytes]
    check: Callable[[bytes], bool]
    frames: st.SearchStrategy[bytes]
    #: Bytes that may start a frame (noise is made without them).
    starts: bytes


def _sum_ok(raw: bytes) -> bool:
    return raw[-2] == cu16.ETX and cu16.checksum(raw[:-1]) == raw[-1]


def _bcc_ok(raw: bytes) -> bool:
    return xor.bcc(raw[:-1]) == raw[-1]


def _xor_reply_raw(reply: xor.LockReply | xor.AllReply) -> bytes:
    return reply.encode()


def _modbus_decoder() -> StreamDecoder[Any]:
    units = [SimRelayBoard(unit) for unit in (1, 2, 0xF7)]
    return ModbusSimulator(units).decoder


u8 = st.integers(0, 255)
cu16_replies = st.one_of(
    st.builds(
        lambda b, locks, sensors, cmd: cu16.Status(b, locks, sensors, cmd).encode(),
        st.integers(0, cu16.MAX_BOARD),
        st.integers(0, 0xFFFF),
        st.integers(0, 0xFFFF),
        st.sampled_from([cu16.REPLY_STATUS, cu16.REPLY_BUS_STATUS]),
    ),
    st.builds(
        lambda addr, payload: cu16.Frame(addr, cu16.REPLY_ENERGIZE_TIME, payload).encode(),
        u8,
        st.binary(min_size=2, max_size=2),
    ),
)
cu16_requests = st.one_of(
    st.builds(cu16.unlock_request, st.integers(0, cu16.MAX_BOARD), st.integers(1, cu16.LOCKS)),
    st.builds(cu16.status_request, st.integers(0, cu16.MAX_BOARD)),
    st.just(cu16.bus_status_request()),
    st.builds(
        cu16.energize_time_request,
        st.integers(0, cu16.MAX_BOARD),
        st.integers(0, cu16.MAX_ENERGIZE_MS // 10).map(lambda u: u * 10),
    ),
)
cu48_replies = st.builds(
    lambda b, locks, sensors: cu48.Status(b, locks, sensors).encode(),
    st.integers(0, cu48.MAX_BOARD),
    st.integers(0, 2**48 - 1),
    st.integers(0, 2**48 - 1),
)
cu48_requests = st.one_of(
    st.builds(cu48.open_request, st.integers(0, cu48.MAX_BOARD), st.integers(1, cu48.LOCKS)),
    st.builds(cu48.status_request, st.integers(0, cu48.MAX_BOARD)),
)
xor_lock_replies = st.builds(
    lambda h, b, lock, s: xor.LockReply(h, b, lock, s).encode(),
    st.sampled_from([xor.QUERY, xor.UNLOCK]),
    u8,
    u8,
    u8,
)
xor_all_replies = st.builds(
    lambda b, bits: xor.AllReply(b, bits).encode(), u8, st.integers(0, 2**32 - 1)
)
xor_requests = st.one_of(
    st.builds(xor.unlock_request, st.integers(1, xor.MAX_BOARD), st.integers(1, xor.MAX_LOCKS)),
    st.builds(xor.query_request, st.integers(1, xor.MAX_BOARD), st.integers(1, xor.MAX_LOCKS)),
    st.builds(xor.query_all_request, st.integers(1, xor.MAX_BOARD)),
    st.builds(
        lambda h, body: bytes((h, *body, xor.bcc(bytes((h, *body))))),
        st.sampled_from([xor.LONG_ON, xor.LONG_OFF]),
        st.binary(min_size=3, max_size=3),
    ),
    st.builds(
        lambda body: bytes((xor.BATCH, *body, xor.bcc(bytes((xor.BATCH, *body))))),
        st.binary(min_size=4, max_size=4),
    ),
)
modbus_requests = st.builds(
    lambda unit, fc, address, value: bytes((unit, fc)) + struct.pack(">HH", address, value),
    st.sampled_from([1, 2, 0xF7]),
    st.sampled_from(FIXED),
    st.integers(0, 0xFFFF),
    st.integers(0, 0xFFFF),
).map(lambda body: body + crc(body))

CODECS = {
    "cu16-host": Codec(
        lambda: cu16.Decoder(cu16.REPLY_LENGTHS),
        lambda f: f.encode(),
        _sum_ok,
        cu16_replies,
        bytes((cu16.STX,)),
    ),
    "cu16-board": Codec(
        lambda: cu16.Decoder(cu16.REQUEST_LENGTHS),
        lambda f: f.encode(),
        _sum_ok,
        cu16_requests,
        bytes((cu16.STX,)),
    ),
    "cu48-host": Codec(
        lambda: cu48.Decoder(cu48.REPLY_LENGTHS),
        lambda f: f.encode(),
        _sum_ok,
        cu48_replies,
        bytes((cu16.STX,)),
    ),
    "cu48-board": Codec(
        lambda: cu48.Decoder(cu48.REQUEST_LENGTHS),
        lambda f: f.encode(),
        _sum_ok,
        cu48_requests,
        bytes((cu16.STX,)),
    ),
    "xor-lock-reply": Codec(
        lambda: xor.reply_decoder(5),
        _xor_reply_raw,
        _bcc_ok,
        xor_lock_replies,
        bytes((xor.QUERY, xor.UNLOCK)),
    ),
    "xor-all-reply": Codec(
        lambda: xor.reply_decoder(8),
        _xor_reply_raw,
        _bcc_ok,
        xor_all_replies,
        bytes((xor.QUERY, xor.UNLOCK)),
    ),
    "xor-board": Codec(
        xor.request_decoder,
        lambda f: f.raw,
        _bcc_ok,
        xor_requests,
        bytes(xor.REQUEST_LENGTHS),
    ),
    "modbus-board": Codec(
        _modbus_decoder,
        lambda f: f.raw,
        lambda raw: crc(raw[:-2]) == raw[-2:],
        modbus_requests,
        bytes((1, 2, 0xF7)),
    ),
}


def mutate(frame: bytes, edits: list[tuple[int, int, int]]) -> bytes:
    """``frame`` after each (kind, position, value): flip a bit, set, insert, delete, cut."""
    data = bytearray(frame)
    for kind, position, value in edits:
        if not data:
            break
        at = position % len(data)
        if kind == 0:
            data[at] ^= 1 << (value % 8)
        elif kind == 1:
            data[at] = value
        elif kind == 2:
            data.insert(at, value)
        elif kind == 3:
            del data[at]
        else:
            del data[at:]
    return bytes(data)


edits = st.lists(st.tuples(st.integers(0, 4), st.integers(0, 63), u8), min_size=1, max_size=4)


def feed_in_chunks(decoder: StreamDecoder[Any], stream: bytes, cuts: list[int]) -> list[Any]:
    frames, position = [], 0
    for cut in cuts:
        frames += decoder.feed(stream[position : position + cut])
        position += cut
    return frames + decoder.feed(stream[position:])


def assert_sound(c: Codec, frames: list[Any], stream: bytes, decoder: StreamDecoder[Any]) -> None:
    """Every frame given back passes its check and was in the stream, whole."""
    for frame in frames:
        raw = c.raw(frame)
        assert c.check(raw), f"a frame failing its check came out: {raw.hex(' ')}"
        assert raw in stream, f"{raw.hex(' ')} is not in {stream.hex(' ')}"
    assert decoder.frames == len(frames)


def decoder_property(
    name: str, noise: bytes, valid: list[bytes], edits: list[Any], cuts: list[int]
) -> None:
    c = CODECS[name]
    damaged = mutate(valid[0], edits)
    stream = noise + damaged + b"".join(valid[1:])
    decoder = c.make()
    frames = feed_in_chunks(decoder, stream, cuts)
    assert_sound(c, frames, stream, decoder)


@pytest.mark.parametrize("name", CODECS)
@groups(25, 5_500)
def test_arbitrary_and_mutated_bytes_give_only_sound_frames(name: str, examples: int) -> None:
    c = CODECS[name]
    run(
        f"frames {name} (arbitrary and mutated bytes)",
        examples,
        lambda **kw: decoder_property(name, **kw),
        noise=st.binary(max_size=48),
        valid=st.lists(c.frames, min_size=1, max_size=3),
        edits=edits,
        cuts=st.lists(st.integers(1, 12), max_size=8),
    )


def round_trip_property(name: str, valid: list[bytes], noise: list[bytes], cuts: list[int]) -> None:
    c = CODECS[name]
    clean = [bytes(b for b in n if b not in c.starts) for n in noise]
    stream = b"".join(n + f for n, f in zip(clean, valid, strict=False)) + clean[-1]
    decoder = c.make()
    frames = feed_in_chunks(decoder, stream, cuts)
    assert [c.raw(f) for f in frames] == valid
    assert decoder.bad_checksum == 0


@pytest.mark.parametrize("name", CODECS)
@groups(25, 1_500)
def test_valid_frames_round_trip_through_noise_and_chunking(name: str, examples: int) -> None:
    c = CODECS[name]
    run(
        f"frames {name} (round trip)",
        examples,
        lambda **kw: round_trip_property(name, **kw),
        valid=st.lists(c.frames, min_size=1, max_size=5),
        noise=st.lists(st.binary(max_size=8), min_size=6, max_size=6),
        cuts=st.lists(st.integers(1, 12), max_size=8),
    )


# -- boards answered with garbage over the in-process link ----------------------


class Garbage:
    """A simulator that answers each request with the next of ``replies`` (then silence)."""

    def __init__(self, replies: list[bytes]):
        self.replies = list(replies)

    def __call__(self, request: bytes) -> bytes:
        return self.replies.pop(0) if self.replies else b""


ADDRESS = 3


def board_replies(valid: st.SearchStrategy[bytes]) -> st.SearchStrategy[list[bytes]]:
    """Replies: arbitrary bytes, valid frames (any address), and valid frames mutated."""
    one = st.one_of(
        st.binary(max_size=24),
        valid,
        st.builds(mutate, valid, edits),
        st.lists(valid, max_size=3).map(b"".join),
    )
    return st.lists(one, max_size=6)


def _cu16_status_from(replies: list[bytes], inputs: Any) -> bool:
    mine = cu16.Status(ADDRESS, inputs.locks, inputs.sensors).encode()
    return any(mine in reply for reply in replies)


def _cu48_status_from(replies: list[bytes], inputs: Any) -> bool:
    mine = cu48.Status(ADDRESS, inputs.locks, inputs.sensors).encode()
    return any(mine in reply for reply in replies)


def _xor_status_from(replies: list[bytes], inputs: Any) -> bool:
    return any(
        xor.AllReply(ADDRESS, bits).encode() in reply
        for reply in replies
        for bits in _xor_candidates(reply, inputs.locks)
    )


def _xor_candidates(reply: bytes, locks: int) -> list[int]:
    """All-lock bit patterns in ``reply`` that read as ``locks`` on an 8-lock board."""
    found = []
    for start in range(len(reply) - 7):
        bits = int.from_bytes(reply[start + 2 : start + 6], "big")
        if bits & 0xFF == locks:
            found.append(bits)
    return found


cu16_board_replies = st.one_of(
    cu16_replies,
    st.builds(
        lambda locks, sensors: cu16.Status(ADDRESS, locks, sensors).encode(),
        st.integers(0, 0xFFFF),
        st.integers(0, 0xFFFF),
    ),
    st.builds(
        lambda payload: cu16.Frame(ADDRESS << 4, cu16.REPLY_ENERGIZE_TIME, payload).encode(),
        st.binary(min_size=2, max_size=2),
    ),
)
cu48_board_replies = st.one_of(
    cu48_replies,
    st.builds(
        lambda locks, sensors: cu48.Status(ADDRESS, locks, sensors).encode(),
        st.integers(0, 2**48 - 1),
        st.integers(0, 2**48 - 1),
    ),
)
xor_board_replies = st.one_of(
    xor_lock_replies,
    xor_all_replies,
    st.builds(lambda bits: xor.AllReply(ADDRESS, bits).encode(), st.integers(0, 2**32 - 1)),
)

BOARDS: dict[str, tuple[Callable[[DirectLink], Any], Any, Callable[..., bool]]] = {
    "cu16": (
        lambda link: Cu16Board(link, ADDRESS, energize_ms=500, status_retries=1),
        cu16_board_replies,
        _cu16_status_from,
    ),
    "cu48": (
        lambda link: Cu48Board(link, ADDRESS, status_retries=1),
        cu48_board_replies,
        _cu48_status_from,
    ),
    "generic-8a": (
        lambda link: Generic8aBoard(link, ADDRESS, 8, status_retries=1),
        xor_board_replies,
        _xor_status_from,
    ),
}


def board_property(family: str, replies: list[bytes], actions: list[int]) -> None:
    make, _, came_from = BOARDS[family]
    # Opening never fails on what the board answers: the CU16's energize-time write
    # is checked, and a missing, different or damaged answer only logged.
    board = make(DirectLink(Garbage(replies)))
    try:
        for action in actions:
            if action:
                board.pulse(action, 500)
                continue
            inputs = board.read_inputs()
            assert came_from(replies, inputs), f"{inputs} came from no reply of board {ADDRESS}"
    except DriverError:
        pass


@pytest.mark.parametrize("family", BOARDS)
@groups(30, 3_000)
def test_a_board_answered_with_garbage_raises_only_driver_errors(
    family: str, examples: int
) -> None:
    run(
        f"board {family} (garbage replies)",
        examples,
        lambda **kw: board_property(family, **kw),
        replies=board_replies(BOARDS[family][1]),
        actions=st.lists(st.sampled_from([0, 0, 1, 8]), min_size=1, max_size=4),
    )


# -- Modbus: pymodbus's framer on an in-process line ---------------------------------


class ModbusLine:
    """The serial port pymodbus reads, answered in-process: each write gets the next reply."""

    is_open = True

    def __init__(self, replies: list[bytes]):
        self.replies = list(replies)
        self.buffer = bytearray()

    @property
    def in_waiting(self) -> int:
        return len(self.buffer)

    def write(self, data: bytes) -> int:
        self.buffer += self.replies.pop(0) if self.replies else b""
        return len(data)

    def read(self, size: int | None = None) -> bytes:
        size = len(self.buffer) if size is None else size
        out = bytes(self.buffer[:size])
        del self.buffer[:size]
        return out

    def reset_input_buffer(self) -> None:
        self.buffer.clear()

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


UNIT = 1
INPUTS = 16


def _modbus_frame(unit: int, fc: int, body: bytes) -> bytes:
    frame = bytes((unit, fc)) + body
    return frame + crc(frame)


modbus_replies_valid = st.one_of(
    # read replies: a byte count and that many bytes, for any function code
    st.builds(
        lambda unit, fc, data: _modbus_frame(unit, fc, bytes((len(data),)) + data),
        st.sampled_from([UNIT, UNIT, 2]),
        st.sampled_from([1, 2, 2, 3, 4]),
        st.binary(max_size=4),
    ),
    # write echoes
    st.builds(
        lambda unit, fc, address, value: _modbus_frame(
            unit, fc, struct.pack(">HH", address, value)
        ),
        st.sampled_from([UNIT, UNIT, 2]),
        st.sampled_from([5, 5, 6, 15, 16]),
        st.sampled_from([0x0200, 0x0201, 0x0207, 0]).flatmap(
            lambda a: st.just(a) | st.integers(0, 0xFFFF)
        ),
        st.integers(0, 0xFFFF) | st.just(5),
    ),
    # exception replies
    st.builds(
        lambda unit, fc, code: _modbus_frame(unit, fc | 0x80, bytes((code,))),
        st.sampled_from([UNIT, 2]),
        st.sampled_from([1, 2, 5]),
        u8,
    ),
)


def modbus_property(replies: list[bytes], actions: list[int]) -> None:
    client = RtuClient("fuzz://", baudrate=115200, timeout=0.002, retries=0)
    client.socket = ModbusLine(replies)  # type: ignore[assignment]
    board = ModbusRelayBoard(client, UNIT, 8, inputs=INPUTS, status_retries=0)
    for action in actions:
        try:
            if action:
                board.pulse(action, 500)
            else:
                inputs = board.read_inputs()
                mine = bytes((UNIT, 2, 2)) + inputs.sensors.to_bytes(2, "little")
                assert any(mine in r for r in replies), (
                    f"{inputs} came from no read of {INPUTS} inputs of unit {UNIT}"
                )
        except DriverError:
            pass


@groups(20, 1_500)
def test_a_modbus_board_answered_with_garbage_raises_only_driver_errors(examples: int) -> None:
    one = st.one_of(
        st.binary(max_size=16),
        modbus_replies_valid,
        st.builds(mutate, modbus_replies_valid, edits),
    )
    run(
        "board modbus-rtu (garbage replies)",
        examples,
        modbus_property,
        replies=st.lists(one, max_size=5),
        actions=st.lists(st.sampled_from([0, 0, 1, 8]), min_size=1, max_size=4),
    )


@pytest.mark.parametrize(
    ("reply", "problem"),
    [
        (_modbus_frame(UNIT, 1, b"\x00"), "function 1 with 0 bits"),  # FC01, no data
        (_modbus_frame(UNIT, 2, b"\x01\xff"), "function 2 with 8 bits"),  # 8 of 16 inputs
        (_modbus_frame(UNIT, 2, b"\x03\x00\x00\x00"), "function 2 with 24 bits"),
        (_modbus_frame(UNIT, 3, b"\x02\xff\xff"), "function 3 with 0 bits"),  # registers
    ],
    ids=["coils-empty", "inputs-short", "inputs-long", "registers"],
)
def test_a_read_answered_by_another_function_or_too_few_inputs_is_a_frame_error(
    reply: bytes, problem: str
) -> None:
    """Found by the fuzz: such replies read as every input 0 (every door open or every
    door shut, depending on the wiring) instead of failing."""
    client = RtuClient("fuzz://", baudrate=115200, timeout=0.002, retries=0)
    client.socket = ModbusLine([reply])  # type: ignore[assignment]
    board = ModbusRelayBoard(client, UNIT, 8, inputs=INPUTS, status_retries=0)
    with pytest.raises(FrameError, match=problem):
        board.read_inputs()


def test_a_damaged_answer_to_the_energize_time_write_is_logged_not_raised(caplog) -> None:
    """Found by the fuzz: line noise on that one answer stopped the daemon from starting."""
    good = cu16.Frame(ADDRESS << 4, cu16.REPLY_ENERGIZE_TIME, b"\x00\x32").encode()
    damaged = good[:-1] + bytes(((good[-1] + 1) & 0xFF,))
    board = Cu16Board(DirectLink(Garbage([damaged])), ADDRESS, energize_ms=500)
    assert board.energize_confirmed is False
    assert "did not confirm energize time 500 ms" in caplog.text
