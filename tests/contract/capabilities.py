"""Board contract, one class per capability; run on every twin here and on real boards in hil/.

A test takes a ``target``: a board opened exactly as the daemon opens it,
with its config, and (on a twin) the simulated world behind it. Tests that
need to change the world (open a door, silence a board) skip on real
hardware, saying what a person would do instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from drivers.base import LockBoard
from drivers.errors import BoardTimeout, ChannelError, PulseRefused
from drivers.simserial import BoardFaults
from drivers.simworld import SimDoor
from lockerd.bank import decode
from lockerd.config.schema import CompartmentConfig
from lockerd.domain import Door
from lockerd.families import BoardConfig


@dataclass
class Target:
    """One board under test, and the compartments whose door it senses."""

    board: BoardConfig
    driver: LockBoard
    compartments: list[CompartmentConfig]
    #: The twin's door behind a lock channel; None on real hardware.
    door: Callable[[int], SimDoor] | None = None
    #: Silences the twin (True) or lets it answer again (False); None where it cannot.
    silence: Callable[[bool], None] | None = None
    #: The twin's reply faults; None where replies cannot be damaged.
    faults: BoardFaults | None = None
    #: Moves the twin's clock on (energize times run on it).
    advance: Callable[[float], None] = lambda seconds: None
    #: The config's ``safety.max_pulse_ms``, which the board was opened with.
    max_pulse_ms: int = 1000

    def status(self, comp: CompartmentConfig) -> Any:
        return decode(self.board, comp, self.driver.read_inputs())

    def needs_twin(self) -> Callable[[int], SimDoor]:
        if not self.board.channels:
            pytest.skip("this board senses doors; it drives no lock")
        if self.door is None:
            pytest.skip("needs a person at the locker; run the site walk instead")
        return self.door

    def silencer(self) -> Callable[[bool], None]:
        if self.silence is None:
            pytest.skip("needs a twin; on a real board, unplug it and watch board.offline")
        return self.silence


class ReadInputs:
    def test_every_door_reads_shut_and_latched(self, target: Target) -> None:
        for comp in target.compartments:
            status = target.status(comp)
            assert status.door == Door.CLOSED, comp.id
            assert status.latched in (True, None), comp.id

    def test_reads_agree(self, target: Target) -> None:
        assert target.driver.read_inputs() == target.driver.read_inputs()


class Pulse:
    def test_pulse_releases_that_lock_only(self, target: Target) -> None:
        door = target.needs_twin()
        first, second = target.compartments[0], target.compartments[1]
        target.driver.pulse(first.lock, 50)
        status = target.status(first)  # answered after the unlock: the line is in order
        assert len(door(first.lock).pulses) == 1
        assert len(door(second.lock).pulses) == 0
        assert status.latched in (False, None)
        assert target.status(second).latched in (True, None)

    def test_a_door_pulled_during_the_pulse_opens_and_reads_open(self, target: Target) -> None:
        door = target.needs_twin()
        comp = target.compartments[0]
        assert not door(comp.lock).pull(), "a latched door must not open"
        target.driver.pulse(comp.lock, 50)  # the person's pull meets the release
        target.driver.read_inputs()  # answered after the unlock: the line is in order
        assert door(comp.lock).is_open
        target.advance(30)  # long after the pulse: the open door holds the latch out
        status = target.status(comp)
        assert status.door == Door.OPEN
        assert status.latched in (False, None)
        door(comp.lock).close()
        assert target.status(comp).door == Door.CLOSED
        assert target.status(comp).latched in (True, None)

    def test_a_door_nobody_pulls_latches_again_when_the_pulse_ends(self, target: Target) -> None:
        door = target.needs_twin()
        comp = target.compartments[0]
        target.driver.pulse(comp.lock, 50)
        target.driver.read_inputs()  # the line is in order
        target.advance(30)  # past any board's energize time
        status = target.status(comp)
        assert status.door == Door.CLOSED
        assert status.latched in (True, None)
        assert not door(comp.lock).open(), "the latch caught again: the door stays shut"

    def test_a_channel_the_board_lacks_is_refused(self, target: Target) -> None:
        with pytest.raises(ChannelError):
            target.driver.pulse(target.board.channels + 1, 50)

    def test_a_pulse_over_the_limit_is_refused_and_never_sent(self, target: Target) -> None:
        """The bank refuses it first; the board layer refuses it again (nothing sent, so
        this is safe on a real board too)."""
        if not target.board.channels:
            pytest.skip("this board senses doors; it drives no lock")
        lock = target.compartments[0].lock
        assert target.driver.max_pulse_ms == target.max_pulse_ms
        with pytest.raises(PulseRefused, match="max_pulse_ms"):
            target.driver.pulse(lock, target.driver.max_pulse_ms + 1)
        if target.door is not None:
            assert target.door(lock).pulses == []


class DetectSilence:
    def test_a_silent_board_times_out(self, target: Target) -> None:
        target.silencer()(True)
        with pytest.raises(BoardTimeout):
            target.driver.read_inputs()


class Recover:
    def test_answers_again_after_silence(self, target: Target) -> None:
        silence = target.silencer()
        silence(True)
        with pytest.raises(BoardTimeout):
            target.driver.read_inputs()
        silence(False)
        assert target.status(target.compartments[0]).door == Door.CLOSED

    @pytest.mark.parametrize("fault", ["corrupt_replies", "truncate_replies"])
    def test_a_damaged_reply_is_dropped_and_the_read_retried(
        self, target: Target, fault: str
    ) -> None:
        if target.faults is None:
            pytest.skip("no serial reply to damage on this board")
        setattr(target.faults, fault, 1)
        assert target.status(target.compartments[0]).door == Door.CLOSED
