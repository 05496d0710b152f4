"""The kiosk's string catalogues: every language complete, every key the page uses present."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from lockerd.config import LANGUAGES
from lockerd.domain import Comp, Door

ROOT = Path(__file__).resolve().parent.parent
STATIC = ROOT / "lockerd" / "kiosk" / "static"
CATALOGUES = {
    lang: json.loads((STATIC / "i18n" / f"{lang}.json").read_text()) for lang in LANGUAGES
}
ENGLISH = CATALOGUES["en"]
ERROR = re.compile(r"(?:FlowError|BadRequest|NotFound|Unauthorized)\(\s*\"([a-z_]+)\"")


def placeholders(text: str) -> set[str]:
    return set(re.findall(r"\{(\w+)\}", text))


def used_keys() -> set[str]:
    page = (STATIC / "index.html").read_text()
    keys = set(re.findall(r'data-i18n(?:-label)?="([\w.]+)"', page))
    for script in STATIC.glob("*.js"):
        keys |= set(re.findall(r'\bt\(\s*"([\w.]+)"', script.read_text()))
        keys |= set(re.findall(r'key: "([\w.]+)"', script.read_text()))
        keys |= set(
            re.findall(r'"((?:door|done|error|courier|collect)\.[\w]+)"', script.read_text())
        )
    return keys


def test_there_is_more_than_one_language() -> None:
    assert "en" in LANGUAGES and len(LANGUAGES) >= 2


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_language_has_every_string_with_the_same_placeholders(lang) -> None:
    catalogue = CATALOGUES[lang]
    assert set(catalogue) == set(ENGLISH)
    for key, text in ENGLISH.items():
        assert catalogue[key].strip(), f"{lang}: {key} is empty"
        assert placeholders(catalogue[key]) == placeholders(text), f"{lang}: {key}"


def test_every_key_the_page_uses_is_in_the_catalogue() -> None:
    missing = sorted(used_keys() - set(ENGLISH))
    assert not missing, missing
    assert len(used_keys()) > 40  # the patterns above still find the page's keys


def test_every_error_the_daemon_gives_has_a_text() -> None:
    # lockerctl's own refusals are printed to a technician in English, never on the kiosk.
    technician_only = {"control.py", "commands.py", "technician.py", "lockerctl.py"}
    codes = {
        code
        for source in (ROOT / "lockerd").rglob("*.py")
        if source.name not in technician_only
        for code in ERROR.findall(source.read_text())
    }
    assert {"wrong_code", "locked_out", "locker_full", "compartment_out_of_order"} <= codes
    missing = sorted(code for code in codes if f"error.{code}" not in ENGLISH)
    assert not missing, missing


def test_every_error_in_the_api_docs_has_a_text() -> None:
    docs = (ROOT / "docs" / "kiosk-api.md").read_text()
    codes = set(re.findall(r"^\| \d{3} \| `([a-z_]+)`", docs, re.M))
    assert "too_fast" in codes
    missing = sorted(code for code in codes if f"error.{code}" not in ENGLISH)
    assert not missing, missing


def test_every_compartment_and_door_state_has_a_text() -> None:
    keys = {f"state.{s}" for s in Comp} | {f"door_state.{d}" for d in Door}
    assert keys <= set(ENGLISH)
