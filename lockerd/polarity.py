"""The start-up read of the bank, checked for boards that read as if wired the other way round.

Wrong polarity fails safe (a shut door that reads open is never offered) but
silently. With the boards just read at start, two signs point at it:

- every door a board senses reads open (two doors at least): its
  ``closed_bit`` is suspect, or its ``locked_bit`` where the door is read
  from the lock's own switch;
- a lock reads released with its door shut and no unlock under way (a latch
  is out only while its coil is energized or its door is open): the lock
  board's ``locked_bit`` is suspect, or those latches do not catch.

Each board is named once, with the key to check; a silent board says nothing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import asdict, dataclass

from lockerd.bank import Bank
from lockerd.domain import Door


@dataclass(frozen=True)
class Suspect:
    """One board whose start-up read looks like wrong polarity."""

    board: str
    #: The config key to check on that board: ``closed_bit`` or ``locked_bit``.
    key: str
    #: What was read, for a person.
    detail: str

    def data(self) -> dict[str, str]:
        return asdict(self)


def suspects(bank: Bank, unlocking: set[str]) -> list[Suspect]:
    """At most one suspect per board, from the bank's current view; compartments in
    ``unlocking`` (an unlock intent was live at start) are left out."""
    found: dict[str, Suspect] = {}
    for suspect in (*_doors_all_open(bank, unlocking), *_locks_released(bank, unlocking)):
        found.setdefault(suspect.board, suspect)
    return list(found.values())


def _doors_all_open(bank: Bank, unlocking: set[str]) -> Iterator[Suspect]:
    sensed: dict[str, list[str]] = defaultdict(list)
    for comp in bank.config.compartment:
        if comp.id not in unlocking:
            sensed[comp.door_board].append(comp.id)
    for name, ids in sensed.items():
        board = bank.boards[name]
        if len(ids) < 2 or not board.online or any(bank.door(c) != Door.OPEN for c in ids):
            continue
        key = "locked_bit" if board.config.door_from_hook else "closed_bit"
        yield Suspect(
            name,
            key,
            f"all {len(ids)} doors it senses read open at start; if they are shut,"
            f" {key} is the wrong way round",
        )


def _locks_released(bank: Bank, unlocking: set[str]) -> Iterator[Suspect]:
    released: dict[str, list[str]] = defaultdict(list)
    for comp in bank.config.compartment:
        if comp.id in unlocking or bank.door_from_lock(comp.id):
            continue  # a door read from its lock is judged as a door, above
        if bank.latched(comp.id) is False and bank.door(comp.id) == Door.CLOSED:
            released[comp.board].append(comp.id)
    for name, ids in released.items():
        yield Suspect(
            name,
            "locked_bit",
            f"the locks of {', '.join(ids)} read released at start with their doors shut and"
            " no unlock under way: locked_bit is the wrong way round, or those latches do"
            " not catch",
        )
