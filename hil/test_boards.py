"""Read-only checks of a real bank: every board answers, and the board contract holds."""

from __future__ import annotations

from tests.contract import capabilities


def test_every_board_answers(config, bank) -> None:
    silent = []
    for board in config.boards:
        try:
            bank.drivers[board.name].read_inputs()
        except Exception as exc:  # report every silent board, not just the first
            silent.append(f"{board.name} on {board.bus}: {exc}")
    assert not silent, "boards that did not answer:\n" + "\n".join(silent)


class TestReadInputs(capabilities.ReadInputs):
    """With every door shut by hand each must read shut (and latched, where reported).

    A door reading open usually means the board's closed_bit or locked_bit is
    the wrong way round for this wiring.
    """


class TestPulse(capabilities.Pulse):
    """On real boards only the refusal of a missing channel runs; opening is the site walk's."""


class TestDetectSilence(capabilities.DetectSilence):
    pass


class TestRecover(capabilities.Recover):
    pass
