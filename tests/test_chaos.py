"""Custody under line noise (issues 3 and 9): thousands of unlocks with frames damaged.

Drop-offs and pickups run back to back on a twin whose line flips bits in,
cuts short, or delays some frames in each direction, while now and then a
door is forced open with no unlock intent. The people follow the twin's
physics (drivers/simworld.py): a latch is out only while its coil is
energized, so a person who means to open has a hand on the handle before
the request that pulses, and the door opens at the release. Now and then
nobody comes: the latch catches again when the pulse ends, and the locker
must record no door cycle. A pickup then ends without blame (door.not_opened,
one pulse, the compartment still occupied, the parcel still stored); a
drop-off re-pulses once after a status read and takes the compartment out of
service (the parcel not stored; it waits for the courier: back at the kiosk,
they ask for another compartment and pull the door it shows).

Afterwards four numbers are counted from what physically happened (every
pulse each lock received, every door's opening and shutting on the fake
clock, what the people put in and took out) against the journal and the
store, and each must be zero:

- unrecorded openings: a door opened under an intent with no door.opened,
  or without one with no door.forced;
- invented door cycles: a door.opened/forced or door.closed, or a parcel
  stored or collected, for a door that was not physically open (or shut);
- wrong doors: a pulse of a lock no live intent names, or a door.opened
  whose intent names another compartment, or that another door's opening made;
- lost parcels: a parcel whose place in the store (stored in a compartment,
  or gone) is not where it physically is.

The guarantees of issue 3 are checked too: every pulse is followed by a good
status read of its board; every re-pulse came after a good read showing the
lock still latched (and, where the board has door sensors, the door shut);
a forced door is reported within one poll period and its confirming reads
where no frame was damaged meanwhile (a poll the noise cost adds a period).

The locker waits 5 s, not 20, for a pulsed door: its board is read every
20 ms meanwhile, and the shorter wait keeps each nobody-came case cheap.
The default suite runs a short soak per family; the ``slow`` group runs
10,000 unlocks on a sensor-read bank (CU16) and on two hook-read banks (CU16,
0x8A), 3,500 on each kind of CU48 bank, and prints the figures.
"""

from __future__ import annotations

import bisect
import math
import random
from collections import Counter
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

import pytest

from drivers.generic8a import codec as xor
from drivers.kerong import cu16, cu48
from drivers.simserial import LineNoise
from drivers.simworld import SimDoor
from lockerd.bank import CONFIRM_GAP
from lockerd.domain import Door
from lockerd.errors import FlowError, Unauthorized
from lockerd.flows import Flow
from tests.rig import Rig, bank_config

STEP = 0.1
#: Journal times are wall-clock floats near 1.8e9 s (about 1e-7 s resolution);
#: the fake clock never steps by less than 5 ms, so this matches one instant.
TIME_MATCH = 1e-4
SIZES = ("S", "M", "L")
#: The chance that nobody comes to the door a request opens.
NOBODY = 0.07
FORCE = 0.02
DOOR_OPEN_S = 5.0
OPEN_EVENTS = ("door.opened", "door.forced")
CUSTODY_EVENTS = ("parcel.stored", "parcel.collected", "parcel.returned")
#: Events that end the time a live intent may have its lock pulsed.
INTENT_ENDS = ("door.opened", "door.jammed", "dropoff.released", "door.not_opened")


@dataclass
class Opening:
    """One physical opening of a door, on the fake clock."""

    opened: float
    closed: float = math.inf
    reported: list[str] = field(default_factory=list)


class World:
    """What physically happened: each door's openings, and where each parcel is."""

    def __init__(self, rig: Rig):
        self.rig = rig
        self.openings: dict[str, list[Opening]] = {}
        self.starts: dict[str, list[float]] = {}
        #: Barcode -> the compartment that physically holds it.
        self.inside: dict[str, str] = {}
        for comp in rig.config.compartment:
            self.openings[comp.id], self.starts[comp.id] = [], []
            rig.door(comp.id).listeners.append(partial(self._moved, comp.id))

    def _moved(self, comp: str, door: SimDoor) -> None:
        history = self.openings[comp]
        was_open = bool(history) and history[-1].closed == math.inf
        now = self.rig.clock.monotonic()
        if door.is_open and not was_open:
            history.append(Opening(now))
            self.starts[comp].append(now)
        elif was_open and not door.is_open:
            history[-1].closed = now

    def opening_at(self, comp: str, at: float) -> Opening | None:
        """The opening of ``comp`` under way at ``at``, if any."""
        index = bisect.bisect_right(self.starts[comp], at + TIME_MATCH) - 1
        if index < 0 or self.openings[comp][index].closed < at - TIME_MATCH:
            return None
        return self.openings[comp][index]

    def put_in(self, comp: str, barcode: str) -> None:
        self.rig.door(comp).put_in()
        self.inside[barcode] = comp

    def take_out(self, comp: str) -> None:
        self.rig.door(comp).take_out()
        self.inside = {b: c for b, c in self.inside.items() if c != comp}


@dataclass
class Soak:
    rig: Rig
    rng: random.Random
    world: World
    #: Compartment -> (barcode, pickup code) of what the store says it holds.
    stored: dict[str, tuple[str, str]] = field(default_factory=dict)
    #: Forced doors: (detection delay, whether no frame was damaged meanwhile).
    forced: list[tuple[float, bool]] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)
    nobody: list[int] = field(default_factory=list)  # intents nobody came to
    nobody_broken: list[str] = field(default_factory=list)
    journal: list[dict[str, Any]] = field(default_factory=list)
    kinds: Counter[str] = field(default_factory=Counter)
    #: Technician checks refused because every read of the board was lost to noise.
    unreachable: int = 0
    by_intent: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    lost: set[str] = field(default_factory=set)
    token: str = ""
    serial: int = 0

    async def run(self, unlocks: int) -> None:
        self.token = await self.rig.courier()
        while self.count("lock.pulsed") < unlocks:
            if self.rng.random() < FORCE:
                await self.force_a_door()
            elif self.stored and (len(self.stored) >= 4 or self.rng.random() < 0.5):
                await self.pickup()
            else:
                await self.dropoff()
            await self.technician()
            self.lost |= lost_parcels(self)

    def count(self, kind: str) -> int:
        self.read_journal()
        return self.kinds[kind]

    def read_journal(self) -> None:
        new = self.rig.store.journal.events(
            after=self.journal[-1]["seq"] if self.journal else 0, limit=-1
        )
        self.journal += new
        for event in new:
            self.kinds[event["type"]] += 1
            if "intent" in event["data"]:
                self.by_intent.setdefault(event["data"]["intent"], []).append(event)

    async def dropoff(self) -> None:
        self.serial += 1
        barcode, size = f"SOAK{self.serial:06d}", self.rng.choice(SIZES)
        nobody = self.rng.random() < NOBODY
        # The courier has a hand ready on every door the locker may give them.
        ready = [] if nobody else self.candidates(size)
        for comp in ready:
            self.rig.door(comp).hand = True
        try:
            flow = await self.rig.api.dropoff_scan(self.token, barcode, size)
        except Unauthorized:
            self.hands_off()
            self.token = await self.rig.courier()
            return
        except FlowError as exc:
            self.hands_off()
            self.outcomes[exc.code] += 1
            return
        self.hands_off(keep=flow.compartment)  # kept pulling, should the pulse be lost
        await self.attend(flow, nobody, put=barcode)
        if flow.state == "did_not_open":
            # The courier is back at the kiosk and asks for another compartment.
            for comp in self.candidates(size):
                self.rig.door(comp).hand = True
            try:
                await self.rig.api.dropoff_size(self.token, flow.id, flow.offered_size)
            except (FlowError, Unauthorized) as exc:
                self.hands_off()
                self.outcomes[getattr(exc, "code", "logged_out")] += 1
                return
            self.hands_off(keep=flow.compartment)
            await self.attend(flow, nobody=False, put=barcode)
        if flow.state == "stored":
            assert flow.compartment is not None
            self.stored[flow.compartment] = (barcode, self.rig.code_for(barcode))

    def candidates(self, size: str) -> list[str]:
        fits = {
            c.id for c in self.rig.config.compartment if SIZES.index(c.size) >= SIZES.index(size)
        }
        free = {r.id for r in self.rig.store.compartments.all() if r.state == "free"}
        return sorted((fits & free) - self.rig.locker.bank.unavailable())

    def hands_off(self, keep: str | None = None) -> None:
        for comp in self.rig.config.compartment:
            if comp.id != keep:
                self.rig.door(comp.id).hand = False

    async def pickup(self) -> None:
        comp = self.rng.choice(sorted(self.stored))
        nobody = self.rng.random() < NOBODY
        self.rig.door(comp).hand = not nobody
        try:
            flow = await self.rig.api.pickups.code(self.stored[comp][1])
        except FlowError as exc:
            self.hands_off()
            self.outcomes[exc.code] += 1
            return
        await self.attend(flow, nobody, take=self.stored[comp][0])
        if flow.state == "collected":
            del self.stored[comp]

    async def attend(self, flow: Flow, nobody: bool, put: str = "", take: str = "") -> None:
        """The person at the flow's door: reach in when it gives, shut it once the kiosk
        says open. Where the flow moves on to another compartment by itself, the
        person pulls the door the kiosk shows."""
        at, intent, present = flow.compartment, flow.intent, not nobody
        reached: set[str] = set()
        shut_at = math.inf
        for _ in range(int(300 / STEP)):
            if not flow.active:
                break
            comp = flow.compartment
            if comp is not None and comp != at:
                if not present:
                    self.nobody_came(at, intent, put, take)
                at, intent, present = comp, flow.intent, True
                self.rig.door(comp).pull()
            door = self.rig.door(comp) if comp else None
            if present and door and door.is_open and comp not in reached:
                reached.add(comp)
                if put:
                    self.world.put_in(comp, put)
                else:
                    self.world.take_out(comp)
            if flow.state == "open" and comp in reached and door.is_open:
                if shut_at == math.inf:  # the kiosk says open: done in a moment
                    shut_at = self.rig.clock.monotonic() + self.rng.uniform(0, 1)
                if self.rig.clock.monotonic() >= shut_at:
                    door.close()
            await self.rig.clock.advance(STEP)
        assert not flow.active, f"{flow.view()} never finished"
        if not present:
            self.nobody_came(at, intent, put, take)
        self.outcomes[str(flow.state)] += 1
        self.hands_off()
        for comp in reached:  # a door the locker gave up on is shut all the same
            self.rig.door(comp).close()
            for _ in range(50):
                if self.rig.locker.bank.door(comp) == Door.CLOSED:
                    break
                await self.rig.clock.advance(STEP)
        await self.rig.polls(1)

    def nobody_came(self, comp: str | None, intent: int | None, put: str, take: str) -> None:
        """Nobody pulled ``comp``'s door: no door cycle, custody unchanged; a pickup ends
        with one pulse, its compartment still occupied (door.not_opened); a drop-off's
        compartment goes out of service after one status-checked re-pulse."""
        assert comp is not None and intent is not None
        self.read_journal()
        self.nobody.append(intent)
        mine = self.by_intent.get(intent, [])
        attempts = [e["data"]["attempt"] for e in mine if e["type"] == "lock.pulsed"]
        jammed = [e["at"] - self.offset for e in mine if e["type"] == "door.jammed"]
        row = self.rig.store.compartments.get(comp)
        inside = {barcode for barcode, where in held(self.rig).items() if where == comp}
        problems = []
        if any(e["type"] == "door.opened" for e in mine):
            problems.append("a door cycle was recorded")
        if take:
            problems += _nobody_at_pickup(mine, attempts, (row.state, row.reason))
        elif (row.state, row.reason) != ("out_of_service", "door_did_not_open"):
            problems.append(f"{row.state} ({row.reason})")
        if not take and attempts != [1, 2] and not (attempts == [1] and self.unreadable(jammed)):
            problems.append(f"pulse attempts {attempts}")
        if (put and put in inside) or (take and take not in inside):
            problems.append(f"custody changed: holds {inside}")
        if problems:
            self.nobody_broken.append(f"{comp} intent {intent}: {', '.join(problems)}")

    def unreadable(self, jammed: list[float]) -> bool:
        """The status read before the re-pulse failed: no good reply at the give-up."""
        sent = self.rig.sim.sent
        at = jammed[0] if jammed else math.nan
        return not any(abs(t - at) < TIME_MATCH and not damaged for t, _, damaged, _ in sent)

    def damaged(self) -> int:
        assert self.rig.sim.noise is not None
        return sum(self.rig.sim.noise.counts.values())

    @property
    def offset(self) -> float:
        return self.rig.clock.time() - self.rig.clock.monotonic()

    async def force_a_door(self) -> None:
        comp = self.rng.choice([c.id for c in self.rig.config.compartment])
        if self.rig.locker.bank.door(comp) != Door.CLOSED:
            return
        before, damaged = self.count("door.forced"), self.damaged()
        self.rig.door(comp).force()
        started = self.rig.clock.monotonic()
        while self.count("door.forced") == before:
            await self.rig.clock.advance(0.005)
            assert self.rig.clock.monotonic() - started < 5, f"forced {comp} never reported"
        delay = self.rig.clock.monotonic() - started
        self.forced.append((delay, self.damaged() == damaged))
        self.rig.door(comp).close()
        await self.rig.polls()

    async def technician(self) -> None:
        """Put checked compartments back in use, so the soak keeps every door busy."""
        for row in self.rig.store.compartments.all():
            broken = row.state in ("out_of_service", "needs_check")
            if broken and self.rig.locker.bank.door(row.id) == Door.CLOSED:
                try:
                    await self.rig.api.return_to_service(row.id, "soak")
                except FlowError as exc:
                    # Every try of the check's read was lost to the noise: the
                    # compartment stays out of use, and the technician tries again.
                    assert exc.code == "compartment_unreachable", exc
                    self.unreachable += 1


def held(rig: Rig) -> dict[str, str]:
    """Barcode -> compartment of every parcel the store says is inside."""
    query = "SELECT barcode, compartment_id FROM parcels WHERE state IN ('stored', 'expired')"
    return dict(rig.store.db.conn.execute(query).fetchall())


def lost_parcels(soak: Soak) -> set[str]:
    """Barcodes whose place in the store is not where the parcel physically is."""
    held_now, inside = held(soak.rig), soak.world.inside
    return {b for b in held_now.keys() | inside.keys() if held_now.get(b) != inside.get(b)}


@dataclass
class Tally:
    """The four counts, with the first few cases of each for the failure message."""

    counts: Counter[str] = field(default_factory=Counter)
    cases: dict[str, list[str]] = field(default_factory=dict)

    def add(self, kind: str, case: str) -> None:
        self.counts[kind] += 1
        self.cases.setdefault(kind, [])
        if len(self.cases[kind]) < 10:
            self.cases[kind].append(case)


def _nobody_at_pickup(
    mine: list[dict[str, Any]], attempts: list[int], row: tuple[str, str | None]
) -> list[str]:
    """What is wrong with a pickup nobody came to: it must end with one pulse and
    door.not_opened, the compartment still occupied and nothing out of service."""
    problems = [] if row == ("occupied", None) else [f"{row[0]} ({row[1]})"]
    if attempts != [1]:
        problems.append(f"pulse attempts {attempts}")
    if [e["type"] for e in mine if e["type"] in ("door.not_opened", "door.jammed")] != [
        "door.not_opened"
    ]:
        problems.append("not ended by door.not_opened")
    return problems


Windows = dict[str, tuple[list[float], list[float]]]


def tally(soak: Soak) -> Tally:
    world, out = soak.world, Tally()
    soak.read_journal()
    events = soak.journal
    intents = {e["data"]["intent"]: e for e in events if e["type"] == "unlock.intent"}
    by_comp: dict[str, list[dict[str, Any]]] = {c: [] for c in world.openings}
    for event in events:
        comp = event["data"].get("compartment")
        if comp in by_comp:
            by_comp[comp].append(event)
    for comp, mine in by_comp.items():
        _door_records(soak, comp, mine, intents, out)
    windows = _live_windows(soak, intents)
    for comp, openings in world.openings.items():
        for o in openings:
            wanted = "door.opened" if _live(windows, comp, o.opened) else "door.forced"
            if wanted not in o.reported:
                out.add("unrecorded openings", f"{comp} at {o.opened:.3f}: {o.reported}")
    door_comp = {id(soak.rig.door(c.id)): c.id for c in soak.rig.config.compartment}
    for board in soak.rig.sim.boards.values():
        for lock, door in enumerate(board.doors, 1):
            comp = door_comp.get(id(door), "")
            for at in door.pulses:
                if not _live(windows, comp, at):
                    out.add("wrong doors", f"lock {lock} ({comp}) pulsed at {at:.3f}")
    for barcode in soak.lost | lost_parcels(soak):
        out.add("lost parcels", f"{barcode}: {soak.world.inside.get(barcode)}")
    return out


def _live_windows(soak: Soak, intents: dict[int, Any]) -> Windows:
    """Compartment -> (starts, ends) of the times a live intent let its lock be pulsed:
    from the intent until its door is seen open, it is given up or released."""
    ends: dict[int, float] = {}
    for event in soak.journal:
        if event["type"] in INTENT_ENDS and event["data"].get("intent") in intents:
            ends.setdefault(event["data"]["intent"], event["at"] - soak.offset)
    windows: Windows = {}
    for intent, event in intents.items():  # in journal order, so each list is sorted
        starts, stops = windows.setdefault(event["data"]["compartment"], ([], []))
        starts.append(event["at"] - soak.offset)
        stops.append(ends.get(intent, math.inf))
    return windows


def _live(windows: Windows, comp: str, at: float) -> bool:
    starts, stops = windows.get(comp, ([], []))
    k = bisect.bisect_right(starts, at + TIME_MATCH) - 1
    return k >= 0 and at <= stops[k] + TIME_MATCH


def _door_records(
    soak: Soak, comp: str, mine: list[dict[str, Any]], intents: dict[int, Any], out: Tally
) -> None:
    """Walk one compartment's journal: every door record against the door's history."""
    world, offset = soak.world, soak.offset
    reported = False  # an opening reported since the last door.closed
    current: Opening | None = None  # the physical opening it was matched to
    cycle: Opening | None = None  # the last door cycle, until a custody change uses it
    for event in mine:
        kind, at = event["type"], event["at"] - offset
        where = f"{kind} {comp} at {at:.3f}"
        if kind in OPEN_EVENTS:
            reported, current = True, world.opening_at(comp, at)
            intent = intents.get(event["data"].get("intent"))
            if intent is not None and intent["data"]["compartment"] != comp:
                out.add("wrong doors", f"{where} for intent {intent['data']}")
            elif current is None:
                others = [c for c in world.openings if c != comp and world.opening_at(c, at)]
                out.add("wrong doors" if others else "invented door cycles", f"{where} {others}")
            else:
                current.reported.append(kind)
        elif kind == "door.closed":
            if not reported or (current is not None and current.closed > at + TIME_MATCH):
                out.add("invented door cycles", f"{where}: the door was not shut")
            cycle, current, reported = current, None, False
        elif kind in CUSTODY_EVENTS:
            if cycle is None:
                out.add("invented door cycles", f"{where}: no door cycle completed it")
            cycle = None


def _status_reader(family: str):
    """Decode a reply from the twin's log into (lock bits, sensor bits or None)."""
    if family.startswith("kerong-cu16"):
        decoder, decode = cu16.Decoder(cu16.REPLY_LENGTHS), cu16.decode_status
    elif family.startswith("kerong-cu48"):
        decoder, decode = cu48.Decoder(cu48.REPLY_LENGTHS), cu48.decode_status
    else:
        decoder, decode = xor.reply_decoder(8), lambda reply: reply

    def read(raw: bytes):
        decoder.reset()
        frames = decoder.feed(raw)
        if not frames:
            return None
        status = decode(frames[0])
        if family == "generic-8a":
            return status.bits, None
        return status.locks, status.sensors

    return read


def check_guarantees(soak: Soak, family: str) -> tuple[dict[str, object], list[str]]:
    """Issue 3's guarantees: the figures they are measured on, and what broke them."""
    rig, broken = soak.rig, []
    # A forced door is reported within one poll period (plus the confirming
    # reads) where no frame was damaged meanwhile; within a second regardless.
    interval = rig.config.timing.poll_interval_ms / 1000
    bound = interval + CONFIRM_GAP * (rig.config.timing.debounce_polls - 1) + 0.01
    slowest = max((delay for delay, clean in soak.forced if clean), default=0.0)
    if slowest > bound or max((d for d, _ in soak.forced), default=0.0) > 1.0:
        broken.append(f"forced doors reported after {sorted(soak.forced)[-3:]}")
    read = _status_reader(family)
    good = [(t, raw, asked) for t, raw, damaged, asked in rig.sim.sent if not damaged]
    times, asks = [t for t, _, _ in good], [asked for _, _, asked in good]
    received_at = [t for t, _ in rig.sim.received]
    comps = {c.id: c for c in rig.config.compartment}
    board = rig.config.boards[0]
    pulses = [e for e in soak.journal if e["type"] == "lock.pulsed"]
    unchecked, late = 0, 0.0
    for pulse in pulses:
        at, comp = pulse["at"] - soak.offset, comps[pulse["data"]["compartment"]]
        frame = _unlock_frame(family, board.address, comp.lock)
        lo, hi = (bisect.bisect(received_at, at + d) for d in (-TIME_MATCH, TIME_MATCH))
        index = next((k for k in range(lo, hi) if rig.sim.received[k][1] == frame), None)
        # Every pulse is followed by a good status read of its board.
        k = bisect.bisect(asks, index) if index is not None else bisect.bisect(times, at)
        while k < len(good) and read(good[k][1]) is None:
            k += 1
        late = max(late, times[k] - at if k < len(good) else math.inf)
        if pulse["data"]["attempt"] != 2:
            continue
        if index is None:
            unchecked += 1  # the re-pulse itself was damaged on the way: no lock moved
            continue
        # No blind retry: the read the daemon made just before showed the latch
        # caught (and the door shut, where a door sensor is read).
        locks, sensors = read(good[bisect.bisect_left(asks, index) - 1][1])
        shut = rig.locker.bank.door_from_lock(comp.id) or (
            (sensors >> (comp.sensor_channel - 1)) & 1 == board.closed_bit
        )
        if (locks >> (comp.lock - 1)) & 1 != board.locked_bit or not shut:
            broken.append(f"blind re-pulse {pulse}")
    if late > DOOR_OPEN_S:
        broken.append(f"a pulse waited {late:.3f} s for a good status read")
    again = [p for p in pulses if p["data"]["attempt"] == 2]
    nobody = set(soak.nobody)
    figures = {
        "re-pulses": len(again),
        "re-pulses after a lost pulse": sum(p["data"]["intent"] not in nobody for p in again),
        "re-pulses lost on the line": unchecked,
        "forced": len(soak.forced),
        "max forced-to-alarm ms": round(max((d for d, _ in soak.forced), default=0) * 1000, 1),
        "max on a clean line ms": round(slowest * 1000, 1),
        "bound ms": round(bound * 1000, 1),
        "max pulse-to-status-read ms": round(late * 1000, 1),
        "technician checks lost on the line": soak.unreachable,
    }
    return figures, broken


def _unlock_frame(family: str, address: int, lock: int) -> bytes:
    if family.startswith("kerong-cu16"):
        return cu16.unlock_request(address, lock)
    if family.startswith("kerong-cu48"):
        return cu48.open_request(address, lock)
    return xor.unlock_request(address, lock)


COUNTS = ("unrecorded openings", "invented door cycles", "wrong doors", "lost parcels")


async def soak(tmp_path, family: str, unlocks: int, rate: float, seed: int) -> dict[str, Any]:
    config = bank_config(tmp_path, family=family)
    config = replace(config, timing=replace(config.timing, door_open_timeout_s=DOOR_OPEN_S))
    rig = await Rig(config).start()
    try:
        rig.sim.noise = LineNoise(rate, random.Random(seed))
        run = Soak(rig, random.Random(seed + 1), World(rig))
        await run.run(unlocks)
        await rig.polls()
        counts = tally(run)
        guaranteed, broken = check_guarantees(run, family)
        figures = {
            "unlocks": run.count("lock.pulsed"),
            "damaged frames": run.damaged(),
            "nobody came": len(run.nobody),
            **{kind: counts.counts[kind] for kind in COUNTS},
            **guaranteed,
            "openings": sum(len(o) for o in run.world.openings.values()),
            "outcomes": dict(run.outcomes),
        }
        print(f"\nsoak {family}: {figures}")
        for kind in COUNTS:
            assert not counts.counts[kind], (kind, counts.cases[kind])
        assert not run.nobody_broken, run.nobody_broken[:10]
        assert not broken, broken[:10]
        return figures
    finally:
        await rig.stop()


#: Family, unlocks in the slow soak (sensor-read: door switches; the others read
#: each door from its lock's switch).
SOAKS = [
    ("kerong-cu16", 10_000),
    ("kerong-cu16-hook", 10_000),
    ("generic-8a", 10_000),
    ("kerong-cu48", 3_500),
    ("kerong-cu48-hook", 3_500),
]


@pytest.mark.parametrize("family", [family for family, _ in SOAKS])
async def test_short_soak_with_heavy_noise(tmp_path, family) -> None:
    figures = await soak(tmp_path, family, unlocks=300, rate=0.05, seed=7)
    assert figures["re-pulses after a lost pulse"] > 0, "the noise should have cost re-pulses"
    assert figures["nobody came"] > 0
    assert figures["forced"] > 0


@pytest.mark.slow
@pytest.mark.parametrize(("family", "unlocks"), SOAKS)
async def test_thousands_of_unlocks_at_one_percent(tmp_path, family, unlocks) -> None:
    figures = await soak(tmp_path, family, unlocks=unlocks, rate=0.01, seed=2026)
    assert figures["unlocks"] >= unlocks
    assert figures["re-pulses lost on the line"] < figures["re-pulses"] / 2
