"""Sync v1 over MQTT: the topics, the payloads' correlation and the broker URL (docs/sync-mqtt.md).

Every topic sits under ``lockers/{locker_id}/`` (at most 4 levels, within
AWS IoT Core's 7 slashes and 256 bytes); nothing is published under ``$``.
A request carries its own id (``req``) in the payload, so MQTT 3.1.1 and 5
are matched the same way; under MQTT 5 it also goes as correlation data with
a response topic, for brokers and tools that route on them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

#: Device to back office: a push, ``{"req", "first_seq", "events"}``.
EVT = "evt"
#: Back office to device: a push's answer, ``{"req", "acked_seq"}`` or ``{"req", "error"}``.
ACK = "ack"
#: Back office to device: "commands are waiting", ``{"pending": n}``; the device pulls.
CMD = "cmd"
#: Device to back office: a pull, ``{"req", "after"}``.
RPC_REQ = "rpc/req"
#: Back office to device: a pull's answer, ``{"req", "commands", "cursor"}``, or an error.
RPC_RES = "rpc/res"
#: The device's presence: ``{"online": true, "since"}`` after each connect, the will
#: ``{"online": false, "since"}``; ``since`` (the connect's time) orders them.
CONN = "conn"
#: Every message either side publishes, the will included, is QoS 1 and not retained.
QOS = 1
#: What a device subscribes to (one SUBSCRIBE, within AWS's 8 filters).
DEVICE_SUBSCRIBES = (ACK, RPC_RES, CMD)
#: What a back office subscribes to, for every locker.
OFFICE_SUBSCRIBES = (EVT, RPC_REQ, CONN)
#: Characters a locker id cannot have in a topic level (besides any not printable ASCII).
NOT_IN_ID = frozenset("/+#")
#: The longest locker id: AWS IoT Core's client id limit (every topic then stays within
#: its 256 bytes).
MAX_ID = 128


def id_fits(locker_id: str) -> bool:
    """Whether ``locker_id`` can be the client id and one topic level: 1 to 128 printable
    ASCII characters (no space, no control character), none of ``/ + #``."""
    printable = all("!" <= char <= "~" for char in locker_id)
    return 0 < len(locker_id) <= MAX_ID and printable and not NOT_IN_ID & set(locker_id)


def topic(locker_id: str, leaf: str) -> str:
    return f"lockers/{locker_id}/{leaf}"


def split(name: str) -> tuple[str, str] | None:
    """(locker id, leaf) of a topic under ``lockers/``, or None."""
    parts = name.split("/", 2)
    if len(parts) != 3 or parts[0] != "lockers" or not parts[1]:
        return None
    return parts[1], parts[2]


def encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


class Unreadable(ValueError):
    """A payload that is no JSON object (the message says why)."""


def read(payload: bytes | bytearray) -> dict[str, Any]:
    """The JSON object ``payload`` holds; :class:`Unreadable` for anything else, whatever
    the bytes (JSON nested deeper than Python's recursion limit included)."""
    try:
        body = json.loads(payload)
    except RecursionError as exc:
        raise Unreadable("nested too deep to read") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise Unreadable(f"not JSON ({exc})") from exc
    if not isinstance(body, dict):
        raise Unreadable(f"a JSON {type(body).__name__}, not an object")
    return body


def decode(payload: bytes | bytearray) -> dict[str, Any] | None:
    """A JSON object, or None for anything else."""
    try:
        return read(payload)
    except Unreadable:
        return None


@dataclass(frozen=True)
class BrokerUrl:
    """Where the broker is: ``mqtts://host:port`` or ``wss://host:port/path``."""

    host: str
    port: int
    tls: bool
    websockets: bool
    path: str

    @classmethod
    def parse(cls, url: str) -> BrokerUrl:
        """ValueError names what is wrong."""
        parts = urlsplit(url)
        defaults = {"mqtts": 8883, "mqtt": 1883, "wss": 443, "ws": 80}
        if parts.scheme not in defaults:
            raise ValueError("must be mqtts://host:port or wss://host:port/path")
        if not parts.hostname or parts.query or parts.fragment:
            raise ValueError(f"{url!r} is not a broker URL (scheme, host, port, path for wss)")
        websockets = parts.scheme in ("ws", "wss")
        if parts.path not in ("", "/") and not websockets:
            raise ValueError("only a wss:// URL has a path")
        return cls(
            host=parts.hostname,
            port=parts.port or defaults[parts.scheme],
            tls=parts.scheme in ("mqtts", "wss"),
            websockets=websockets,
            path=parts.path or "/mqtt",
        )
