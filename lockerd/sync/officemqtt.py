"""The reference back office's MQTT side: the same store and answers as its HTTPS side.

It subscribes to every locker's pushes and pulls (``lockers/+/evt``,
``lockers/+/rpc/req``) and presence, answers each through
:meth:`ReferenceBackOffice.answer_push` / :meth:`~ReferenceBackOffice.answer_pull`
(the very code its HTTP handlers call), and pokes ``lockers/{id}/cmd`` when
it issues a command, with an MQTT 5 message expiry at the command's. A
locker's presence (``lockers/{id}/conn``) goes to the office's database,
ordered by the connection it belongs to (docs/sync-mqtt.md, "Presence"). It
reconnects on its own after a broker restart; a broker it cannot reach,
that refuses its subscriptions, or that drops it within 5 s of connecting is
tried again after 0.2 s, doubling up to 10 s, each failure said in one line
with its reason. Authentication is the
broker's (client certificates or passwords, and a topic ACL per locker).
"""

from __future__ import annotations

import asyncio
import logging
import math
import secrets
import ssl
import time
from collections.abc import Callable
from typing import Any, TypeGuard

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from lockerd.sync import topics
from lockerd.sync.aiopaho import LoopDriver
from lockerd.sync.backoffice import ReferenceBackOffice

log = logging.getLogger(__name__)

#: The wait after a failed connect, or a connection lost within HELD_S of being made,
#: doubling up to RETRY_MAX_S; back to RETRY_S once a connection held HELD_S.
RETRY_S, RETRY_MAX_S = 0.2, 10.0
HELD_S = 5.0
CONNECT_WITHIN_S = 10.0


class OfficeOnBroker:
    """Serves one :class:`ReferenceBackOffice` on a broker until stopped."""

    def __init__(
        self,
        office: ReferenceBackOffice,
        url: str,
        *,
        tls: ssl.SSLContext | None = None,
        version: str = "5",
        announce: Callable[[str], None] | None = None,
    ):
        self.office, self.broker, self.tls = office, topics.BrokerUrl.parse(url), tls
        self.url = url
        #: Where a failed connect is said, in one line (the log if None).
        self.announce = announce or log.warning
        #: Called each time it serves on the broker (after a connect and SUBACK).
        self.on_ready: Callable[[], None] = lambda: None
        self.v5 = version == "5"
        self.client_id = f"back-office-{office.db.instance}-{secrets.token_hex(2)}"
        self.ready = asyncio.Event()
        self._driver: LoopDriver | None = None
        self._task: asyncio.Task[None] | None = None
        self._notes: set[asyncio.Task[None]] = set()
        self._later: set[asyncio.TimerHandle] = set()
        office.on_issue.append(self.poke)

    async def start(self, wait: bool = True) -> None:
        """Connect (retrying until the broker answers) and subscribe; returns when serving
        (``wait``), or at once."""
        self._task = asyncio.ensure_future(self._serve())
        if wait:
            await self.ready.wait()

    async def stop(self) -> None:
        for later in self._later:
            later.cancel()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._driver is not None:
            await self._driver.close()
            self._driver = None
        self.ready.clear()

    async def _serve(self) -> None:
        delay = RETRY_S
        while True:
            lost = asyncio.get_running_loop().create_future()
            try:
                await self._connect(lost)
            except (OSError, ValueError, TimeoutError) as exc:
                reason = str(exc) or type(exc).__name__
                self.announce(
                    f"back office: cannot serve on the broker at {self.url}: {reason}"
                    f"; next try in {delay:g} s"
                )
                await asyncio.sleep(delay)
                delay = min(RETRY_MAX_S, delay * 2)
                continue
            since = time.monotonic()
            self.on_ready()
            await lost
            self.ready.clear()
            if time.monotonic() - since >= HELD_S:  # it served: back to the first wait
                delay = RETRY_S
                self.announce(f"back office: lost the broker at {self.url}; reconnecting")
                continue
            self.announce(
                f"back office: lost the broker at {self.url}"
                f" {time.monotonic() - since:.1f} s after connecting; next try in {delay:g} s"
            )
            await asyncio.sleep(delay)
            delay = min(RETRY_MAX_S, delay * 2)

    async def _connect(self, lost: asyncio.Future[None]) -> None:
        if self._driver is not None:
            await self._driver.close()
        subscribed = asyncio.get_running_loop().create_future()
        # retrieved even when stop() cancelled the wait before it failed
        subscribed.add_done_callback(lambda f: f.cancelled() or f.exception())
        self._driver = LoopDriver(self._client(lost, subscribed), asyncio.get_running_loop())
        await self._driver.connect(
            self.broker.host, self.broker.port, 60, within_s=CONNECT_WITHIN_S
        )
        async with asyncio.timeout(CONNECT_WITHIN_S):  # not wait_for: 3.11's can lose a cancel
            await asyncio.shield(subscribed)
        self.ready.set()

    def _client(self, lost: asyncio.Future[None], subscribed: asyncio.Future[None]) -> paho.Client:
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=paho.MQTTv5 if self.v5 else paho.MQTTv311,
            transport="websockets" if self.broker.websockets else "tcp",
            reconnect_on_failure=False,
        )
        if self.tls is not None:
            client.tls_set_context(self.tls)
        filters = [(f"lockers/+/{leaf}", 1) for leaf in topics.OFFICE_SUBSCRIBES]
        client.on_connect = lambda c, u, f, reason, p: (
            _refused(subscribed, reason) if reason.is_failure else c.subscribe(filters)
        )
        client.on_subscribe = lambda c, u, mid, reasons, p: _granted(subscribed, filters, reasons)
        client.on_disconnect = lambda *a: _gone(lost, subscribed)
        client.on_message = self._on_message
        return client

    # -- answering ------------------------------------------------------------------------

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        """Each message on its own: whatever one raises is logged in a line and the message
        acknowledged (paho sends the PUBACK once this returns), never raised into paho."""
        try:
            self._take(message)
        except Exception as exc:  # one bad message must not stop the rest
            log.warning("message on %s dropped: %s: %s", message.topic, type(exc).__name__, exc)

    def _take(self, message: paho.MQTTMessage) -> None:
        where = topics.split(message.topic)
        body = topics.decode(message.payload)
        if where is None or body is None:
            return
        locker, leaf = where
        if leaf == topics.CONN:
            self._presence(locker, body)
            return
        self._note(self.office.arrived())
        if self.office.faults.delay_s:  # answered late (or, for an hour, not in a test)
            later = asyncio.get_running_loop().call_later(
                self.office.faults.delay_s, self._handle_later, locker, leaf, message, body
            )
            self._later.add(later)
            return
        self._handle(locker, leaf, message, body)

    def _handle_later(
        self, locker: str, leaf: str, message: paho.MQTTMessage, body: dict[str, Any]
    ) -> None:
        try:
            self._handle(locker, leaf, message, body)
        except Exception as exc:  # as _on_message
            log.warning("message on %s dropped: %s: %s", message.topic, type(exc).__name__, exc)

    def _presence(self, locker: str, body: dict[str, Any]) -> None:
        """Kept in the office's database, ordered by the connection it belongs to."""
        online, since = body.get("online"), body.get("since")
        if not isinstance(online, bool) or not _is_time(since):
            log.warning("presence of %s ignored: %s is not {online, since}", locker, body)
            return
        self._note(self.office.heard_presence(locker, online, since))

    def _handle(
        self, locker: str, leaf: str, message: paho.MQTTMessage, body: dict[str, Any]
    ) -> None:
        faults = self.office.faults
        if faults.drop_next:  # as a closed connection over HTTPS: never answered
            faults.drop_next -= 1
            self._note(self.office.note("MQTT", message.topic, 599))
            return
        status, answer = self._answered(locker, leaf, message, body)
        if leaf == topics.EVT and status == 200 and faults.lose_answers:
            faults.lose_answers -= 1  # stored here; the locker never hears so
        else:
            self._answer(locker, leaf, message, body.get("req"), status, answer)
        self._note(self.office.note("MQTT", message.topic, status))

    def _answered(
        self, locker: str, leaf: str, message: paho.MQTTMessage, body: dict[str, Any]
    ) -> tuple[int, dict[str, Any]]:
        injected = self.office.injected_failure()
        if injected is not None:
            return injected[0], {"error": {"message": injected[1]}}
        if leaf == topics.EVT:
            return self.office.answer_push(locker, bytes(message.payload))
        if leaf == topics.RPC_REQ and isinstance(body.get("after", ""), str):
            return self.office.answer_pull(locker, body.get("after", ""))
        return 400, {"error": {"message": f"no request on {leaf} of that shape"}}

    def _answer(
        self, locker: str, leaf: str, request: paho.MQTTMessage, req: Any, status: int,
        answer: dict[str, Any],
    ) -> None:  # fmt: skip
        if "error" in answer:
            answer = {"error": {"status": status, **answer["error"]}}
        reply = topics.ACK if leaf == topics.EVT else topics.RPC_RES
        properties = None
        if self.v5:
            properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            correlation = getattr(request.properties, "CorrelationData", None)
            if correlation is not None:
                properties.CorrelationData = correlation
        payload = topics.encode({"req": req, **answer})
        self._publish(topics.topic(locker, reply), payload, properties)

    def poke(self, locker: str, command: dict[str, Any]) -> None:
        """Tell a connected locker that a command waits (it pulls by cursor)."""
        if self._driver is None or not self.ready.is_set():
            return  # it pulls after its next connect anyway
        properties = None
        if self.v5:
            properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            properties.MessageExpiryInterval = max(1, int(command["expires_at"] - time.time()))
        pending = {"pending": len(self.office.locker(locker).commands)}
        self._publish(topics.topic(locker, topics.CMD), topics.encode(pending), properties)

    def _publish(self, topic: str, payload: bytes, properties: Properties | None) -> None:
        if self._driver is not None:
            self._driver.client.publish(topic, payload, 1, properties=properties)

    def _note(self, coroutine: Any) -> None:
        task = asyncio.ensure_future(coroutine)
        self._notes.add(task)
        task.add_done_callback(self._notes.discard)


def _is_time(value: Any) -> TypeGuard[float]:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    return number and math.isfinite(value) and value >= 0


def _settle(future: asyncio.Future[None], value: None) -> None:
    if not future.done():
        future.set_result(value)


def _granted(subscribed: asyncio.Future[None], filters: list[Any], reasons: list[Any]) -> None:
    """Served once the broker granted every filter; a refused one fails the attempt."""
    for (topic, _), reason in zip(filters, reasons, strict=False):
        if reason.is_failure and not subscribed.done():
            subscribed.set_exception(
                ConnectionError(f"the broker refused the subscription to {topic}: {reason}")
            )
    _settle(subscribed, None)


def _refused(subscribed: asyncio.Future[None], reason: Any) -> None:
    if not subscribed.done():
        subscribed.set_exception(ConnectionError(f"the broker refused: {reason}"))


def _gone(lost: asyncio.Future[None], subscribed: asyncio.Future[None]) -> None:
    _settle(lost, None)
    if not subscribed.done():
        subscribed.set_exception(ConnectionError("the broker went away before SUBACK"))
