"""Write docs/config-reference.md from the schema: every key, its type, default and meaning.

``python -m lockerd.config.reference > docs/config-reference.md``; a test
keeps the committed file equal to this output.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, get_args, get_origin

from lockerd.config import schema
from lockerd.families import FAMILIES


def _a(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


SECTIONS: list[tuple[str, type[Any], str]] = [
    ("[locker]", schema.LockerSection, "Identity."),
    ("[state]", schema.StateSection, "Where the database and the device key live."),
    ("[kiosk]", schema.KioskSection, "The kiosk API (docs/kiosk-api.md)."),
    ("[timing]", schema.TimingSection, "Timers of the flows and the bus pollers."),
    ("[pickup]", schema.PickupSection, "Pickup codes."),
    (
        "[pickup.throttle]",
        schema.ThrottleSection,
        "Wrong-code throttling (pickup codes and courier codes): a budget of wrong codes"
        " that only time refills, and a back-off that only a completed pickup ends."
        " `lockerd check-config` prints the yearly chance of guessing a code and refuses"
        " a config above 1% (docs/wrong-codes.md).",
    ),
    ("[safety]", schema.SafetySection, "Lock pulse rules, enforced below every flow."),
    (
        "[sync]",
        schema.SyncSection,
        "Back-office sync v1 (docs/sync-protocol.md); off unless url is set.",
    ),
    ("[control]", schema.ControlSection, "The Unix socket lockerctl talks to the daemon over."),
    (
        "[[size]]",
        schema.SizeConfig,
        "Size classes, smallest first; the allocator takes the smallest that fits.",
    ),
    ("[[power_group]]", schema.PowerGroupConfig, "A supply that energizes one lock at a time."),
    ("[[bus]]", schema.BusConfig, "A serial bus (RS-485, TCP bridge) or the GPIO header."),
    # One [[board]] section per registered family, in the table's order.
    *(
        (f"[[board]] on {_a(f.protocol)} {f.protocol} bus", f.board, f.about)
        for f in FAMILIES.values()
    ),
    (
        "[[compartment]]",
        schema.CompartmentConfig,
        "One door of the bank. `item_sensor` names the input of its item (infrared)"
        " sensor: on the lock board, or on `item_board` (a Kerong, Modbus or I2C board"
        " with inputs); an input is either a door switch or an item sensor, never both.",
    ),
    (
        "[[scanner]]",
        schema.ScannerConfig,
        "A barcode or QR scanner; every scanner feeds the kiosk's one scan stream.",
    ),
    (
        "[demo]",
        schema.DemoSection,
        "Seed data for the demo; real deployments get these from the back office.",
    ),
    ("[[demo.couriers]]", schema.DemoCourier, "A demo courier."),
    ("[[demo.expected_parcels]]", schema.DemoParcel, "A parcel announced in the demo."),
]


def _type(hint: Any, field: dataclasses.Field[Any] | None = None) -> str:
    if field is not None and "choices" in field.metadata:
        return " \\| ".join(f'`"{a}"`' for a in field.metadata["choices"]())
    origin = get_origin(hint)
    if origin is typing.Literal:
        return " \\| ".join(f'`"{a}"`' for a in get_args(hint))
    if origin is tuple:
        return f"array of {_type(get_args(hint)[0])}"
    if dataclasses.is_dataclass(hint):
        return "table"
    return {int: "integer", float: "number", str: "string", bool: "boolean"}.get(hint, str(hint))


def _default(field: dataclasses.Field[Any]) -> str:
    if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
        return "required"
    factory: Any = field.default_factory
    value = field.default if field.default is not dataclasses.MISSING else factory()
    if dataclasses.is_dataclass(value):
        return "see below"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, str):
        return f'`"{value}"`' if value else '`""` (unset)'
    if isinstance(value, tuple):
        return "`[" + ", ".join(f'"{v}"' if isinstance(v, str) else str(v) for v in value) + "]`"
    return f"`{value}`"


def _range(field: dataclasses.Field[Any]) -> str:
    low, high = field.metadata.get("min"), field.metadata.get("max")
    if low is None and high is None:
        return ""
    return f"{'' if low is None else low}..{'' if high is None else high}"


#: The page's opening, before the sections.
INTRO = [
    "# Config reference",
    "",
    "One TOML file describes a locker; `lockerd check-config FILE` validates it and",
    "prints a summary of the bank. Unknown keys are errors. Relative paths start at",
    "the config file's folder. Units are in the key names (`_ms`, `_s`, `_mm`).",
    "Every number has the range shown (for an array, each item); `nan` and `inf`",
    "are refused. A file that is not UTF-8 or not TOML is an error naming the line",
    "and column. Every problem is listed at once, each with its key path; a",
    'compartment\'s also with its id: `compartment "B2" (compartment[1].lock)`.',
    "Generated from `lockerd/config/schema.py` and each board family's module in",
    "`lockerd/families/` by `python -m lockerd.config.reference`.",
    "",
    "## Door evidence",
    "",
    "What counts as a door opening depends on how the door is read. A door switch",
    '(Kerong `door_input = "sensor"`, GPIO `door_pins`, Modbus `inputs`, an I2C',
    "`sensor_board`) is its own evidence. A door read from its lock's switch (Kerong",
    '`door_input = "hook"`, the default, and every generic 0x8A board) reads released',
    "for the whole energize time of every pulse, pulled or not, because the latch is",
    "out only while the coil is energized unless the door was opened meanwhile: its",
    "release counts as the door opening only when it outlasts the board's",
    "`energize_ms` plus `timing.release_margin_ms`. A door shut again within that",
    "window reads as never opened. An item sensor adds custody evidence: a drop-off",
    "completes only if something is seen inside after the door closed, a pickup only",
    "if it is gone, a compartment given back only if empty; otherwise the compartment",
    "needs a check and a `custody.mismatch` alarm is journalled.",
]


def render() -> str:
    out = list(INTRO)
    for title, cls, text in SECTIONS:
        out += ["", f"## {title}", "", text, "", *_table(cls)]
    return "\n".join(out) + "\n"


def _table(cls: type) -> list[str]:
    """A section's keys as a Markdown table."""
    hints = typing.get_type_hints(cls)
    rows = ["| key | type | default | range | meaning |", "|---|---|---|---|---|"]
    for field in dataclasses.fields(cls):
        if field.metadata.get("internal") or field.name in {"board"}:
            continue
        kind = _type(hints[field.name], field)
        cells = [f"`{field.name}`", kind, _default(field), _range(field)]
        rows.append("| " + " | ".join([*cells, field.metadata.get("doc", "")]) + " |")
    return rows


if __name__ == "__main__":
    print(render(), end="")
