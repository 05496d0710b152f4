"""A thin client for one back office's sync v1 API; every failure mapped to a meaning.

:class:`Unreachable` (connection, TLS, timeout) and :class:`ServerError`
(5xx) are worth retrying after a back-off; :class:`AuthRejected` (401/403,
or no token) is not, until someone fixes the token; :class:`ProtocolError`
(another 4xx, or an answer that is not what the protocol says) means the two
sides disagree, and is retried slowly while an operator looks.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import aiohttp

from lockerd.config.schema import SyncSection


class SyncError(Exception):
    """A round that did not complete."""


class Unreachable(SyncError):
    """No answer: the network, DNS, TLS or the time limit."""


class ServerError(SyncError):
    """The back office answered 5xx."""


class AuthRejected(SyncError):
    """The back office refused this locker's credentials (401/403), or there is no token."""


class ProtocolError(SyncError):
    """A 4xx other than auth, or an answer that does not follow sync v1."""


class TooLarge(ProtocolError):
    """The back office (or a proxy before it) answered 413: the batch was too large."""


class UnknownCursor(ProtocolError):
    """The back office answered 410 to a pull: it does not know the cursor."""


def tls_context(sync: SyncSection, resolve: Any) -> ssl.SSLContext | None:
    """Verification against the configured CA (or the system's), and the client certificate."""
    if not sync.url.startswith(("https://", "mqtts://", "wss://")):
        return None
    context = ssl.create_default_context(
        cafile=str(resolve(sync.ca_file)) if sync.ca_file else None
    )
    if sync.client_cert:
        context.load_cert_chain(resolve(sync.client_cert), resolve(sync.client_key))
    return context


def read_token(path: Path) -> str:
    """The bearer token in ``path``; AuthRejected names the file when there is none."""
    try:
        token = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise AuthRejected(f"cannot read {path}: {exc.strerror or exc}") from exc
    if not token or not token.isprintable():
        raise AuthRejected(f"{path} holds no usable token")
    return token


E = TypeVar("E", bound=Mapping[str, Any])


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def fitting(events: Sequence[E], first_seq: int, limit: int) -> list[E]:
    """The longest head of ``events`` whose push body is at most ``limit`` bytes (never
    fewer than one event: a single larger one goes alone, and a 413 says so)."""
    size = len(_json({"first_seq": first_seq, "events": []}))
    for count, event in enumerate(events):
        size += len(_json(event)) + (count > 0)
        if size > limit:
            return list(events[: max(1, count)])
    return list(events)


class BackOfficeClient:
    """``push`` events and ``pull`` commands for one locker; one session, one request at a time."""

    def __init__(
        self,
        base_url: str,
        locker_id: str,
        token_file: Path,
        *,
        timeout_s: float = 20.0,
        tls: ssl.SSLContext | None = None,
    ):
        self.base = f"{base_url.rstrip('/')}/v1/lockers/{quote(locker_id, safe='')}"
        self.token_file = token_file
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=timeout_s),
            connector=aiohttp.TCPConnector(ssl=tls if tls is not None else True, limit=1),
            json_serialize=_json,
        )

    async def close(self) -> None:
        await self._session.close()

    def _headers(self) -> dict[str, str]:
        # Read at every request, so a rotated token is used without a restart.
        return {"Authorization": f"Bearer {read_token(self.token_file)}"}

    async def push(self, events: Sequence[Mapping[str, Any]], first_seq: int) -> int:
        """Send ``events`` (in sequence order) with ``first_seq``, the lowest sequence
        number from which the locker holds every event; the back office's ``acked_seq``."""
        body = {"first_seq": first_seq, "events": events}
        answer = await self._call("POST", "/events", json=body)
        acked = answer.get("acked_seq")
        if not isinstance(acked, int) or isinstance(acked, bool) or acked < 0:
            raise ProtocolError(f"acked_seq must be a whole number, got {acked!r}")
        return acked

    async def pull(self, cursor: str) -> tuple[list[Any], str]:
        """Commands after ``cursor``, and the cursor to ask from next time."""
        answer = await self._call("GET", "/commands", params={"after": cursor})
        commands, new_cursor = answer.get("commands"), answer.get("cursor")
        if not isinstance(commands, list) or not isinstance(new_cursor, str):
            raise ProtocolError("a commands answer needs a commands list and a cursor string")
        return commands, new_cursor

    async def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        headers = self._headers()
        try:
            async with self._session.request(
                method, self.base + path, headers=headers, **kwargs
            ) as response:
                if response.status in (401, 403):
                    raise AuthRejected(f"the back office answered {response.status}")
                if response.status >= 500:
                    raise ServerError(f"the back office answered {response.status}")
                if response.status == 413:
                    raise TooLarge(f"{method} {path} answered 413: the body was too large")
                if response.status == 410 and path == "/commands":
                    raise UnknownCursor(
                        f"the back office does not know cursor {kwargs['params']['after']!r}"
                    )
                if response.status != 200:
                    raise ProtocolError(
                        f"{method} {path} answered {response.status}: {await _excerpt(response)}"
                    )
                try:
                    answer = await response.json(content_type=None)
                except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                    raise ProtocolError(f"{method} {path}: the answer is not JSON: {exc}") from exc
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise Unreachable(f"{method} {path}: {type(exc).__name__}: {exc}") from exc
        if not isinstance(answer, dict):
            raise ProtocolError(f"{method} {path}: the answer must be a JSON object")
        return answer


async def _excerpt(response: aiohttp.ClientResponse) -> str:
    text = await response.text(errors="replace")
    return text[:200]
