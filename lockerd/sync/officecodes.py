"""The reference back office's send codes: a member of the public's parcel to send or
return, signed with the back office's key (``lockerd/sendcode.py``), as
``POST /control/lockers/{locker}/send-codes`` gives them to people and demos. A locker
takes them when the back office's public key is in its ``pickup.qr_keys``."""

from __future__ import annotations

import secrets
from collections.abc import Callable

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from lockerd import qrtoken, sendcode

#: How long a send code stays valid unless the request says otherwise.
DEFAULT_TTL_S = 7 * 24 * 3600


class SendCodes:
    """Send codes signed by the reference back office's key."""

    def __init__(self, key: Ed25519PrivateKey, clock: Callable[[], float]):
        self.key, self.clock = key, clock

    def issue(
        self,
        locker: str,
        size: str,
        reference: str,
        carrier: str,
        kind: str = "send",
        expires_in: float = DEFAULT_TTL_S,
    ) -> str:
        claims = sendcode.SendClaims(
            locker,
            kind,
            reference,
            size,
            carrier,
            self.clock() + expires_in,
            f"office-{secrets.token_hex(8)}",
        )
        return sendcode.issue(claims, self.key)

    async def control_issue(self, request: web.Request) -> web.Response:
        """``{"size", "reference", "carrier", "kind"?, "expires_in"?}``: 201 ``{"code",
        "key"}`` (``key``: the public half a locker lists in ``pickup.qr_keys``)."""
        body = await request.json()
        texts = ("size", "reference", "carrier")
        if not isinstance(body, dict) or not all(isinstance(body.get(f), str) for f in texts):
            return _error('give {"size", "reference", "carrier", "kind"?, "expires_in"?}')
        kind, expires_in = body.get("kind", "send"), body.get("expires_in", DEFAULT_TTL_S)
        if kind not in sendcode.KINDS or not isinstance(expires_in, int | float):
            return _error(f"kind is one of {', '.join(sendcode.KINDS)}; expires_in a number")
        code = self.issue(
            request.match_info["locker"],
            body["size"],
            body["reference"],
            body["carrier"],
            kind,
            float(expires_in),
        )
        return web.json_response({"code": code, "key": qrtoken.public_text(self.key)}, status=201)


def _error(message: str) -> web.Response:
    return web.json_response({"error": {"message": message}}, status=400)
