"""Build frozen dataclasses from TOML tables, collecting every problem with its key path.

A dataclass field's type says what TOML value it takes (``int``, ``float``,
``str``, ``bool``, ``Literal[...]``, a nested dataclass, a ``tuple`` of
either); ``field(metadata=...)`` adds ``min``/``max`` bounds (on each item of
a tuple), ``choices`` (a function naming the strings a ``str`` takes, for a
list kept elsewhere) and a one-line ``doc``. A key the dataclass does not
declare is an error, never ignored; a number must be finite.

Building never stops at the first problem: a bad or missing value is recorded
and replaced by its default (or a placeholder), so the object is still made
and the cross-field checks can run over everything that was read well.
:class:`Problems` remembers which key paths were bad; those checks ask
:meth:`Problems.intact` before trusting a value, and a message about a key
that already has a problem is not repeated.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Callable
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

T = TypeVar("T")


class Problems:
    """Accumulates ``key.path: message`` lines and the key paths they were about."""

    def __init__(self) -> None:
        self.found: list[tuple[str, str]] = []
        self.broken: set[str] = set()
        self._around: set[str] = set()  # the broken paths and every table holding one
        #: Set once the tables are read: from then on a problem about a key that
        #: already has one (or sits in a table that has one) is not added again.
        self.checking = False

    def add(self, path: str, message: str) -> None:
        """Record a problem; in the cross-field checks, none about a key already bad."""
        if self.checking and not self.trusted(path):
            return
        if not self.checking:
            self.skip(path)
        self.found.append((path, message))

    def lines(self, name: Callable[[str], str]) -> list[str]:
        """``path: message`` lines, each path shown as ``name`` renders it."""
        return [f"{name(path)}: {message}" if path else message for path, message in self.found]

    def skip(self, path: str) -> None:
        """Mark ``path`` as not to be checked further, without a message of its own."""
        self.broken.add(path)
        self._around.update(_prefixes(path))

    def intact(self, path: str) -> bool:
        """Nothing at ``path``, inside it or around it had a problem: its values are as read."""
        return path not in self._around and self.trusted(path)

    def trusted(self, path: str) -> bool:
        """Neither ``path`` nor a table or array it is in had a problem."""
        return self.broken.isdisjoint(_prefixes(path))

    def __bool__(self) -> bool:
        return bool(self.found)


def build(cls: type[T], table: Any, path: str, problems: Problems) -> T:
    """Make ``cls`` from ``table``, recording every problem; bad values become placeholders."""
    if not isinstance(table, dict):
        problems.add(path, f"expected a table, got {_describe(table)}")
        table = {}
    hints = typing.get_type_hints(cls)
    fields = {
        f.name: f
        for f in dataclasses.fields(cls)  # type: ignore[arg-type]
        if not f.metadata.get("internal")
    }
    for key in table:
        if key not in fields:
            problems.add(_join(path, key), f"unknown key (expected one of: {', '.join(fields)})")
    values: dict[str, Any] = {}
    for name, spec in fields.items():
        key_path = _join(path, name)
        if name not in table:
            if spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING:
                problems.add(key_path, "missing required key")
                values[name] = _placeholder(hints[name])
            continue
        chosen = _chosen(spec, table[name], key_path, problems)  # any type: named as such
        value = convert(hints[name], table[name], key_path, problems) if chosen else None
        if value is not None and _within_bounds(spec, value, key_path, problems):
            values[name] = value
        elif spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING:
            values[name] = _placeholder(hints[name])
    return cls(**values)


def _placeholder(hint: Any) -> Any:
    """A stand-in for a value that could not be read (never seen outside a failed load)."""
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        return _placeholder(next(a for a in get_args(hint) if a is not type(None)))
    if origin is Literal:
        return get_args(hint)[0]
    if origin is tuple:
        return ()
    if dataclasses.is_dataclass(hint):
        return build(typing.cast(type[Any], hint), {}, "", Problems())
    return {bool: False, int: 0, float: 0.0, str: "", dict: {}}[hint]


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
        # A bad item keeps its place (as a placeholder) so later items keep their index.
        return tuple(_placeholder(item_hint) if i is None else i for i in items)
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
    if hint is float and not math.isfinite(value):
        # TOML has nan and inf; a time of nan compares false with everything.
        problems.add(path, f"expected a finite number, got {_describe(value)}")
        return None
    return float(value) if hint is float else value


def _within_bounds(spec: dataclasses.Field[Any], value: Any, path: str, problems: Problems) -> bool:
    """Check ``min``/``max`` on a number, or on each number of a tuple."""
    if isinstance(value, tuple):
        checks = [_within_bounds(spec, v, f"{path}[{i}]", problems) for i, v in enumerate(value)]
        return all(checks)
    low, high = spec.metadata.get("min"), spec.metadata.get("max")
    if not isinstance(value, int | float) or isinstance(value, bool):
        return True
    if (low is not None and value < low) or (high is not None and value > high):
        span = f"{low if low is not None else '-inf'}..{high if high is not None else 'inf'}"
        problems.add(path, f"{value} is outside {span}")
        return False
    return True


def _chosen(spec: dataclasses.Field[Any], value: Any, path: str, problems: Problems) -> bool:
    """A string whose field lists its ``choices`` (a function returning them) is one of them."""
    choices = spec.metadata.get("choices")
    if choices is None or value in choices():
        return True
    problems.add(path, f"{value!r} is not one of {', '.join(map(repr, choices()))}")
    return False


def opt(default: Any = dataclasses.MISSING, *, doc: str, **metadata: Any) -> Any:
    """A dataclass field with a doc line and, for a number, its ``min`` and ``max``."""
    metadata["doc"] = doc
    if isinstance(default, list | dict):
        frozen = tuple(default) if isinstance(default, list) else default
        return dataclasses.field(default_factory=lambda: frozen, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def _prefixes(path: str) -> list[str]:
    """``a.b[2].c`` -> ``a``, ``a.b``, ``a.b[2]``, ``a.b[2].c``."""
    cuts = [i for i, char in enumerate(path) if char in ".["]
    return [path[:i] for i in cuts if i] + [path]


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _describe(value: Any) -> str:
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return f"{type(value).__name__} {value!r}"
