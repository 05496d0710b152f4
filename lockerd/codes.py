"""Pickup and courier codes: generated here, stored only as HMAC-SHA256.

The HMAC key is the device key, a file kept outside the database, so a
copy of the database alone reveals no code. The database records a
fingerprint of the key so a wrong or regenerated key is caught at start
rather than silently rejecting every stored code.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from lockerd.errors import DeviceKeyError

KEY_BYTES = 32


class DeviceKey:
    """The secret behind every code HMAC."""

    def __init__(self, secret: bytes):
        if len(secret) < KEY_BYTES:
            raise DeviceKeyError(f"device key is {len(secret)} bytes; it needs {KEY_BYTES}")
        self._secret = secret

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


def new_pickup_code(length: int) -> str:
    """A uniformly random code of ``length`` digits (leading zeros kept)."""
    return f"{secrets.randbelow(10**length):0{length}d}"


def check_code_format(code: object, length: int) -> str | None:
    """Return why ``code`` is not a well-formed pickup code, or None if it is."""
    if not isinstance(code, str):
        return "the code must be a string of digits"
    if not code.isascii() or not code.isdigit():
        return "the code must contain digits only"
    if len(code) != length:
        return f"the code must have {length} digits, not {len(code)}"
    return None
