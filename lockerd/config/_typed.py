"""Build frozen dataclasses from TOML tables, collecting every problem with its key path.

A dataclass field's type says what TOML value it takes (``int``, ``float``,
``str``, ``bool``, ``Literal[...]``, a nested dataclass, a ``tuple`` of
either); ``field(metadata=...)`` adds ``min``/``max`` bounds and a one-line
``doc``. A key the dataclass does not declare is an error, never ignored.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

T = TypeVar("T")


class Problems:
    """Accumulates ``key.path: message`` lines."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, path: str, message: str) -> None:
        self.items.append(f"{path}: {message}" if path else message)

    def __bool__(self) -> bool:
        return bool(self.items)


def build(cls: type[T], table: Any, path: str, problems: Problems) -> T | None:
    """Make ``cls`` from ``table``; on any problem record it and return None."""
    if not isinstance(table, dict):
        problems.add(path, f"expected a table, got {_describe(table)}")
        return None
    hints = typing.get_type_hints(cls)
    fields = {
        f.name: f
        for f in dataclasses.fields(cls)  # type: ignore[arg-type]
        if not f.metadata.get("internal")
    }
    before = len(problems.items)
    for key in table:
        if key not in fields:
            problems.add(_join(path, key), f"unknown key (expected one of: {', '.join(fields)})")
    values: dict[str, Any] = {}
    for name, spec in fields.items():
        key_path = _join(path, name)
        if name not in table:
            if spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING:
                problems.add(key_path, "missing required key")
            continue
        value = convert(hints[name], table[name], key_path, problems)
        if value is not None:
            _check_bounds(spec, value, key_path, problems)
            values[name] = value
    if len(problems.items) != before:
        return None
    return cls(**values)


def convert(hint: Any, value: Any, path: str, problems: Problems) -> Any:
    """Check ``value`` against ``hint``; return the converted value or None."""
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        options = [a for a in get_args(hint) if a is not type(None)]
        return convert(options[0], value, path, problems)
    if origin is Literal:
        choices = get_args(hint)
        if value not in choices:
            problems.add(path, f"{value!r} is not one of {', '.join(map(repr, choices))}")
            return None
        return value
    if origin is tuple:
        item_hint = get_args(hint)[0]
        if not isinstance(value, list):
            problems.add(path, f"expected an array, got {_describe(value)}")
            return None
        items = [convert(item_hint, v, f"{path}[{i}]", problems) for i, v in enumerate(value)]
        return None if any(i is None for i in items) else tuple(items)
    if dataclasses.is_dataclass(hint):
        return build(typing.cast(type[Any], hint), value, path, problems)
    return _scalar(hint, value, path, problems)


_SCALARS: dict[type, tuple[Callable[[Any], bool], str]] = {
    bool: (lambda v: isinstance(v, bool), "true or false"),
    int: (lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer"),
    float: (lambda v: isinstance(v, int | float) and not isinstance(v, bool), "a number"),
    str: (lambda v: isinstance(v, str), "a string"),
    dict: (lambda v: isinstance(v, dict), "a table"),
}


def _scalar(hint: type, value: Any, path: str, problems: Problems) -> Any:
    check, wanted = _SCALARS[hint]
    if not check(value):
        problems.add(path, f"expected {wanted}, got {_describe(value)}")
        return None
    if hint is str and not value.strip():
        problems.add(path, "must not be empty")
        return None
    return float(value) if hint is float else value


def _check_bounds(spec: dataclasses.Field[Any], value: Any, path: str, problems: Problems) -> None:
    low, high = spec.metadata.get("min"), spec.metadata.get("max")
    if not isinstance(value, int | float) or isinstance(value, bool):
        return
    if (low is not None and value < low) or (high is not None and value > high):
        span = f"{low if low is not None else '-inf'}..{high if high is not None else 'inf'}"
        problems.add(path, f"{value} is outside {span}")


def opt(default: Any = dataclasses.MISSING, *, doc: str, **metadata: Any) -> Any:
    """A dataclass field with a doc line and optional ``min``/``max``."""
    metadata["doc"] = doc
    if isinstance(default, list | dict):
        frozen = tuple(default) if isinstance(default, list) else default
        return dataclasses.field(default_factory=lambda: frozen, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _describe(value: Any) -> str:
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return f"{type(value).__name__} {value!r}"
