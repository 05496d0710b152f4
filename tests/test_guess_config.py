"""The throttle's yearly figure in config: derived code length, refusal above 1%, check-config."""

import re
from pathlib import Path

import pytest

from lockerd.cli import main
from lockerd.config import ConfigError, load, parse

ROOT = Path(__file__).resolve().parent.parent


def big_bank(tmp_path: Path, boards: int = 8, pickup: str = "") -> Path:
    """config/kerong-cu48.toml grown to ``boards`` CU48 boards on its bus (48 doors each)."""
    text = (ROOT / "config" / "kerong-cu48.toml").read_text()
    head = text[: text.index("[[board]]")].replace("[pickup]\n", f"[pickup]\n{pickup}\n", 1)
    board = text[text.index("[[board]]") : text.index("[[compartment]]")]
    parts = [head.replace('"/var/lib/lockerd"', f'"{tmp_path}"')]
    for b in range(boards):
        parts.append(
            board.replace('name = "cu48"', f'name = "cu{b}"').replace(
                "address = 0 ", f"address = {b} "
            )
        )
    for b in range(boards):
        for lock in range(1, 49):
            column, row = b * 6 + (lock - 1) // 8 + 1, (lock - 1) % 8 + 1
            parts.append(
                f'[[compartment]]\nid = "C{b}-{lock}"\nsize = "M"\ncolumn = {column}\n'
                f'row = {row}\nboard = "cu{b}"\nlock = {lock}\nitem_sensor = {lock}\n'
            )
    path = tmp_path / "bank384.toml"
    path.write_text("\n".join(parts))
    return path


def test_a_384_door_bank_with_the_defaults_derives_10_digits_and_keeps_one_percent(
    tmp_path, capsys
) -> None:
    path = big_bank(tmp_path)
    config = load(path)
    assert len(config.compartment) == 384
    assert config.pickup.code_length == 10
    assert main(["check-config", str(path)]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("codes"))
    assert line == (
        "codes  10 digits; wrong-code guesses: at most 35,074 a year; chance of guessing"
        " a code with all 384 compartments full: 0.13% a year (limit 1%)"
    )


def test_a_384_door_bank_with_8_digit_codes_is_refused_with_the_fix(tmp_path, capsys) -> None:
    path = big_bank(tmp_path, pickup="code_length = 8")
    assert main(["check-config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "pickup.code_length: 8-digit codes with all 384 compartments full" in err
    assert "12.60% chance a year" in err
    assert re.search(r"raise pickup.throttle.lockout_s to at least \d+", err)
    assert "make pickup.code_length 10" in err


def test_the_demo_prints_its_figure(capsys) -> None:
    assert main(["check-config", str(ROOT / "config" / "demo.toml")]) == 0
    assert (
        "codes  8 digits; wrong-code guesses: at most 35,074 a year; chance of guessing a code"
        " with all 10 compartments full: 0.35% a year (limit 1%)"
    ) in capsys.readouterr().out


def test_a_throttle_too_loose_for_the_bank_is_refused(tmp_path) -> None:
    text = (ROOT / "config" / "demo.toml").read_text()
    text = text.replace("lockout_s = 900 ", "lockout_s = 60 ")
    with pytest.raises(ConfigError) as info:
        parse(text, tmp_path / "demo.toml")
    (problem,) = info.value.problems
    assert "pickup.code_length: 8-digit codes with all 10 compartments full" in problem
    assert "raise pickup.throttle.lockout_s to at least 315" in problem


@pytest.mark.parametrize("length", [1, 5])
def test_a_code_length_below_six_is_refused(tmp_path, length) -> None:
    text = (ROOT / "config" / "demo.toml").read_text()
    text = text.replace("code_length = 8 ", f"code_length = {length} ")
    with pytest.raises(ConfigError) as info:
        parse(text, tmp_path / "demo.toml")
    assert info.value.problems == [
        f"{tmp_path / 'demo.toml'}: pickup.code_length: {length} is outside 6..12 (or 0: derived)"
    ]


def test_a_lock_out_of_nan_seconds_is_a_config_error_not_a_crash(tmp_path) -> None:
    text = (
        (ROOT / "config" / "demo.toml").read_text().replace("lockout_s = 900 ", "lockout_s = nan ")
    )
    with pytest.raises(ConfigError) as info:
        parse(text, tmp_path / "demo.toml")
    [problem] = info.value.problems
    assert problem.endswith("pickup.throttle.lockout_s: expected a finite number, got float nan")
