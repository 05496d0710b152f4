"""Fuzz: config files, as arbitrary TOML-ish text and as mutations of the shipped configs.

Whatever the file holds, loading it gives a valid config or a
:class:`~lockerd.errors.ConfigError` whose every line names the file and a
problem; never another exception. A config that loads has only finite
numbers, none past 2^53 (issue 10: every number finite and bounded).
"""

from __future__ import annotations

import dataclasses
import json
import math
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import strategies as st

from lockerd.config import Config, ConfigError, load, parse
from tests.daemon import ROOT
from tests.fuzzing import groups, run

SHIPPED = {path.name: path.read_text(encoding="utf-8") for path in ROOT.glob("config/*.toml")}
DEMO = "demo.toml"


def keys_of(table: dict[str, Any], path: str = "") -> set[str]:
    """Every key and table name the shipped configs use (the fuzz's vocabulary)."""
    names = set()
    for key, value in table.items():
        names.add(key)
        if isinstance(value, dict):
            names |= keys_of(value)
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, dict):
                    names |= keys_of(item)
    return names


def _vocabulary() -> tuple[list[str], list[str]]:
    import tomllib

    keys: set[str] = set()
    tables: set[str] = set()
    for text in SHIPPED.values():
        table = tomllib.loads(text)
        keys |= keys_of(table)
        tables |= {k for k, v in table.items() if isinstance(v, dict | list)}
    return sorted(keys), sorted(tables)


KEYS, TABLES = _vocabulary()


def toml_string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def toml_float(value: float) -> str:
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    text = repr(value)
    return text if any(c in text for c in ".en") else text + ".0"


scalars = st.one_of(
    st.integers(-(2**70), 2**70).map(str),
    st.sampled_from(["0", "1", "-1", "2", "8", "100", "9223372036854775807", "0x7fffffff"]),
    st.floats().map(toml_float),
    st.sampled_from(["nan", "inf", "-inf", "-0.0", "1e308", "5e-324"]),
    st.text(max_size=12).map(toml_string),
    st.sampled_from(['""', '" "', '"sim"', '"kerong-cu16"', '"S"', '"cu0"', '"rs485"']),
    st.sampled_from(["true", "false", "1979-05-27T07:32:00Z", "07:32:00", "1979-05-27"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4).map(lambda items: "[" + ", ".join(items) + "]"),
        st.dictionaries(st.sampled_from(KEYS), inner, max_size=3).map(
            lambda d: "{" + ", ".join(f"{k} = {v}" for k, v in d.items()) + "}"
        ),
    ),
    max_leaves=6,
)
keys = st.one_of(st.sampled_from(KEYS), st.from_regex(r"[a-z_]{1,12}", fullmatch=True))
lines = st.one_of(
    st.builds(lambda k, v: f"{k} = {v}", keys, values),
    st.sampled_from(TABLES).map(lambda t: f"[{t}]"),
    st.sampled_from(TABLES).map(lambda t: f"[[{t}]]"),
    st.builds(lambda a, b: f"[{a}.{b}]", st.sampled_from(TABLES), keys),
    st.text(max_size=20),
)
toml_ish = st.lists(lines, max_size=25).map("\n".join)


def outcome(text: str, path: Path) -> Config | None:
    """The config ``text`` makes, or None after checking its ConfigError."""
    try:
        config = parse(text, path)
    except ConfigError as exc:
        assert_names_file_and_problem(exc, path)
        return None
    assert_numbers_bounded(config, "")
    return config


def assert_names_file_and_problem(exc: ConfigError, path: Path) -> None:
    assert exc.problems, "a ConfigError lists its problems"
    for problem in exc.problems:
        assert problem.startswith(f"{path}: "), problem
        assert problem.removeprefix(f"{path}: ").strip(), f"{problem!r} says nothing"


def assert_numbers_bounded(value: Any, path: str) -> None:
    """Every number in a loaded config is finite and below 2^53."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for field in dataclasses.fields(value):
            assert_numbers_bounded(getattr(value, field.name), f"{path}.{field.name}")
    elif isinstance(value, dict):
        for key, item in value.items():
            assert_numbers_bounded(item, f"{path}.{key}")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            assert_numbers_bounded(item, f"{path}[{index}]")
    elif isinstance(value, float):
        assert math.isfinite(value), f"{path} = {value} was accepted"
        assert abs(value) < 2**53, f"{path} = {value} was accepted"
    elif isinstance(value, int) and not isinstance(value, bool):
        assert abs(value) < 2**53, f"{path} = {value} was accepted"


@groups(40, 2_500)
def test_arbitrary_toml_ish_text_loads_or_names_its_problems(examples: int) -> None:
    path = Path("/etc/lockerd/fuzz.toml")
    run("config (TOML-ish text)", examples, lambda text: outcome(text, path), text=toml_ish)


def mutate_lines(text: str, edits: list[tuple[int, int, str]]) -> str:
    """``text`` after each (kind, line, new): change a value, drop, repeat, insert, garble."""
    out = text.splitlines()
    for kind, position, new in edits:
        at = position % max(1, len(out))
        if kind == 0 and out and "=" in out[at]:
            key = out[at].split("=", 1)[0]
            out[at] = f"{key}= {new}"
        elif kind == 1 and out:
            del out[at]
        elif kind == 2 and out:
            out.insert(at, out[at])
        elif kind == 3:
            out.insert(at, new)
        elif out:
            line = out[at]
            cut = position % (len(line) + 1)
            out[at] = line[:cut] + new[:3] + line[cut + 1 :]
    return "\n".join(out) + "\n"


line_edits = st.one_of(
    # one value changed: the file stays valid TOML and often a valid config, whose
    # numbers are then checked
    st.tuples(st.just(0), st.integers(0, 500), scalars).map(lambda edit: [edit]),
    st.lists(
        st.tuples(st.integers(0, 4), st.integers(0, 500), st.one_of(values, lines)),
        min_size=1,
        max_size=4,
    ),
)


@pytest.mark.parametrize("name", sorted(SHIPPED))
@groups(10, 500)
def test_mutated_shipped_configs_load_or_name_their_problems(name: str, examples: int) -> None:
    # The relative state folder resolves beside the file; nothing is created by parsing.
    path = ROOT / "config" / name
    run(
        f"config (mutated {name})",
        examples,
        lambda edits: outcome(mutate_lines(SHIPPED[name], edits), path),
        edits=line_edits,
    )


def load_bytes(data: bytes) -> None:
    with tempfile.TemporaryDirectory(prefix="lockerd-fuzz-") as folder:
        path = Path(folder) / "lockerd.toml"
        path.write_bytes(data)
        try:
            config = load(path)
        except ConfigError as exc:
            assert_names_file_and_problem(exc, path)
            return
        assert_numbers_bounded(config, "")


def with_bytes(text: str, edits: list[tuple[int, int]]) -> bytes:
    data = bytearray(text.encode())
    for position, value in edits:
        data[position % len(data)] = value
    return bytes(data)


@groups(20, 1_000)
def test_a_file_of_any_bytes_loads_or_names_its_problems(examples: int) -> None:
    run(
        "config (file bytes)",
        examples,
        load_bytes,
        data=st.one_of(
            st.binary(max_size=64),
            st.builds(
                with_bytes,
                st.just(SHIPPED[DEMO]),
                st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=3),
            ),
        ),
    )
