"""A status exchange costs the bus thread a fixed handful of system calls (issue 16: idle CPU).

Counted, not timed: the reads and writes on the link's own descriptor, the
port reconfigurations (termios get/set), and the request encodings made
while a board is polled against its twin on a real pty. The frames on the
wire stay those of the codec.
"""

from __future__ import annotations

import os
import termios
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from drivers.generic8a import codec
from drivers.generic8a.board import Generic8aBoard
from drivers.generic8a.sim import Generic8aSimulator, SimGeneric8aBoard
from drivers.kerong import cu16, cu48
from drivers.kerong.board import Cu16Board, Cu48Board
from drivers.kerong.sim import Cu16Simulator, Cu48Simulator, SimCu16, SimCu48
from drivers.link import SerialLink
from drivers.ptypeer import PtyPeer

EXCHANGES = 12


@pytest.fixture
def cu48_link() -> Iterator[tuple[Cu48Simulator, SerialLink]]:
    sim = Cu48Simulator([SimCu48(0), SimCu48(1)]).start()
    link = SerialLink(sim.port, 19200, gap=0)
    yield sim, link
    link.close()
    sim.close()


def count_calls(monkeypatch: pytest.MonkeyPatch, fd: int) -> Counter[str]:
    """Counts reads and writes on ``fd`` and every termios get/set, from now on."""
    calls: Counter[str] = Counter()

    def counted(module: Any, name: str, on_fd: bool) -> None:
        real = getattr(module, name)

        def wrapper(*args: Any) -> Any:
            if not on_fd or args[0] == fd:
                calls[name] += 1
            return real(*args)

        monkeypatch.setattr(module, name, wrapper)

    counted(os, "read", True)
    counted(os, "write", True)
    counted(termios, "tcgetattr", False)
    counted(termios, "tcsetattr", False)
    return calls


def test_a_status_exchange_is_one_write_and_one_read(cu48_link, monkeypatch) -> None:
    sim, link = cu48_link
    boards = [Cu48Board(link, 0), Cu48Board(link, 1)]
    fd = link.fileno()
    assert fd is not None, "a pty is a file descriptor"
    calls = count_calls(monkeypatch, fd)
    for n in range(EXCHANGES):
        assert boards[n % 2].read_inputs().locks == 2**48 - 1
    monkeypatch.undo()
    # The whole 18-byte reply is read in one call; the port is configured once, at open.
    assert calls == Counter(read=EXCHANGES, write=EXCHANGES)
    assert sim.frames()[-2:] == [cu48.status_request(0), cu48.status_request(1)]


def test_a_reply_trickling_in_byte_by_byte_takes_a_few_reads(monkeypatch) -> None:
    """A UART without a FIFO hands the reply over a byte at a time, at the line's pace:
    the link waits out the rest of the reply's wire time instead of waking a byte."""
    reply = cu48.Status(0, 2**48 - 1, 0).encode()
    char = 10 / 19200

    def board(request: bytes) -> None:  # in the pty's thread: one byte a character time
        start = time.monotonic()
        for n, byte in enumerate(reply if request == cu48.status_request(0) else b""):
            time.sleep(max(0.0, start + n * char - time.monotonic()))
            peer.write(bytes((byte,)))

    peer = PtyPeer(board).start()
    link = SerialLink(peer.port, 19200, gap=0)
    try:
        fd = link.fileno()
        assert fd is not None
        calls = count_calls(monkeypatch, fd)
        assert Cu48Board(link, 0, status_retries=0).read_inputs().locks == 2**48 - 1
        monkeypatch.undo()
        # Byte by byte would be 18 reads; at the line's pace it is 2 (a late byte on a busy
        # machine adds one).
        assert 1 <= calls["read"] <= 6, calls
    finally:
        link.close()
        peer.close()


FAMILIES: dict[str, tuple[Any, Any, Any]] = {
    "cu16": (
        lambda: Cu16Simulator([SimCu16(2)]),
        lambda link: Cu16Board(link, 2),
        (cu16, "status_request", 2),
    ),
    "cu48": (
        lambda: Cu48Simulator([SimCu48(2)]),
        lambda link: Cu48Board(link, 2),
        (cu48, "status_request", 2),
    ),
    "generic-8a": (
        lambda: Generic8aSimulator([SimGeneric8aBoard(2, channels=8)]),
        lambda link: Generic8aBoard(link, 2, 8),
        (codec, "query_all_request", 2),
    ),
}


@pytest.mark.parametrize("family", FAMILIES)
def test_a_board_encodes_its_status_request_once(family, monkeypatch) -> None:
    make_sim, make_board, (module, encoder, address) = FAMILIES[family]
    sim = make_sim().start()
    link = SerialLink(sim.port, 19200, gap=0)
    try:
        board = make_board(link)
        request = getattr(module, encoder)(address)
        encoded: list[int] = []
        monkeypatch.setattr(module, encoder, lambda *args: encoded.append(args) or b"")
        for _ in range(3):
            assert board.read_inputs().locks != 0
        assert encoded == []
        assert sim.frames()[-3:] == [request] * 3
    finally:
        link.close()
        sim.close()
