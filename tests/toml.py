"""Render test configs, built as data, to TOML text (tomllib only reads it)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


def dumps(data: Mapping[str, Any]) -> str:
    """TOML for ``data``: tables as ``[a.b]``, top-level lists of tables as ``[[name]]``,
    deeper lists of tables inline."""
    return "\n" + "\n".join(_table(data, ())) + "\n"


def _table(table: Mapping[str, Any], path: tuple[str, ...]) -> list[str]:
    lines = [
        f"{key} = {value_text(value)}"
        for key, value in table.items()
        if not isinstance(value, Mapping) and not (not path and _tables(value))
    ]
    for key, value in table.items():
        if isinstance(value, Mapping):
            lines += [f"[{'.'.join((*path, key))}]", *_table(value, (*path, key))]
        elif not path and _tables(value):
            for item in value:
                lines += [f"[[{key}]]", *_table(item, (key,))]
    return lines


def _tables(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and isinstance(value[0], Mapping)


def value_text(value: Any) -> str:
    """One TOML value; a list of two or more inline tables takes one line each."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{k} = {value_text(v)}" for k, v in value.items()) + " }"
    if _tables(value) and len(value) > 1:
        return "[\n" + "".join(f"  {value_text(v)},\n" for v in value) + "]"
    return "[" + ", ".join(value_text(v) for v in value) + "]"
