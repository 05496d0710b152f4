"""Send and return codes: signed by the back office, verified here with no network.

A short code to type (:data:`TYPED`) is announced by the back office instead
(``send.expect``) and checked against the store (``lockerd/store/sending.py``).

A send code is the ASCII text ``LKS1.<payload>.<signature>``, made and checked the
way pickup QR tokens are (``lockerd/qrtoken.py``: the same base64url parts, the same
Ed25519 keys, ``pickup.qr_keys``); ``payload`` is the JSON object ``{"aud", "kind",
"ref", "size", "carrier", "exp", "jti"}``: this locker's id, ``send`` or ``return``,
the shipment's label (for a return, the barcode of the parcel collected earlier), the
size paid for, the carrier whose courier takes it, expiry in Unix seconds and a
unique code id. A code deposits one parcel once (``lockerd/store/outbound.py``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from lockerd import qrtoken
from lockerd.errors import BadRequest, FlowError
from lockerd.flows.record import BARCODE

PREFIX = "LKS1"
#: A send code to type at the kiosk, announced by the back office (``send.expect``):
#: 8 to 12 digits, kept only as an HMAC.
TYPED = re.compile(r"[0-9]{8,12}")
KINDS = ("send", "return")
MAX_CARRIER = 64


@dataclass(frozen=True)
class SendClaims:
    locker: str
    kind: str
    reference: str
    size: str
    carrier: str
    expires: float
    token_id: str


class ForgedSendCode(FlowError):
    """A well-formed send code that no configured key signed (counted as a wrong code)."""

    def __init__(self) -> None:
        super().__init__("send_code_invalid", "this send code was not issued for this locker")


def looks_like_send_code(text: str) -> bool:
    """Whether ``text`` has a send code's form (not yet whether it is genuine)."""
    return text.startswith(PREFIX + ".")


def issue(claims: SendClaims, key: Ed25519PrivateKey) -> str:
    """Make a send code (the back office's side: the reference back office, the demo)."""
    body: dict[str, object] = {"aud": claims.locker, "kind": claims.kind, "ref": claims.reference}
    body |= {"size": claims.size, "carrier": claims.carrier, "exp": claims.expires}
    body["jti"] = claims.token_id
    return qrtoken.sign(PREFIX, body, key)


def verify(
    code: object, keys: list[Ed25519PublicKey], locker: str, now: float, sizes: tuple[str, ...]
) -> SendClaims:
    """The claims of a genuine send code for this locker that has not expired.

    Raises:
        BadRequest: not a send code at all (``invalid_send_code``).
        ForgedSendCode: no configured key signed it.
        FlowError: ``send_not_enabled``, ``send_code_wrong_locker``, ``send_code_expired``.
    """
    if not keys:
        raise FlowError("send_not_enabled", "sending parcels is not set up on this locker")
    bad = BadRequest("invalid_send_code", "that is not a send code", field="code")
    try:
        claims = _claims(qrtoken.signed_payload(code, keys, PREFIX, bad), sizes)
    except qrtoken.ForgedToken:
        raise ForgedSendCode() from None
    if claims.locker != locker:
        raise FlowError("send_code_wrong_locker", "this send code is for another locker")
    if claims.expires <= now:
        raise FlowError("send_code_expired", "this send code has expired")
    return claims


def _claims(payload: bytes, sizes: tuple[str, ...]) -> SendClaims:
    try:
        body = json.loads(payload)
        claims = SendClaims(
            str(body["aud"]),
            str(body["kind"]),
            str(body["ref"]),
            str(body["size"]),
            str(body["carrier"]),
            float(body["exp"]),
            str(body["jti"]),
        )
    except (ValueError, KeyError, TypeError):
        raise BadRequest("invalid_send_code", "the send code's contents are not readable") from None
    problem = _problem(claims, sizes)
    if problem is not None:
        raise BadRequest("invalid_send_code", f"the send code {problem}")
    return claims


def _problem(claims: SendClaims, sizes: tuple[str, ...]) -> str | None:
    """What is wrong with a signed code's claims, if anything."""
    if claims.kind not in KINDS:
        return f"is neither for sending nor for a return ({claims.kind!r})"
    if claims.size not in sizes:
        return f"names a size this locker does not have ({claims.size!r})"
    if not BARCODE.fullmatch(claims.reference):
        return "names no parcel label"
    if not claims.token_id or len(claims.carrier) > MAX_CARRIER:
        return "has no code id or too long a carrier"
    return None
