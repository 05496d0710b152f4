"""Reading a kiosk API request: a JSON body and query values, within stated limits.

The limits come before any field's meaning is looked at, so no input can
reach the flows, the store or the JSON parser in a shape they would fail on
(a RecursionError from deep nesting, an OverflowError from an integer SQLite
cannot hold). The flows then check each field's format with their own codes.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from aiohttp import web

from lockerd.errors import BadRequest

#: The largest request body, in bytes (the longest real one, a QR token, is ~300).
MAX_BODY = 16 * 1024
#: The deepest nesting of arrays and objects a body may have (a body is one object).
MAX_DEPTH = 8
#: The longest string any field may hold (a field's own format may be shorter).
MAX_TEXT = 1024
#: The most digits a number in a body may have.
MAX_DIGITS = 64
#: A journal sequence number, a parcel id: what an SQLite integer can hold.
INT64 = (-(2**63), 2**63 - 1)
#: Fields with a narrower range than INT64.
INT_RANGES = {"parcel": (1, 2**63 - 1)}
#: ``?after=`` on the event stream: a sequence number, 0 and up.
SEQ_RANGE = (0, 2**63 - 1)

_STRING = re.compile(r'"(?:[^"\\]++|\\.)*+"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]++")


class _Refused(ValueError):
    """A number or constant the body may not hold (its message says which)."""


def _number(text: str) -> int:
    if len(text.lstrip("-")) > MAX_DIGITS:
        raise _Refused(f"a number has more than {MAX_DIGITS} digits")
    return int(text)


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Refused(f"{text[:20]} is too large a number")
    return value


def _constant(text: str) -> float:
    raise _Refused(f"{text} is not a JSON number")


def depth(text: str) -> int:
    """How deep arrays and objects nest in JSON ``text`` (brackets in strings do not count)."""
    deepest = level = 0
    for bracket in _NOT_BRACKET.sub("", _STRING.sub("", text)):
        level += 1 if bracket in "[{" else -1
        deepest = max(deepest, level)
    return deepest


def parse(raw: bytes) -> Any:
    """The JSON value in ``raw``, refused as ``invalid_json`` past the limits."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest("invalid_json", f"the body is not UTF-8: {exc.reason}") from None
    if depth(text) > MAX_DEPTH:
        raise BadRequest("invalid_json", f"the body is nested more than {MAX_DEPTH} deep")
    try:
        return json.loads(text, parse_int=_number, parse_float=_float, parse_constant=_constant)
    except ValueError as exc:  # json.JSONDecodeError or _Refused
        raise BadRequest("invalid_json", f"the body is not JSON: {exc}") from None


def check_value(name: str, value: Any) -> None:
    """Refuse a field value no endpoint takes: a container, an integer out of range,
    a string too long or not Unicode."""
    if value is None or isinstance(value, bool | float):
        return
    if isinstance(value, int):
        low, high = INT_RANGES.get(name, INT64)
        if not low <= value <= high:
            raise BadRequest("invalid_field", f"{name} must be from {low} to {high}", field=name)
    elif isinstance(value, str):
        if len(value) > MAX_TEXT:
            raise BadRequest(
                "invalid_field", f"{name} is longer than {MAX_TEXT} characters", field=name
            )
        if not value.isascii() and _unpaired_surrogate(value):
            raise BadRequest("invalid_field", f"{name} is not valid Unicode", field=name)
    else:
        raise BadRequest(
            "invalid_field",
            f"{name} must be a string, a number, true, false or null",
            field=name,
        )


def _unpaired_surrogate(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


async def body(
    request: web.Request, allowed: set[str], required: frozenset[str] | set[str] = frozenset()
) -> dict[str, Any]:
    """The JSON object in the request, with only ``allowed`` keys and every ``required`` one."""
    data = parse(await request.read()) if request.body_exists else {}
    if not isinstance(data, dict):
        raise BadRequest("invalid_json", "the body must be a JSON object")
    unknown = sorted(set(data) - allowed)
    if unknown:
        shown = [name[:64] for name in unknown[:10]]
        raise BadRequest("unknown_field", f"unknown field(s): {', '.join(shown)}", fields=shown)
    missing = sorted(required - set(data))
    if missing:
        raise BadRequest("missing_field", f"missing field(s): {', '.join(missing)}", fields=missing)
    for name, value in data.items():
        check_value(name, value)
    return data


def one_of(data: dict[str, Any], keys: tuple[str, ...]) -> str:
    """The one of ``keys`` that ``data`` carries; an error when it has none or several."""
    given = [k for k in keys if k in data]
    if len(given) != 1:
        wanted = " or ".join(keys)
        raise BadRequest("missing_field", f"give exactly one of {wanted}", fields=list(keys))
    return given[0]


def sequence(request: web.Request, name: str) -> int | None:
    """Query value ``name`` as a journal sequence number, or None when not given."""
    text = request.query.get(name)
    if text is None:
        return None
    low, high = SEQ_RANGE
    if not re.fullmatch(r"[0-9]{1,19}", text) or not low <= int(text) <= high:
        raise BadRequest(
            "invalid_query", f"{name} must be a sequence number from {low} to {high}", field=name
        )
    return int(text)


def flag(data: dict[str, Any], name: str) -> bool:
    """Optional field ``name`` as true or false (false when not given)."""
    value = data.get(name, False)
    if not isinstance(value, bool):
        raise BadRequest("invalid_field", f"{name} must be true or false", field=name)
    return value
