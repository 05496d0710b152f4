"""The test bank as data, and what each board family changes in it.

The bank is five compartments (S1, S2, M1, M2, L1) on one simulated lock board
named "cu0" of the family asked for. A family name is a lock board's
(:data:`LOCK_BOARDS`), optionally ``+chip``: the doors then sensed by an I2C
expander named "doors" (:data:`EXPANDERS`). Tests change the data (a dict per
section, as the TOML has it) and render it with :func:`text`, or parse it with
:func:`config`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lockerd.config import Config, parse
from tests.toml import dumps

Data = dict[str, Any]


@dataclass(frozen=True)
class LockBoard:
    """A family's lock board "cu0" on the bus "rs485", as the test bank wires it."""

    protocol: str
    #: Its keys besides name, bus and power group, given (locked_bit, closed_bit).
    keys: Callable[[int, int], Data]
    #: The bus's keys besides name and protocol.
    bus: Data = field(default_factory=lambda: {"simulator": True})
    #: Door switches are wired to its inputs (L1's to input 9); else each door is its
    #: lock's own switch.
    door_switches: bool = True
    #: Keys that wire door switches to it, left out when an expander senses the doors.
    switch_keys: tuple[str, ...] = ()
    #: A pulse length for its bank (a GPIO pulse takes real time).
    pulse_ms: int | None = None


def _kerong(door_input: str) -> Callable[[int, int], Data]:
    def keys(locked_bit: int, closed_bit: int) -> Data:
        bits = {"locked_bit": locked_bit, "closed_bit": closed_bit}
        return {"address": 0, **bits, "door_input": door_input}

    return keys


GPIO_LOCK_PINS = [17, 27, 22, 23, 24]
GPIO_DOOR_PINS = [5, 6, 13, 19, 26, 12, 16, 20, 21]

LOCK_BOARDS: dict[str, LockBoard] = {
    "kerong-cu16": LockBoard("kerong-cu16", _kerong("sensor")),
    "kerong-cu16-hook": LockBoard("kerong-cu16", _kerong("hook"), door_switches=False),
    "kerong-cu48": LockBoard("kerong-cu48", _kerong("sensor")),
    "kerong-cu48-hook": LockBoard("kerong-cu48", _kerong("hook"), door_switches=False),
    "generic-8a": LockBoard(
        "generic-8a",
        lambda locked, closed: {"address": 1, "locks": 16, "locked_bit": locked},
        door_switches=False,
    ),
    "gpio": LockBoard(
        "gpio",
        lambda locked, closed: {
            "lock_pins": GPIO_LOCK_PINS,
            "door_pins": GPIO_DOOR_PINS,
            "closed_bit": closed,
        },
        bus={"pin_factory": "mock"},
        switch_keys=("door_pins",),
        pulse_ms=50,
    ),
    "modbus-rtu": LockBoard(
        "modbus-rtu",
        lambda locked, closed: {"address": 1, "relays": 8, "inputs": 16, "closed_bit": closed},
        bus={"simulator": True, "baud": 9600, "timeout_ms": 100},
    ),
}

#: chip -> (its I2C address, the input L1's door switch is wired to): a PCF8574 has 8.
EXPANDERS: dict[str, tuple[int, int]] = {"mcp23017": (0x20, 9), "pcf8574": (0x38, 6)}

#: Every family the per-family tests run on: each lock board, and an expander on two.
FAMILIES = (*LOCK_BOARDS, "gpio+mcp23017", "generic-8a+pcf8574")

COMPARTMENTS: list[Data] = [
    {"id": "S1", "size": "S", "column": 1, "row": 1, "board": "cu0", "lock": 1},
    {"id": "S2", "size": "S", "column": 1, "row": 2, "board": "cu0", "lock": 2},
    {"id": "M1", "size": "M", "column": 2, "row": 1, "board": "cu0", "lock": 3},
    {"id": "M2", "size": "M", "column": 2, "row": 2, "board": "cu0", "lock": 4, "low_reach": True},
    {"id": "L1", "size": "L", "column": 3, "row": 1, "board": "cu0", "lock": 5},
]


def _common(state: Path) -> Data:
    """Every section but the buses, the boards and the compartments."""
    return {
        "locker": {"id": "test-locker"},
        "state": {"directory": str(state)},
        "kiosk": {"port": 0},
        "timing": {
            "door_open_timeout_s": 20,
            "door_left_open_s": 120,
            "poll_interval_ms": 200,
            "debounce_polls": 2,
            "offline_after_polls": 3,
            "expiry_sweep_s": 60,
            "courier_idle_s": 300,
        },
        "pickup": {
            "code_length": 8,
            "hold_hours": 72,
            "throttle": {
                "free_failures": 2,
                "backoff_base_s": 2,
                "backoff_max_s": 60,
                "lockout_after": 6,
                "lockout_s": 900,
            },
        },
        "safety": {"pulse_ms": 500, "max_pulse_ms": 1000, "cooldown_s": 3},
        "size": [{"name": "S"}, {"name": "M"}, {"name": "L"}],
        "power_group": [{"name": "psu", "gap_ms": 300}],
    }


DEMO: Data = {
    "couriers": [
        {"id": "c1", "code": "4321", "name": "Courier One", "rights": ["deliver", "collect"]},
        {"id": "c2", "code": "5555", "rights": ["collect"]},
        {"id": "c3", "code": "7777"},
    ],
    "expected_parcels": [{"barcode": "EXP0001", "size": "M", "recipient": "flat-1"}],
}


def bank(
    state: Path, *, family: str = "kerong-cu16", locked_bit: int = 1, closed_bit: int = 1
) -> Data:
    """The test bank on one simulated board of ``family`` (always "cu0"), as data."""
    locks, _, chip = family.partition("+")
    spec = LOCK_BOARDS[locks]
    data = _common(state)
    if spec.pulse_ms is not None:
        data["safety"]["pulse_ms"] = spec.pulse_ms
    data["bus"] = [{"name": "rs485", "protocol": spec.protocol, **spec.bus}]
    keys = spec.keys(locked_bit, closed_bit)
    data["board"] = [{"name": "cu0", "bus": "rs485", "power_group": "psu", **keys}]
    data["compartment"] = copy.deepcopy(COMPARTMENTS)
    if spec.door_switches:
        data["compartment"][4]["sensor"] = 9  # L1's door switch on an input of its own
    if chip:
        with_expander(data, chip, drop=spec.switch_keys)
    data["demo"] = copy.deepcopy(DEMO)
    return data


def with_expander(data: Data, chip: str, drop: tuple[str, ...] = ()) -> None:
    """Every door switch moved to an I2C expander ("doors"); the locks stay where they are.

    ``drop``: the lock board's keys that wired its door switches."""
    for key in drop:
        del data["board"][0][key]
    for comp in data["compartment"]:
        comp["sensor_board"] = "doors"
        comp.pop("sensor", None)
    data["compartment"][4]["sensor"] = EXPANDERS[chip][1]
    add_expander(data, chip)


def add_expander(data: Data, chip: str) -> None:
    """An I2C expander "doors" on a simulated bus "i2c"; no door wired to it yet."""
    data["bus"].append({"name": "i2c", "protocol": "i2c", "simulator": True})
    board = {"name": "doors", "bus": "i2c", "chip": chip, "address": EXPANDERS[chip][0]}
    data["board"].append(board)


def text(data: Data) -> str:
    """The TOML of ``data``."""
    return dumps(data)


def config(data: Data, state: Path) -> Config:
    """``data`` read as the config file ``state/locker.toml``."""
    return parse(dumps(data), state / "locker.toml")
