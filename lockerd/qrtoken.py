"""Pickup QR tokens: signed by the back office, verified here with no network.

A token is the ASCII text ``LKR1.<payload>.<signature>``: ``payload`` is
base64url (no padding) of a JSON object ``{"aud", "parcel", "exp", "jti"}``
(this locker's id, the parcel's barcode, expiry in Unix seconds, a unique
token id) and ``signature`` is base64url of the Ed25519 signature of the
ASCII bytes ``LKR1.<payload>`` by a back-office key whose public half is in
``pickup.qr_keys``. A token opens one parcel once; see docs/qr-tokens.md.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from lockerd.errors import BadRequest, FlowError

PREFIX = "LKR1"
MAX_LENGTH = 1024


@dataclass(frozen=True)
class Claims:
    locker: str
    parcel: str
    expires: float
    token_id: str


class ForgedToken(FlowError):
    """A well-formed token whose signature no configured key made (counted as a wrong code)."""

    status = 403

    def __init__(self) -> None:
        super().__init__("token_invalid", "this QR code was not issued for pickups here")


def public_key(text: str) -> Ed25519PublicKey:
    """A back-office public key from its base64 form (32 raw bytes); ValueError if not one."""
    try:
        raw = base64.b64decode(text, validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not a base64 Ed25519 public key (32 bytes)") from exc


def looks_like_token(text: str) -> bool:
    """Whether ``text`` has a pickup QR code's form (not yet whether it is genuine)."""
    return text.startswith(PREFIX + ".")


def private_key(text: str) -> Ed25519PrivateKey:
    """A signing key from its base64 form (32 raw bytes); ValueError if not one."""
    try:
        return Ed25519PrivateKey.from_private_bytes(base64.b64decode(text, validate=True))
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not a base64 Ed25519 private key (32 bytes)") from exc


def public_text(key: Ed25519PrivateKey) -> str:
    """The base64 form of ``key``'s public half, as ``pickup.qr_keys`` lists it."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    """Strict base64url: a character outside the alphabet is an error, not skipped."""
    return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)


def issue(claims: Claims, key: Ed25519PrivateKey) -> str:
    """Make a token (the back office's side; the reference back office and tests use it)."""
    body = {"aud": claims.locker, "parcel": claims.parcel, "exp": claims.expires}
    body["jti"] = claims.token_id
    return sign(PREFIX, body, key)


def sign(prefix: str, body: dict[str, object], key: Ed25519PrivateKey) -> str:
    """``<prefix>.<payload>.<signature>`` over the JSON ``body`` (pickup and send codes)."""
    signed = f"{prefix}.{_b64(json.dumps(body, separators=(',', ':')).encode())}"
    return f"{signed}.{_b64(key.sign(signed.encode()))}"


def signed_payload(
    token: object, keys: list[Ed25519PublicKey], prefix: str, bad: BadRequest
) -> bytes:
    """The payload of a token of ``prefix``'s form that one of ``keys`` signed.

    Raises:
        BadRequest: ``bad``, when ``token`` does not have the form.
        ForgedToken: no key in ``keys`` signed it.
    """
    signed, signature, payload = _split(token, prefix, bad)
    for key in keys:
        try:
            key.verify(signature, signed.encode())
            return payload
        except InvalidSignature:
            continue
    raise ForgedToken()


def verify(token: object, keys: list[Ed25519PublicKey], locker: str, now: float) -> Claims:
    """The claims of a genuine token for this locker that has not expired.

    Raises:
        BadRequest: not a token at all (``invalid_token``).
        ForgedToken: no configured key signed it.
        FlowError: ``token_wrong_locker`` or ``token_expired``.
    """
    if not keys:
        raise FlowError("qr_not_enabled", "pickup by QR code is not set up on this locker")
    bad = BadRequest("invalid_token", "that is not a pickup QR code", field="token")
    claims = _claims(signed_payload(token, keys, PREFIX, bad))
    if claims.locker != locker:
        raise FlowError("token_wrong_locker", "this QR code is for another locker")
    if claims.expires <= now:
        raise FlowError("token_expired", "this QR code has expired")
    return claims


def _split(token: object, prefix: str, bad: BadRequest) -> tuple[str, bytes, bytes]:
    if not isinstance(token, str) or len(token) > MAX_LENGTH or not token.isascii():
        raise bad
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != prefix:
        raise bad
    try:
        return f"{parts[0]}.{parts[1]}", _unb64(parts[2]), _unb64(parts[1])
    except (binascii.Error, ValueError):
        raise bad from None


def _claims(payload: bytes) -> Claims:
    try:
        body = json.loads(payload)
        claims = Claims(str(body["aud"]), str(body["parcel"]), float(body["exp"]), str(body["jti"]))
    except (ValueError, KeyError, TypeError):
        raise BadRequest("invalid_token", "the QR code's contents are not readable") from None
    if not claims.token_id or not claims.parcel:
        raise BadRequest("invalid_token", "the QR code names no parcel or token id")
    return claims
