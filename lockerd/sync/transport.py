"""The transport the sync coordinator talks through, and the one the config chooses.

Both transports (HTTPS, lockerd/sync/client.py; MQTT, lockerd/sync/mqtt.py)
raise the errors of lockerd/sync/client.py with the same meanings, so the
coordinator's exactly-once rules live in one place whatever carries them.
paho-mqtt is imported only when ``sync.transport = "mqtt"``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from lockerd.config import Config
from lockerd.sync.client import BackOfficeClient, tls_context


class Transport(Protocol):
    """Carries sync v1's push and pull for one locker; one call at a time."""

    async def push(self, events: Sequence[Mapping[str, Any]], first_seq: int) -> int:
        """Send ``events`` (in sequence order) from ``first_seq``; the back office's acked_seq."""
        ...

    async def pull(self, cursor: str) -> tuple[list[Any], str]:
        """Commands after ``cursor``, and the cursor to ask from next time."""
        ...

    async def close(self) -> None: ...


def open_transport(
    config: Config,
    wake: Callable[[], None],
    reconnected: Callable[[], None] | None = None,
    ledger: Any = None,
) -> Transport:
    """The transport ``sync.transport`` names; ``wake`` starts a round (MQTT calls it when
    the back office says commands are waiting), ``reconnected`` starts one at once even
    while rounds back off (MQTT calls it after each connect; ``wake`` if not given);
    ``ledger`` keeps MQTT connect attempts across restarts (lockerd.sync.mqtt.ConnectLedger)."""
    sync = config.sync
    tls = tls_context(sync, config.resolve)
    if sync.transport == "mqtt":
        from lockerd.sync.mqtt import from_config  # paho only when MQTT is configured

        return from_config(config, tls, wake, reconnected, ledger)
    return BackOfficeClient(
        sync.url,
        config.locker.id,
        config.resolve(sync.token_file),
        timeout_s=sync.timeout_s,
        tls=tls,
    )
