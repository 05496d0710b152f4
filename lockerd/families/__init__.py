"""The board families lockerd drives: one module each, one row each in :data:`FAMILIES`.

Adding a family: its driver in ``drivers/<family>/`` (codec, board, twin), a
module here with its ``[[board]]`` dataclass, checks, check-config line and
factory ending in a :class:`~lockerd.families.base.Family`, and its row below.
Config parsing, ``lockerd.hardware``, ``lockerd check-config`` and
docs/config-reference.md all read this table; the tests build a bank of every
family from ``tests/families.py``.
"""

from __future__ import annotations

from typing import Any

from lockerd.families.base import BoardConfig, Family
from lockerd.families.generic8a import GENERIC_8A
from lockerd.families.gpio import GPIO
from lockerd.families.i2c import I2C
from lockerd.families.kerong import CU16, CU48
from lockerd.families.modbus import MODBUS_RTU

__all__ = ["FAMILIES", "PROTOCOLS", "BoardConfig", "Family", "family_of"]

#: ``[[bus]] protocol`` -> its family, in the order docs/config-reference.md lists them.
FAMILIES: dict[str, Family] = {
    family.protocol: family for family in (CU16, CU48, GENERIC_8A, MODBUS_RTU, GPIO, I2C)
}

#: Every protocol a ``[[bus]]`` may name.
PROTOCOLS = tuple(FAMILIES)


def family_of(board: Any) -> Family:
    """The family whose ``[[board]]`` section ``board`` is."""
    return next(f for f in FAMILIES.values() if type(board) is f.board)
