"""Config validation: every problem named with file, key path and reason."""

import resource
import subprocess
import sys
from pathlib import Path

import pytest

from lockerd.cli import main
from lockerd.config import ConfigError, load, parse
from lockerd.families.kerong import Cu16BoardConfig
from tests import families
from tests.rig import bank_text

ROOT = Path(__file__).resolve().parent.parent


def text(tmp_path: Path) -> str:
    return bank_text(tmp_path)


def problems(source: str, tmp_path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse(source, tmp_path / "bank.toml")
    return info.value.problems


def test_the_test_bank_is_valid(tmp_path) -> None:
    config = parse(text(tmp_path), tmp_path / "bank.toml")
    assert config.size_order == ("S", "M", "L")
    assert [c.id for c in config.compartment] == ["S1", "S2", "M1", "M2", "L1"]


@pytest.mark.parametrize("path", sorted((ROOT / "config").glob("*.toml")), ids=lambda p: p.name)
def test_every_shipped_config_is_valid(path: Path) -> None:
    assert load(path).compartment


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ('id = "test-locker"', 'id = "test-locker"\ncolour = "red"', "locker.colour: unknown key"),
        (
            "poll_interval_ms = 200",
            'poll_interval_ms = "fast"',
            "timing.poll_interval_ms: expected an integer, got str 'fast'",
        ),
        (
            "poll_interval_ms = 200",
            "poll_interval_ms = 5",
            "timing.poll_interval_ms: 5 is outside 20..5000",
        ),
        (
            "code_length = 8",
            "code_length = true",
            "pickup.code_length: expected an integer, got bool True",
        ),
        (
            'protocol = "kerong-cu16"',
            'protocol = "kerong-cu99"',
            "bus[0].protocol: 'kerong-cu99' is not one of",
        ),
        ("address = 0", "address = 15", "board[0].address: 15 is outside 0..14"),
        (
            'board = "cu0"\nlock = 2',
            'board = "cu0"\nlock = 1',
            "compartment \"S2\" (compartment[1].lock): 'cu0' lock channel 1 is already used"
            " by 'S1'",
        ),
        (
            "lock = 5\nsensor = 9",
            "lock = 5\nsensor = 2",
            "compartment \"L1\" (compartment[4].sensor): 'cu0' sensor channel 2 is already"
            " used by 'S2'",
        ),
        (
            "lock = 5\nsensor = 9",
            "lock = 17",
            "compartment \"L1\" (compartment[4].lock): channel 17 is outside 1..16 on 'cu0'",
        ),
        (
            'id = "M1"\nsize = "M"\ncolumn = 2\nrow = 1\nboard = "cu0"',
            'id = "M1"\nsize = "M"\ncolumn = 2\nrow = 1\nboard = "cu9"',
            "compartment \"M1\" (compartment[2].board): no board named 'cu9'",
        ),
        (
            'id = "M1"\nsize = "M"',
            'id = "M1"\nsize = "XL"',
            "compartment \"M1\" (compartment[2].size): no size named 'XL'",
        ),
        ('id = "S2"', 'id = "S1"', "compartment \"S1\" (compartment[1].id): 'S1' is defined twice"),
        (
            "column = 1\nrow = 2",
            "column = 1\nrow = 1",
            "compartment \"S2\" (compartment[1]): column 1 row 1 is already 'S1'",
        ),
        (
            "simulator = true",
            'simulator = true\nport = "/dev/ttyUSB0"',
            "bus[0]: give exactly one of port",
        ),
        (
            'power_group = "psu"\naddress',
            'power_group = "psu9"\naddress',
            "board[0].power_group: no power_group named 'psu9'",
        ),
        ('bus = "rs485"\npower', 'bus = "rs9"\npower', "board[0].bus: no bus named 'rs9'"),
        (
            '[[size]]\nname = "S"',
            '[[size]]\nname = "S"\nheight_mm = -1',
            "size[0].height_mm: -1 is outside 0..3000",
        ),
        ('[locker]\nid = "test-locker"', "[locker]", "locker.id: missing required key"),
        (
            "max_pulse_ms = 1000",
            "max_pulse_ms = 4500",
            "timing.pickup_door_open_s: 5.0 s is shorter than the longest pulse",
        ),
        (
            "expected_parcels = [{ barcode",
            "expected_parcels = [{ colour = 1, barcode",
            "demo.expected_parcels[0].colour: unknown key",
        ),
    ],
)
def test_each_problem_names_its_key(tmp_path, old, new, expected) -> None:
    source = text(tmp_path)
    assert old in source, old
    found = problems(source.replace(old, new, 1), tmp_path)
    assert any(p.startswith(f"{tmp_path / 'bank.toml'}: {expected}") for p in found), found


def with_board_keys(tmp_path: Path, **keys: object) -> str:
    """The test bank with ``keys`` added to its CU16 board."""
    data = families.bank(tmp_path)
    data["board"][0].update(keys)
    return families.text(data)


def test_set_energize_time_is_a_cu16_board_key(tmp_path) -> None:
    source = with_board_keys(tmp_path, set_energize_time=True, energize_ms=500)
    (board,) = parse(source, tmp_path / "bank.toml").boards
    assert isinstance(board, Cu16BoardConfig) and board.set_energize_time
    reference = (ROOT / "docs" / "config-reference.md").read_text()
    assert (
        "| `set_energize_time` | boolean | `false` |  | write energize_ms to the board" in reference
    )


@pytest.mark.parametrize(
    ("energize_ms", "reason"),
    [
        (505, "505 cannot be written to the board (set_energize_time): give a multiple of 10 ms"),
        (0, ""),  # whichever check finds it first, the key is named
    ],
    ids=["505", "0"],
)
def test_set_energize_time_needs_a_time_the_board_takes(tmp_path, energize_ms, reason) -> None:
    source = with_board_keys(tmp_path, set_energize_time=True, energize_ms=energize_ms)
    found = problems(source, tmp_path)
    expected = f"{tmp_path / 'bank.toml'}: board[0].energize_ms: {reason}"
    assert any(p.startswith(expected) for p in found), found


def test_all_problems_are_reported_at_once(tmp_path) -> None:
    source = text(tmp_path).replace("address = 0", "address = 15").replace("lock = 2", "lock = 1")
    assert len(problems(source, tmp_path)) >= 2


def test_not_toml(tmp_path) -> None:
    (found,) = problems("[locker\n", tmp_path)
    assert found.startswith(f"{tmp_path / 'bank.toml'}: not valid TOML")


def with_gpio_cabinet(tmp_path: Path, **bus: object) -> str:
    """The test bank and a GPIO cabinet whose pin 17 is both a lock and a door switch."""
    data = families.bank(tmp_path)
    data["bus"].append({"name": "header", "protocol": "gpio", **bus})
    cab = {"name": "cab", "bus": "header", "power_group": "psu", "lock_pins": [17, 27]}
    data["board"].append({**cab, "door_pins": [5, 17]})
    cabinet = {"id": "G1", "size": "L", "column": 9, "row": 1, "board": "cab", "lock": 1}
    data["compartment"].append(cabinet)
    return families.text(data)


def test_gpio_pin_claimed_twice(tmp_path) -> None:
    found = problems(with_gpio_cabinet(tmp_path, pin_factory="mock"), tmp_path)
    assert any("board[1].door_pins[1]: pin 17 is used twice" in p for p in found), found


def test_gpio_bus_needs_a_factory_and_no_port(tmp_path) -> None:
    found = problems(with_gpio_cabinet(tmp_path, port="/dev/x"), tmp_path)
    assert any("bus[1].pin_factory: a gpio bus needs a pin factory" in p for p in found), found
    assert any("bus[1]: a gpio bus has no port" in p for p in found), found


def test_relative_state_paths_start_at_the_config_file(tmp_path) -> None:
    source = text(tmp_path).replace(f'directory = "{tmp_path}"', 'directory = "state"')
    config = parse(source, tmp_path / "etc" / "bank.toml")
    assert config.database_path == (tmp_path / "etc" / "state" / "lockerd.db").resolve()
    assert config.key_path == (tmp_path / "etc" / "state" / "device.key").resolve()


def test_check_config_prints_a_summary(tmp_path, capsys) -> None:
    path = tmp_path / "bank.toml"
    path.write_text(text(tmp_path))
    assert main(["check-config", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"{path}: OK" in out
    assert "board  cu0 on rs485: address 0" in out
    assert "S1:S" in out and "M2:M*" in out


def test_check_config_warns_but_passes_without_a_support_contact(tmp_path, capsys) -> None:
    path = tmp_path / "bank.toml"
    path.write_text(text(tmp_path))
    assert main(["check-config", str(path)]) == 0
    err = capsys.readouterr().err
    assert f"{path}: warning: locker.support is not set" in err
    path.write_text(text(tmp_path).replace("[locker]\n", '[locker]\nsupport = "+49 30 1"\n', 1))
    assert main(["check-config", str(path)]) == 0
    assert "warning" not in capsys.readouterr().err


def test_the_demo_names_a_support_contact(capsys) -> None:
    demo = ROOT / "config" / "demo.toml"
    assert main(["check-config", str(demo)]) == 0
    assert "warning" not in capsys.readouterr().err
    assert load(demo).locker.support


def test_check_config_names_an_ipv6_kiosk_in_brackets(tmp_path, capsys) -> None:
    path = tmp_path / "bank.toml"
    path.write_text(text(tmp_path).replace("[kiosk]\n", '[kiosk]\nhost = "::1"\n'))
    assert main(["check-config", str(path)]) == 0
    assert "kiosk  http://[::1]:" in capsys.readouterr().out


def test_check_config_lists_errors_and_fails(tmp_path, capsys) -> None:
    path = tmp_path / "bank.toml"
    path.write_text(text(tmp_path).replace("address = 0", "address = 15"))
    assert main(["check-config", str(path)]) == 2
    assert "board[0].address: 15 is outside 0..14" in capsys.readouterr().err


def test_check_config_missing_file(tmp_path, capsys) -> None:
    assert main(["check-config", str(tmp_path / "nope.toml")]) == 2
    assert "nope.toml: cannot read" in capsys.readouterr().err


def test_config_reference_is_up_to_date() -> None:
    from lockerd.config.reference import render

    assert (ROOT / "docs" / "config-reference.md").read_text() == render(), (
        "run: python -m lockerd.config.reference > docs/config-reference.md"
    )


# --- numbers are finite and bounded; every problem is found in one pass ------------------------

FLOAT_KEYS = [
    ("pickup.throttle", "lockout_s = 900", "lockout_s"),
    ("pickup.throttle", "backoff_base_s = 2", "backoff_base_s"),
    ("pickup.throttle", "backoff_max_s = 60", "backoff_max_s"),
    ("timing", "door_open_timeout_s = 20", "door_open_timeout_s"),
    ("timing", "door_left_open_s = 120", "door_left_open_s"),
    ("timing", "expiry_sweep_s = 60", "expiry_sweep_s"),
    ("timing", "courier_idle_s = 300", "courier_idle_s"),
    ("pickup", "hold_hours = 72", "hold_hours"),
    ("safety", "cooldown_s = 3", "cooldown_s"),
]


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "+nan", "1e400"])
@pytest.mark.parametrize(("section", "line", "key"), FLOAT_KEYS, ids=lambda v: str(v))
def test_a_number_must_be_finite(tmp_path, section, line, key, value) -> None:
    source = text(tmp_path)
    assert line in source, line
    found = problems(source.replace(line, f"{key} = {value}", 1), tmp_path)
    assert any(f"{section}.{key}: expected a finite number" in p for p in found), found


def number_fields() -> list[tuple[str, str, object]]:
    """Every int or float key of every section (each board family's too), with its field."""
    import dataclasses
    import sys
    import typing

    from lockerd.config import schema
    from lockerd.families import FAMILIES

    # In one order in every process (pytest-xdist workers must collect the same tests).
    family_modules = {f.board.__module__ for f in FAMILIES.values()}
    modules = [schema, *(sys.modules[name] for name in sorted(family_modules))]
    out = []
    classes = [
        c for m in modules for c in vars(m).values() if getattr(c, "__module__", "") == m.__name__
    ]
    for cls in classes:
        if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
            continue
        hints = typing.get_type_hints(cls)
        for field in dataclasses.fields(cls):
            hint = hints[field.name]
            item = typing.get_args(hint)[0] if typing.get_origin(hint) is tuple else hint
            if item in (int, float) and not field.metadata.get("internal"):
                out.append((cls.__name__, field.name, field))
    return out


@pytest.mark.parametrize(
    ("cls", "name", "field"), number_fields(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_every_number_key_has_a_named_range(cls, name, field) -> None:
    import dataclasses
    import math

    low, high = field.metadata.get("min"), field.metadata.get("max")
    assert low is not None and high is not None, f"{cls}.{name} needs min and max"
    assert math.isfinite(low) and math.isfinite(high) and low <= high
    if field.default is not dataclasses.MISSING and not isinstance(field.default, tuple):
        assert low <= field.default <= high, f"{cls}.{name}: default outside its range"


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("gap_ms = 300", "gap_ms = 9223372036854775807", "power_group[0].gap_ms: "),
        (
            "simulator = true",
            "simulator = true\nretries = 9223372036854775807",
            "bus[0].retries: ",
        ),
        (
            '[[size]]\nname = "S"',
            '[[size]]\nname = "S"\nheight_mm = 9223372036854775807',
            "size[0].height_mm: ",
        ),
        (
            "column = 1\nrow = 1",
            "column = 100000000\nrow = 1",
            'compartment "S1" (compartment[0].column): ',
        ),
        (
            "column = 1\nrow = 2",
            "column = 1\nrow = 100000000",
            'compartment "S2" (compartment[1].row): ',
        ),
    ],
    ids=["gap_ms", "retries", "height_mm", "column", "row"],
)
def test_huge_numbers_are_outside_their_range(tmp_path, old, new, expected) -> None:
    source = text(tmp_path)
    assert old in source, old
    found = problems(source.replace(old, new, 1), tmp_path)
    assert any(expected in p and " is outside " in p for p in found), found


def test_check_config_refuses_a_huge_grid_without_drawing_it(tmp_path) -> None:
    path = tmp_path / "bank.toml"
    path.write_text(text(tmp_path).replace("column = 1\nrow = 1", "column = 100000000\nrow = 1", 1))
    # Before the bound, this drew 10^8 cells: a child process with a memory cap and a
    # time limit turns that into a failure rather than a hung test run.
    done = lockerd_command("check-config", path)
    assert done.returncode == 2 and done.stdout == "", done
    assert done.stderr == (
        f'{path}: compartment "S1" (compartment[0].column): 100000000 is outside 1..64\n'
    )


def test_several_problems_at_once_still_show_the_duplicate_channel(tmp_path) -> None:
    source = (
        text(tmp_path)
        .replace("poll_interval_ms = 200", "poll_interval_ms = 5")
        .replace('id = "test-locker"', 'id = "test-locker"\ncolour = "red"')
        .replace("gap_ms = 300", "gap_ms = -1")
        .replace('board = "cu0"\nlock = 2', 'board = "cu0"\nlock = 1')
        .replace('id = "M1"\nsize = "M"', 'id = "M1"\nsize = "XL"')
        .replace("lockout_s = 900", "lockout_s = nan")
    )
    found = problems(source, tmp_path)
    f = f"{tmp_path / 'bank.toml'}: "
    expected = [
        f"{f}timing.poll_interval_ms: 5 is outside 20..5000",
        f"{f}locker.colour: unknown key",
        f"{f}power_group[0].gap_ms: -1 is outside 0..1000",
        f"{f}pickup.throttle.lockout_s: expected a finite number, got float nan",
        f"{f}compartment \"S2\" (compartment[1].lock): 'cu0' lock channel 1 is already used"
        " by 'S1'",
        f"{f}compartment \"M1\" (compartment[2].size): no size named 'XL'",
    ]
    for line in expected:
        assert any(p.startswith(line) for p in found), (line, found)
    assert len(found) == len(expected), found


def test_a_broken_board_does_not_make_its_compartments_complain(tmp_path) -> None:
    # One problem, one line: the board's own; its compartments are neither "unknown
    # board" nor checked against the values the board could not be read with.
    found = problems(text(tmp_path).replace('bus = "rs485"\npower', 'bus = "rs9"\npower'), tmp_path)
    assert found == [f"{tmp_path / 'bank.toml'}: board[0].bus: no bus named 'rs9'"]
    found = problems(text(tmp_path).replace("address = 0", 'address = "zero"'), tmp_path)
    assert found == [
        f"{tmp_path / 'bank.toml'}: board[0].address: expected an integer, got str 'zero'"
    ]


def test_a_broken_compartment_still_has_its_other_problems_found(tmp_path) -> None:
    source = text(tmp_path).replace(
        'id = "M1"\nsize = "M"\ncolumn = 2\nrow = 1\nboard = "cu0"\nlock = 3',
        'id = "M1"\nsize = "XL"\ncolumn = "two"\nrow = 1\nboard = "cu0"\nlock = 1',
    )
    found = problems(source, tmp_path)
    where = f'{tmp_path / "bank.toml"}: compartment "M1" (compartment[2]'
    assert f"{where}.column): expected an integer, got str 'two'" in found, found
    assert f"{where}.size): no size named 'XL'" in found, found
    assert f"{where}.lock): 'cu0' lock channel 1 is already used by 'S1'" in found, found


def test_every_compartment_message_names_the_compartment(tmp_path) -> None:
    found = problems(text(tmp_path).replace("lock = 5\nsensor = 9", "lock = 17"), tmp_path)
    assert found == [
        f'{tmp_path / "bank.toml"}: compartment "L1" (compartment[4].lock):'
        " channel 17 is outside 1..16 on 'cu0'"
    ]


# --- files that are not text or not TOML are config errors, never tracebacks -------------------


def test_a_file_that_is_not_utf8_is_a_config_error(tmp_path) -> None:
    path = tmp_path / "bank.toml"
    path.write_bytes(b'[locker]\nid = "caf\xe9"\n')
    with pytest.raises(ConfigError) as info:
        load(path)
    assert info.value.problems == [f"{path}: not UTF-8 text: byte 0xe9 at line 2, column 10"]


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("[locker\n", "not valid TOML: Expected ']' at the end of a table declaration (at line 1"),
        ("a = " + "[" * 5000 + "]" * 5000, "not valid TOML: nested too deeply"),
        ("a = " + "9" * 5000, "not valid TOML: Exceeds the limit"),
        ('a = "\x00"', "not valid TOML: Illegal character"),
    ],
    ids=["syntax", "deep", "long-int", "nul"],
)
def test_text_that_is_not_toml_is_a_config_error(tmp_path, source, reason) -> None:
    (found,) = problems(source, tmp_path)
    assert found.startswith(f"{tmp_path / 'bank.toml'}: {reason}"), found


def lockerd_command(*args: object) -> subprocess.CompletedProcess[str]:
    def cap_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))

    return subprocess.run(
        [sys.executable, "-m", "lockerd", *map(str, args)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        preexec_fn=cap_memory,
    )


@pytest.mark.parametrize("command", ["check-config", "run"])
def test_both_commands_report_a_bad_file_cleanly(tmp_path, command) -> None:
    path = tmp_path / "bank.toml"
    path.write_bytes(text(tmp_path).encode().replace(b'"test-locker"', b'"test-\xff"'))
    done = lockerd_command(command, path)
    assert done.returncode == 2, done
    assert done.stderr == f"{path}: not UTF-8 text: byte 0xff at line 3, column 12\n"
    assert done.stdout == ""


# --- any value anywhere: a config error naming the file, never another exception ---------------


def toml_value(value: object) -> str:
    """``value`` written as TOML (inline tables and arrays; enough for the test bank)."""
    import json
    import math

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(value) if isinstance(value, str) else repr(value)


def places(table: object, path: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    """Every key path in a parsed TOML document."""
    items = table.items() if isinstance(table, dict) else enumerate(table)  # type: ignore[attr-defined]
    out = []
    for key, value in items:
        out.append((*path, key))
        if isinstance(value, dict | list):
            out += places(value, (*path, key))
    return out


def any_toml() -> object:
    from hypothesis import strategies as st

    scalars = st.one_of(
        st.integers(min_value=-(2**63), max_value=2**63 - 1),
        st.floats(allow_nan=True, allow_infinity=True),
        st.booleans(),
        st.text(max_size=8),
        st.sampled_from(["cu0", "rs485", "psu", "S", "S1", "kerong-cu16", "sensor"]),
    )
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
        max_leaves=5,
    )


def test_any_value_anywhere_is_a_config_error_or_a_config(tmp_path) -> None:
    import copy
    import tomllib

    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    bank = tomllib.loads(text(tmp_path))
    spots = places(bank)
    path = tmp_path / "bank.toml"

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(st.tuples(st.sampled_from(spots), any_toml()), min_size=1, max_size=3))
    def check(changes: list[tuple[tuple[object, ...], object]]) -> None:
        table = copy.deepcopy(bank)
        for spot, value in changes:
            parent = table
            try:
                for key in spot[:-1]:
                    parent = parent[key]
                parent[spot[-1]] = value
            except (KeyError, IndexError, TypeError):
                continue  # an earlier change replaced the table this spot was in
        source = "\n".join(f"{key} = {toml_value(value)}" for key, value in table.items())
        try:
            parse(source, path)
        except ConfigError as error:
            assert error.problems and all(p.startswith(f"{path}: ") for p in error.problems)
            assert len(set(error.problems)) == len(error.problems), error.problems

    check()


@pytest.mark.parametrize(
    ("bus", "gap_s"),
    [
        ({}, 3.5 * 10 / 19200),  # Modbus RTU's frame silence: 3.5 characters at the baud rate
        ({"baud": 9600}, 3.5 * 10 / 9600),
        ({"gap_ms": 20}, 0.020),
        ({"gap_ms": 0}, 0.0),
    ],
    ids=["19200 derived", "9600 derived", "configured 20 ms", "configured none"],
)
def test_a_serial_bus_keeps_its_configured_gap_or_3_5_characters(tmp_path, bus, gap_s) -> None:
    from lockerd import hardware

    data = families.bank(tmp_path)
    data["bus"][0].update(bus)
    opened = hardware.build(families.config(data, tmp_path))
    try:
        assert opened.links["rs485"].gap == pytest.approx(gap_s)
    finally:
        opened.close()
