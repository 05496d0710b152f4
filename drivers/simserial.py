"""What every serial simulator twin shares: boards of doors, the pty or in-process line, faults.

A twin decodes the host's frames with the family's own codec, logs each
valid one with a timestamp (tests assert on what the hardware saw), and
answers through :meth:`SerialSimulator._reply`, where the board's fault
switches act: a silent board never answers; the next replies can be
corrupted (bad checksum), truncated, or sent late.

Wire time is modelled only when ``baud`` is set: each reply then waits for
the request's and its own time on an 8N1 line. Not modelled: bus contention
between boards, and the board's own processing time (``reply_delay``).
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from drivers.framing import StreamDecoder
from drivers.ptypeer import PtyPeer
from drivers.simworld import SimDoor

F = TypeVar("F")
B = TypeVar("B", bound="SimBoard")


@dataclass
class BoardFaults:
    """Switches and counters that change how one simulated board answers."""

    silent: bool = False
    corrupt_replies: int = 0
    truncate_replies: int = 0
    late_replies: int = 0
    late_by: float = 0.5
    #: Sensor bits (bit 0 = input 1) that read inverted in the next status reply
    #: only: a glitch on a reed-switch line.
    glitch_sensors: int = 0


@dataclass
class LineNoise:
    """Damage to frames on the line, both ways: a bit flipped, a frame cut short, or held
    past the host's timeout. ``rate`` is the chance that one frame is damaged."""

    rate: float
    rng: random.Random = field(default_factory=lambda: random.Random(1))
    counts: Counter[str] = field(default_factory=Counter)

    def apply(self, frame: bytes) -> tuple[bytes, float]:
        """The frame as it arrives, and how late (seconds past its normal time)."""
        if not frame or self.rng.random() >= self.rate:
            return frame, 0.0
        kind = self.rng.choice(("corrupt", "truncate", "late"))
        self.counts[kind] += 1
        if kind == "corrupt":
            damaged = bytearray(frame)
            damaged[self.rng.randrange(len(frame))] ^= 1 << self.rng.randrange(8)
            return bytes(damaged), 0.0
        if kind == "truncate":
            return frame[: self.rng.randrange(len(frame))], 0.0
        return frame, 2.0  # far past any reply timeout


@dataclass
class SimBoard:
    """A simulated board: its doors, what is wired to its inputs, and its faults.

    A board's inputs read what is wired to them: a door switch (``wiring``),
    an item sensor (``items``), or nothing (0). With ``wiring`` left None
    every input has the door switch of the same-numbered lock (a board used
    on its own, outside a config).
    """

    address: int
    locked_bit: int = 1
    closed_bit: int = 1
    #: Input -> the lock channel whose door switch is wired to it.
    wiring: dict[int, int] | None = None
    faults: BoardFaults = field(default_factory=BoardFaults)
    channels: int = 16
    #: Inputs, where the board has a different number than locks.
    inputs: int | None = None
    doors: list[SimDoor] = field(default_factory=list)
    #: Input -> the door (compartment) whose item (infrared) sensor is wired to it.
    items: dict[int, SimDoor] = field(default_factory=dict)
    #: Item-sensor value that means something is inside.
    item_bit: int = 1
    #: How long this board energizes a lock it is told to unlock.
    energize_ms: int = 500

    def __post_init__(self) -> None:
        if not self.doors:
            self.doors = [SimDoor() for _ in range(self.channels)]

    def door(self, channel: int) -> SimDoor:
        """The door behind lock ``channel`` (1-based)."""
        return self.doors[channel - 1]

    def pulse(self, channel: int) -> None:
        """The board energizes lock ``channel`` for its energize time."""
        self.door(channel).pulse(self.energize_ms / 1000)

    def lock_bits(self) -> int:
        bits = 0
        for index, door in enumerate(self.doors):
            if door.latched == bool(self.locked_bit):
                bits |= 1 << index
        return bits

    def sensor_bits(self) -> int:
        bits = 0
        for index in range(self.channels if self.inputs is None else self.inputs):
            level = self._input(index + 1)
            if level:
                bits |= 1 << index
        bits ^= self.faults.glitch_sensors
        self.faults.glitch_sensors = 0
        return bits

    def _input(self, number: int) -> int:
        door_channel = number if self.wiring is None else self.wiring.get(number)
        if door_channel is not None and door_channel <= self.channels:
            return int((not self.door(door_channel).is_open) == bool(self.closed_bit))
        watched = self.items.get(number)
        if watched is not None:
            return int(watched.item == bool(self.item_bit))
        return 0  # nothing wired to this input


class SerialSimulator(Generic[B, F]):
    """A chain of simulated boards on one line: a pty, or called in-process."""

    name = "serial-sim"

    def __init__(
        self,
        boards: list[B],
        decoder: StreamDecoder[F],
        *,
        reply_delay: float = 0.0,
        baud: int | None = None,
        now: Callable[[], float] = time.monotonic,
    ):
        self.boards = {board.address: board for board in boards}
        self.reply_delay = reply_delay
        #: Line speed to model (None: replies at pty speed).
        self.baud = baud
        self._request_bytes = 0
        #: Clock for the ``received`` timestamps (a test may give its fake clock).
        self.now = now
        self.decoder = decoder
        #: Every valid frame received, as ``(now(), bytes)``.
        self.received: list[tuple[float, bytes]] = []
        self._cond = threading.Condition()
        self._peer: PtyPeer | None = None
        self._direct: bytearray | None = None
        self.port = ""
        #: Noise on the line (None: a clean line).
        self.noise: LineNoise | None = None
        #: Every reply that left a board while noise is on, as ``(now(), bytes as
        #: sent, damaged, index in received of the request it answers)``.
        self.sent: list[tuple[float, bytes, bool, int]] = []
        #: Set once a reply made late (``faults.late_replies``) is on the line.
        self.late_written = threading.Event()

    def start(self) -> Any:
        """Serve on a new pty; :attr:`port` is its path. Returns the simulator."""
        self._peer = PtyPeer(self._on_bytes, name=self.name)
        self.port = self._peer.port
        self._peer.start()
        return self

    def exchange(self, data: bytes) -> bytes:
        """Handle ``data`` in-process and return the replies at once (no pty, no delays).

        Late replies are lost here: a real host would have flushed them.
        """
        self._direct = bytearray()
        try:
            self._on_bytes(data)
            return bytes(self._direct)
        finally:
            self._direct = None

    def close(self) -> None:
        if self._peer is not None:
            self._peer.close()

    def board(self, address: int) -> B:
        return self.boards[address]

    def frames(self) -> list[bytes]:
        with self._cond:
            return [frame for _, frame in self.received]

    def wait_for_frame(self, frame: bytes, timeout: float, after: int = 0) -> int:
        """Block until ``frame`` has been received (at index >= ``after``); return its index."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for index in range(after, len(self.received)):
                    if self.received[index][1] == frame:
                        return index
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"simulator never received {frame.hex(' ')}")
                self._cond.wait(remaining)

    def _on_bytes(self, data: bytes) -> None:
        if self.noise is not None:
            data, late = self.noise.apply(data)
            if late:
                return  # the board reads it after the host gave up: lost for this exchange
        for frame in self.decoder.feed(data):
            raw = self.raw(frame)
            self._request_bytes = len(raw)
            with self._cond:
                self.received.append((self.now(), raw))
                self._cond.notify_all()
            self.handle(frame)

    def raw(self, frame: F) -> bytes:
        """The bytes of a decoded frame, for the log."""
        raise NotImplementedError

    def handle(self, frame: F) -> None:
        """Act on one valid frame from the host."""
        raise NotImplementedError

    def _reply(self, board: SimBoard, reply: bytes) -> None:
        faults = board.faults
        if faults.silent:
            return
        if faults.corrupt_replies:
            faults.corrupt_replies -= 1
            reply = reply[:-1] + bytes(((reply[-1] + 1) & 0xFF,))
        elif faults.truncate_replies:
            faults.truncate_replies -= 1
            reply = reply[: len(reply) // 2]
        late = 0.0
        if faults.late_replies:
            faults.late_replies -= 1
            late = faults.late_by
        if self.noise is not None:
            clean = reply
            reply, noise_late = self.noise.apply(reply)
            late += noise_late
            answered = len(self.received) - 1
            self.sent.append((self.now(), reply, reply != clean or bool(late), answered))
        if self._direct is not None:
            if not late:  # a late reply misses this exchange; a real host flushes it after
                self._direct += reply
            return
        wire = (self._request_bytes + len(reply)) * 10 / self.baud if self.baud else 0.0
        if self.reply_delay + late + wire:
            time.sleep(self.reply_delay + late + wire)
        assert self._peer is not None
        self._peer.write(reply)
        if late:
            self.late_written.set()
