"""Back-office commands: checked field by field before anything is applied.

A command is ``{"id", "type", "expires_at", "data"}`` (plus ``"signature"`` on
``compartment.open``). :func:`parse` turns one into a :class:`Command` or
raises :class:`Invalid` naming the field that is wrong; nothing is applied
from an invalid command. docs/sync-protocol.md is the reference.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from lockerd.flows import BARCODE, COURIER_CODE
from lockerd.sendcode import TYPED as SEND_CODE

COMMAND_ID = re.compile(r"[\x21-\x7e]{1,128}")
#: A pickup group: the back office's opaque key for one recipient's parcels.
GROUP = re.compile(r"[\x21-\x7e]{1,128}")
TEXT_MAX = 200


class Invalid(ValueError):
    """A command (or one of its fields) that is not what the protocol says."""


@dataclass(frozen=True)
class Command:
    id: str
    type: str
    expires_at: int
    data: dict[str, Any]
    signature: bytes = b""


#: A carrier's name as couriers and send codes give it: printable ASCII, spaces allowed.
CARRIER = re.compile(r"[ -~]{1,64}")


def _text(value: Any, field: str, *, pattern: re.Pattern[str] | None = None) -> str:
    if not isinstance(value, str) or len(value) > TEXT_MAX or not value.isprintable():
        raise Invalid(f"{field} must be printable text of at most {TEXT_MAX} characters")
    if pattern is not None and not pattern.fullmatch(value):
        raise Invalid(f"{field} {value!r} is not valid")
    return value


def _int(value: Any, field: str, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise Invalid(f"{field} must be an integer in {low}..{high}")
    return value


def _hours(value: Any, field: str) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or not 1 <= value <= 24 * 90:
        raise Invalid(f"{field} must be a number of hours in 1..2160")
    return float(value)


def _rights(value: Any, field: str) -> list[str]:
    if (
        not isinstance(value, list)
        or not value
        or any(r not in ("deliver", "collect") for r in value)
    ):
        raise Invalid(f"{field} must be a non-empty list of 'deliver' and 'collect'")
    return sorted(set(value))


def _kind(value: Any, field: str) -> str:
    if value not in ("send", "return"):
        raise Invalid(f"{field} must be 'send' or 'return'")
    return str(value)


EPOCH_MAX = 2**40

#: Per type: field -> (required, checker). A field not listed is an error.
Checker = Callable[[Any, str], Any]
SCHEMAS: dict[str, dict[str, tuple[bool, Checker]]] = {
    "parcel.expect": {
        "barcode": (True, lambda v, f: _text(v, f, pattern=BARCODE)),
        "size": (False, _text),
        "recipient": (False, _text),
        "hold_hours": (False, _hours),
        "group": (False, lambda v, f: _text(v, f, pattern=GROUP)),
    },
    "parcel.cancel": {"barcode": (True, lambda v, f: _text(v, f, pattern=BARCODE))},
    "parcel.extend": {
        "barcode": (True, lambda v, f: _text(v, f, pattern=BARCODE)),
        "pickup_by": (True, lambda v, f: _int(v, f, 0, EPOCH_MAX)),
    },
    "courier.upsert": {
        "id": (True, lambda v, f: _text(v, f, pattern=COMMAND_ID)),
        "name": (False, _text),
        "code": (True, lambda v, f: _text(v, f, pattern=COURIER_CODE)),
        "rights": (True, _rights),
        "carrier": (False, lambda v, f: _text(v, f, pattern=CARRIER)),
    },
    "courier.revoke": {"id": (True, lambda v, f: _text(v, f, pattern=COMMAND_ID))},
    "send.expect": {
        "code": (True, lambda v, f: _text(v, f, pattern=SEND_CODE)),
        "reference": (True, lambda v, f: _text(v, f, pattern=BARCODE)),
        "size": (True, _text),
        "carrier": (True, lambda v, f: _text(v, f, pattern=CARRIER)),
        "kind": (False, _kind),
        "valid_until": (True, lambda v, f: _int(v, f, 0, EPOCH_MAX)),
    },
    "compartment.disable": {"compartment": (True, _text), "reason": (False, _text)},
    "compartment.enable": {"compartment": (True, _text)},
    "compartment.open": {
        "compartment": (True, _text),
        "open_seq": (True, lambda v, f: _int(v, f, 1, 2**53)),
        "reason": (False, _text),
    },
}
TYPES = tuple(SCHEMAS)
SIGNED = ("compartment.open",)


def command_id(raw: Any) -> str | None:
    """The id of a raw command when it has a usable one (to report a rejection against)."""
    value = raw.get("id") if isinstance(raw, dict) else None
    return value if isinstance(value, str) and COMMAND_ID.fullmatch(value) else None


def parse(raw: Any) -> Command:
    """A checked command, or :class:`Invalid` saying which field is wrong."""
    if not isinstance(raw, dict):
        raise Invalid("a command must be a JSON object")
    allowed = {"id", "type", "expires_at", "data", "signature"}
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise Invalid(f"unknown field(s): {', '.join(unknown)}")
    if command_id(raw) is None:
        raise Invalid("id must be 1 to 128 printable ASCII characters")
    kind = raw.get("type")
    if not isinstance(kind, str) or kind not in SCHEMAS:  # a list or an object is unhashable
        raise Invalid(f"unknown command type {kind!r}")
    expires = _int(raw.get("expires_at"), "expires_at", 0, EPOCH_MAX)
    data = raw.get("data")
    if not isinstance(data, dict):
        raise Invalid("data must be a JSON object")
    checked = _check_data(kind, data)
    signature = b""
    if kind in SIGNED:
        try:
            signature = base64.b64decode(raw.get("signature") or "", validate=True)
        except (binascii.Error, TypeError, ValueError):
            raise Invalid("signature must be base64") from None
        if len(signature) != 64:
            raise Invalid("signature must be a base64 Ed25519 signature (64 bytes)")
    elif "signature" in raw:
        raise Invalid(f"a {kind} command carries no signature")
    return Command(raw["id"], kind, expires, checked, signature)


def _check_data(kind: str, data: dict[str, Any]) -> dict[str, Any]:
    schema = SCHEMAS[kind]
    unknown = sorted(set(data) - set(schema))
    if unknown:
        raise Invalid(f"data has unknown field(s): {', '.join(unknown)}")
    checked = {}
    for field, (required, check) in schema.items():
        if field not in data:
            if required:
                raise Invalid(f"data.{field} is missing")
            continue
        checked[field] = check(data[field], f"data.{field}")
    return checked


def open_message(locker: str, command: Command) -> bytes:
    """The bytes a remote open's signature covers (docs/sync-protocol.md)."""
    fields = (
        "lockerd-remote-open-v1",
        locker,
        command.id,
        command.data["compartment"],
        str(command.data["open_seq"]),
        str(command.expires_at),
    )
    return "\n".join(fields).encode()


def signed_by(keys: list[Ed25519PublicKey], locker: str, command: Command) -> bool:
    """Whether one of ``keys`` made ``command``'s signature for this locker."""
    message = open_message(locker, command)
    for key in keys:
        try:
            key.verify(command.signature, message)
            return True
        except InvalidSignature:
            continue
    return False
