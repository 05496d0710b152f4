"""Read-only checks of a real bank: every board answers and every door reads shut."""

from __future__ import annotations

import pytest

from lockerd.bank import decode
from lockerd.domain import Door


def test_every_board_answers(config, bank) -> None:
    silent = []
    for board in config.boards:
        try:
            bank.drivers[board.name].read_inputs()
        except Exception as exc:  # report every silent board, not just the first
            silent.append(f"{board.name} on {board.bus}: {exc}")
    assert not silent, "boards that did not answer:\n" + "\n".join(silent)


def test_every_door_reads_closed_and_latched(config, bank) -> None:
    """With every door shut by hand, each must read closed (and latched, where reported).

    A door reading open here usually means the board's closed_bit or
    locked_bit polarity is the wrong way round for this wiring.
    """
    wrong = []
    for comp in config.compartment:
        board = config.board_named(comp.board)
        status = decode(board, comp, bank.drivers[board.name].read_inputs())
        if status.door != Door.CLOSED or status.latched is False:
            wrong.append(f"{comp.id}: door {status.door}, latched {status.latched}")
    if wrong:
        pytest.fail("check the doors are shut, then the polarity:\n" + "\n".join(wrong))
