"""Simulator twin of generic 0x8A/0x80 boards on one line.

Each board answers a query-all with its lock bits (reversed group order), a
single query with ``80 BB LL SS``, and pulses a lock on ``8A``; the unlock
reply, if the board is set to send one, carries the configured header and
comes ``unlock_reply_after`` seconds later from a timer, so the board keeps
answering queries meanwhile. Faults: see :mod:`drivers.simserial`.

Not modelled: batch open (0x90), "long power" (0x9A/0x9B: refused by the
daemon, never sent), active reports (0x82), DIP-switch addressing.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from drivers.generic8a import codec
from drivers.simserial import SerialSimulator, SimBoard


@dataclass
class SimGeneric8aBoard(SimBoard):
    channels: int = 8
    #: Header of the unlock reply (0x80 or 0x8A), or None for no reply.
    unlock_reply: int | None = None
    unlock_reply_after: float = 1.0
    #: "The lock needs 1 s to open" (the vendor's protocol text).
    energize_ms: int = 1000

    def state_byte(self, lock: int) -> int:
        return codec.UNLOCK_CMD if (self.lock_bits() >> (lock - 1)) & 1 else 0x00


class Generic8aSimulator(SerialSimulator[SimGeneric8aBoard, codec.Request]):
    name = "xor-sim"

    def __init__(self, boards: list[SimGeneric8aBoard], **kwargs: Any):
        super().__init__(boards, codec.request_decoder(), **kwargs)

    def raw(self, frame: codec.Request) -> bytes:
        return frame.raw

    def handle(self, frame: codec.Request) -> None:
        board = self.boards.get(frame.board)
        if board is None or len(frame.body) != 2:
            return
        lock, command = frame.lock, frame.command
        if frame.header == codec.QUERY and command == codec.QUERY_CMD:
            if lock == 0:
                self._reply(board, codec.AllReply(board.address, board.lock_bits()).encode())
            elif lock <= board.channels:
                reply = codec.LockReply(codec.QUERY, board.address, lock, board.state_byte(lock))
                self._reply(board, reply.encode())
        elif frame.header == codec.UNLOCK and command == codec.UNLOCK_CMD:
            for channel in range(1, board.channels + 1) if lock == 0 else (lock,):
                board.pulse(channel)
            if board.unlock_reply is not None and lock:
                self._answer_unlock(board, lock)

    def _answer_unlock(self, board: SimGeneric8aBoard, lock: int) -> None:
        assert board.unlock_reply is not None
        reply = codec.LockReply(board.unlock_reply, board.address, lock, board.state_byte(lock))
        if self._direct is not None:
            return  # in-process there is no "a second later": the host has moved on
        timer = threading.Timer(board.unlock_reply_after, self._reply, (board, reply.encode()))
        timer.daemon = True
        timer.start()
