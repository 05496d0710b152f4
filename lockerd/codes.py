"""Pickup and courier codes: generated here, stored only as HMAC-SHA256.

The HMAC key is the device key, a file kept outside the database, so a
copy of the database alone reveals no code. The database records a
fingerprint of the key so a wrong or regenerated key is caught at start
rather than silently rejecting every stored code.

A code waiting to be delivered (to the back office, or the demo's recipient
messages) is kept sealed: AES-256-GCM under a key derived from the device
key, bound to its parcel, so its plaintext never reaches the database file.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from collections.abc import Iterable
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from lockerd.errors import DeviceKeyError

KEY_BYTES = 32
SEALED = "s1:"  # the prefix of a sealed code (a plaintext one is digits only)


class DeviceKey:
    """The secret behind every code HMAC."""

    def __init__(self, secret: bytes):
        if len(secret) < KEY_BYTES:
            raise DeviceKeyError(f"device key is {len(secret)} bytes; it needs {KEY_BYTES}")
        self._secret = secret
        self._sealer: AESGCM | None = None

    @classmethod
    def load(cls, path: Path, *, create: bool) -> DeviceKey:
        """Read the key file, or create it (mode 0600) when ``create`` is true and it is missing."""
        try:
            return cls(path.read_bytes())
        except FileNotFoundError:
            if not create:
                raise DeviceKeyError(
                    f"{path}: device key missing, but the database already holds codes made "
                    "with a key; restore the key file from backup"
                ) from None
        except OSError as exc:
            raise DeviceKeyError(f"{path}: cannot read device key: {exc.strerror}") from exc
        path.parent.mkdir(parents=True, exist_ok=True)
        secret = secrets.token_bytes(KEY_BYTES)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(secret)
            handle.flush()
            os.fsync(handle.fileno())
        return cls(secret)

    @property
    def fingerprint(self) -> str:
        return self.digest("fingerprint", "lockerd").hex()[:16]

    def digest(self, kind: str, code: str) -> bytes:
        """HMAC-SHA256 of ``code``, domain-separated by ``kind`` (pickup, courier)."""
        return hmac.new(self._secret, f"{kind}:{code}".encode(), hashlib.sha256).digest()

    def seal(self, code: str, parcel_id: int) -> str:
        """``code`` encrypted for keeping until it is delivered, bound to ``parcel_id``."""
        nonce = secrets.token_bytes(12)
        sealed = self._aead().encrypt(nonce, code.encode(), str(parcel_id).encode())
        return SEALED + base64.b64encode(nonce + sealed).decode()

    def unseal(self, sealed: str, parcel_id: int) -> str:
        """The code :meth:`seal` made; a plaintext one (from an older lockerd) as it is."""
        if not sealed.startswith(SEALED):
            return sealed
        raw = base64.b64decode(sealed[len(SEALED) :])
        try:
            return self._aead().decrypt(raw[:12], raw[12:], str(parcel_id).encode()).decode()
        except InvalidTag:
            raise DeviceKeyError(f"the sealed code of parcel {parcel_id} does not open") from None

    def _aead(self) -> AESGCM:
        """The notice cipher, derived once (a seal runs inside a custody transaction)."""
        if self._sealer is None:
            self._sealer = AESGCM(self.digest("seal", "pickup notices"))
        return self._sealer


def new_pickup_code(length: int) -> str:
    """A uniformly random code of ``length`` digits (leading zeros kept)."""
    return f"{secrets.randbelow(10**length):0{length}d}"


def check_code_format(code: object, lengths: int | Iterable[int]) -> str | None:
    """Return why ``code`` is not a well-formed pickup code, or None if it is.

    ``lengths``: the code length, or every length the keypad takes.
    """
    if not isinstance(code, str):
        return "the code must be a string of digits"
    if not code.isascii() or not code.isdigit():
        return "the code must contain digits only"
    taken = sorted({lengths} if isinstance(lengths, int) else set(lengths))
    if len(code) not in taken:
        return f"the code must have {_either(taken)} digits, not {len(code)}"
    return None


def _either(lengths: list[int]) -> str:
    """``9``, ``8 or 9``, ``8, 9 or 10``."""
    shown = [str(n) for n in lengths]
    return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " or " + shown[-1]
