"""Config validation: every problem named with file, key path and reason."""

from pathlib import Path

import pytest

from lockerd.cli import main
from lockerd.config import ConfigError, load, parse
from lockerd.config.schema import Cu16BoardConfig
from tests.rig import BANK

ROOT = Path(__file__).resolve().parent.parent


def text(tmp_path: Path) -> str:
    return BANK.format(state=tmp_path, locked_bit=1, closed_bit=1)


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
            "compartment[1].lock: 'cu0' lock channel 1 is already used by 'S1'",
        ),
        (
            "lock = 5\nsensor = 9",
            "lock = 5\nsensor = 2",
            "compartment[4].sensor: 'cu0' sensor channel 2 is already used by 'S2'",
        ),
        (
            "lock = 5\nsensor = 9",
            "lock = 17",
            "compartment[4].lock: channel 17 is outside 1..16 on 'cu0'",
        ),
        (
            'id = "M1"\nsize = "M"\ncolumn = 2\nrow = 1\nboard = "cu0"',
            'id = "M1"\nsize = "M"\ncolumn = 2\nrow = 1\nboard = "cu9"',
            "compartment[2].board: no board named 'cu9'",
        ),
        (
            'id = "M1"\nsize = "M"',
            'id = "M1"\nsize = "XL"',
            "compartment[2].size: no size named 'XL'",
        ),
        ('id = "S2"', 'id = "S1"', "compartment[1].id: 'S1' is defined twice"),
        (
            "column = 1\nrow = 2",
            "column = 1\nrow = 1",
            "compartment[1]: column 1 row 1 is already 'S1'",
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
            "size[0].height_mm: -1 is outside 0..inf",
        ),
        ('[locker]\nid = "test-locker"', "[locker]", "locker.id: missing required key"),
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


def with_board_keys(tmp_path: Path, keys: str) -> str:
    return text(tmp_path).replace("address = 0\n", f"address = 0\n{keys}\n", 1)


def test_set_energize_time_is_a_cu16_board_key(tmp_path) -> None:
    source = with_board_keys(tmp_path, "set_energize_time = true\nenergize_ms = 500")
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
    keys = f"set_energize_time = true\nenergize_ms = {energize_ms}"
    found = problems(with_board_keys(tmp_path, keys), tmp_path)
    expected = f"{tmp_path / 'bank.toml'}: board[0].energize_ms: {reason}"
    assert any(p.startswith(expected) for p in found), found


def test_all_problems_are_reported_at_once(tmp_path) -> None:
    source = text(tmp_path).replace("address = 0", "address = 15").replace("lock = 2", "lock = 1")
    assert len(problems(source, tmp_path)) >= 2


def test_not_toml(tmp_path) -> None:
    (found,) = problems("[locker\n", tmp_path)
    assert found.startswith(f"{tmp_path / 'bank.toml'}: not valid TOML")


GPIO = """
[[bus]]
name = "header"
protocol = "gpio"
pin_factory = "mock"
[[board]]
name = "cab"
bus = "header"
power_group = "psu"
lock_pins = [17, 27]
door_pins = [5, 17]
[[compartment]]
id = "G1"
size = "L"
column = 9
row = 1
board = "cab"
lock = 1
"""


def test_gpio_pin_claimed_twice(tmp_path) -> None:
    found = problems(text(tmp_path).replace("[demo]", GPIO + "[demo]"), tmp_path)
    assert any("board[1].door_pins[1]: pin 17 is used twice" in p for p in found), found


def test_gpio_bus_needs_a_factory_and_no_port(tmp_path) -> None:
    source = text(tmp_path).replace(
        "[demo]", GPIO.replace('pin_factory = "mock"', 'port = "/dev/x"') + "[demo]"
    )
    found = problems(source, tmp_path)
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
