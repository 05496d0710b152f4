"""Sync v1 over MQTT: ``push``/``pull``/``close`` as the HTTPS client has them, on a broker.

The locker holds one connection (client id = locker id, clean session: no
broker session is ever relied on). A push is published at QoS 1 on
``lockers/{id}/evt`` and counts only when the back office's answer arrives
on ``.../ack`` (never the broker's PUBACK); a pull is a request on
``.../rpc/req`` answered on ``.../rpc/res``. A poke on ``.../cmd`` carries
no command and is acknowledged to the broker at once; a pull's answer that
carries commands only at the next pull, which the coordinator makes once the
page is applied and its cursor saved. Reconnects are ours (lockerd/sync/redial.py),
and each one wakes the coordinator, which pulls by cursor. Errors are those
of lockerd/sync/client.py, with the same meanings. See docs/sync-mqtt.md.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from lockerd.config import Config
from lockerd.sync import topics
from lockerd.sync.aiopaho import LoopDriver
from lockerd.sync.client import (
    AuthRejected,
    ProtocolError,
    ServerError,
    SyncError,
    TooLarge,
    UnknownCursor,
    Unreachable,
    fitting,
    read_token,
)
from lockerd.sync.redial import Redial

log = logging.getLogger(__name__)

#: The largest PUBLISH the locker sends, every byte of it (fixed header, topic, packet id,
#: properties, payload): 96 KiB, within AWS's 128 KB whatever the locker id.
MAX_PACKET = 98304
#: What a push's payload has besides its body: ``"req":"<16 hex digits>",``.
REQ_FIELD = len('"req":"0123456789abcdef",')
#: Pacing within AWS's 100 publishes/s and 512 KiB/s per connection.
PUBLISHES_PER_S = 50
BYTES_PER_S = 400 * 1024
#: CONNACK reason codes (MQTT 5, and 3.1.1's 4 and 5) that mean "these credentials".
REFUSED = {4, 5, 0x86, 0x87, 0x8C}
PACKET_TOO_LARGE = 0x95


class ConnectLedger(Protocol):
    """Where connect attempts are kept across restarts (the locker's SQLite state)."""

    async def ages(self) -> list[float]:
        """Seconds since each of the latest attempts, this run's and earlier runs'."""
        ...

    async def note(self) -> None:
        """An attempt starts now."""
        ...


class MqttTransport:
    """One locker's sync transport over MQTT 3.1.1 or 5."""

    def __init__(
        self,
        url: str,
        locker_id: str,
        *,
        redial: Redial,
        token_file: Path | None = None,
        tls: ssl.SSLContext | None = None,
        keepalive_s: int = 120,
        version: str = "5",
        timeout_s: float = 20.0,
        wake: Callable[[], None] = lambda: None,
        reconnected: Callable[[], None] | None = None,
        ledger: ConnectLedger | None = None,
    ):
        self.broker = topics.BrokerUrl.parse(url)
        self.locker_id, self.token_file, self.tls = locker_id, token_file, tls
        self.keepalive_s, self.timeout_s, self.redial, self.wake = (
            keepalive_s, timeout_s, redial, wake
        )  # fmt: skip
        #: Called after each connect (``wake`` if None): the coordinator pulls at once.
        self.reconnected = reconnected
        #: Keeps attempt times across restarts, so the per-minute cap holds through them.
        self.ledger = ledger
        self._recalled = False
        self._refused = False
        self.v5 = version == "5"
        #: The largest PUBLISH to send: ours, or the broker's if its CONNACK says less.
        self.max_packet = MAX_PACKET
        #: The largest payload the broker has carried to an answer.
        self._largest_taken = 0
        #: The size of the last push a 3.1.1 broker dropped the connection on, if no push
        #: has been carried since (a size suspected too large).
        self._dropped_at: int | None = None
        self._connection_state()

    def _connection_state(self) -> None:
        """What the transport keeps of its connection: none yet."""
        #: Connect attempts made and those the broker took (for status and tests).
        self.attempts = self.connects = 0
        self.connected = asyncio.Event()
        self._driver: LoopDriver | None = None
        self._dialer: asyncio.Task[None] | None = None
        self._outcome: asyncio.Future[SyncError | None] | None = None
        self._lost: asyncio.Future[None] | None = None
        self._acks: dict[str, asyncio.Future[Any]] = {}
        self._step: asyncio.Future[Any] | None = None  # a CONNACK or SUBACK awaited
        self._unacked: list[int] = []
        self._free_at = 0.0
        self._next_at = 0.0
        self._since = 0.0  # the wall-clock start of the latest connection

    # -- the transport's calls ------------------------------------------------------

    async def push(self, events: Sequence[Mapping[str, Any]], first_seq: int) -> int:
        """Publish ``events`` with ``first_seq``; the back office's ``acked_seq``."""
        # As the coordinator keeps a body within sync.batch_bytes: the events that fit
        # our packet go; the rest go next (a broker's smaller cap is its 413: TooLarge).
        room = self._room(topics.EVT, MAX_PACKET) - REQ_FIELD
        body = {"first_seq": first_seq, "events": fitting(events, first_seq, room)}
        answer = await self._request(topics.EVT, body, pulling=False)
        acked = answer.get("acked_seq")
        if not isinstance(acked, int) or isinstance(acked, bool) or acked < 0:
            raise ProtocolError(f"acked_seq must be a whole number, got {acked!r}")
        return acked

    async def pull(self, cursor: str) -> tuple[list[Any], str]:
        """Commands after ``cursor``, and the cursor to ask from next time."""
        answer = await self._request(topics.RPC_REQ, {"after": cursor}, pulling=True)
        commands, new_cursor = answer.get("commands"), answer.get("cursor")
        if not isinstance(commands, list) or not isinstance(new_cursor, str):
            raise ProtocolError("a commands answer needs a commands list and a cursor string")
        return commands, new_cursor

    async def close(self) -> None:
        """Disconnect (no will) and stop redialling; a later call dials afresh."""
        if self._dialer is not None:
            self._dialer.cancel()
            await asyncio.gather(self._dialer, return_exceptions=True)
            self._dialer = self._outcome = None
        await self._drop()

    async def _request(self, leaf: str, body: dict[str, Any], pulling: bool) -> dict[str, Any]:
        if pulling:
            self._acknowledge_pages()
        await self._ready()
        req = secrets.token_hex(8)
        payload = topics.encode({"req": req, **body})
        properties = self._properties(leaf, req)
        size = publish_size(self._topic(leaf), len(payload), properties, self.v5)
        if size > self.max_packet:
            raise TooLarge(
                f"a {size}-byte publish on {leaf} is too large (at most {self.max_packet} bytes)"
            )
        await self._pace(len(payload))
        answer = await self._publish_and_wait(leaf, req, payload)
        raise_for_error(answer, body["after"] if pulling else None)
        return answer

    async def _publish_and_wait(self, leaf: str, req: str, payload: bytes) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Any] = loop.create_future()
        self._acks[req] = waiter
        try:
            self._publish(leaf, payload, req)
            async with asyncio.timeout(self.timeout_s):  # wait_for (3.11) can lose a cancel
                answer = dict(await waiter)
        except TimeoutError as exc:
            raise Unreachable(f"no answer to {leaf} within {self.timeout_s:g} s") from exc
        except Unreachable as exc:
            raise self._dropped_on(leaf, len(payload), exc) from exc
        finally:
            self._acks.pop(req, None)
        self._largest_taken = max(self._largest_taken, len(payload))
        if leaf == topics.EVT:
            self._dropped_at = None  # a push carried: the last drop was not about size
        return answer

    def _dropped_on(self, leaf: str, size: int, lost: Unreachable) -> SyncError:
        """A broker that caps packets drops an MQTT 3.1.1 client that publishes a larger
        one, with no reason given; so does a broker restart or a network fault, once. A
        drop is taken as "too large" (the coordinator halves the batch) only on evidence:
        two pushes in a row, each larger than any the broker has carried, dropped (after
        a drop the coordinator sends the same batch again, with any events new since)."""
        if self.v5 or leaf != topics.EVT or size <= self._largest_taken:
            return lost
        again, self._dropped_at = self._dropped_at is not None, size
        if not again:
            return lost
        self._dropped_at = None  # the halved batch is judged afresh
        return TooLarge(f"the broker dropped the connection on a {size}-byte push twice: too large")

    def _publish(self, leaf: str, payload: bytes, req: str) -> None:
        assert self._driver is not None
        properties = self._properties(leaf, req)
        topic = self._topic(leaf)
        info = self._driver.client.publish(topic, payload, topics.QOS, properties=properties)
        if info.rc != paho.MQTT_ERR_SUCCESS:
            raise Unreachable(f"publish on {leaf}: {paho.error_string(info.rc)}")

    def _properties(self, leaf: str, req: str) -> Properties | None:
        """MQTT 5: a request's response topic and correlation data; else none (3.1.1 has
        none, and the presence message needs none)."""
        if not self.v5 or not req:
            return None
        properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        properties.ResponseTopic = self._topic(topics.ACK if leaf == topics.EVT else topics.RPC_RES)
        properties.CorrelationData = req.encode()
        return properties

    def _room(self, leaf: str, packet: int) -> int:
        """The largest request payload on ``leaf`` whose PUBLISH is at most ``packet`` bytes."""
        topic, properties = self._topic(leaf), self._properties(leaf, "0" * 16)
        room = packet - publish_size(topic, 0, properties, self.v5)
        while room > 0 and publish_size(topic, room, properties, self.v5) > packet:
            room -= 1  # the remaining length took another byte
        return room

    @property
    def max_payload(self) -> int:
        """The largest push payload the connection takes (for status and tests)."""
        return self._room(topics.EVT, self.max_packet)

    async def _pace(self, size: int) -> None:
        now = asyncio.get_running_loop().time()
        start = max(now, self._free_at)
        self._free_at = start + max(1 / PUBLISHES_PER_S, size / BYTES_PER_S)
        if start > now:
            await asyncio.sleep(start - now)

    def _acknowledge_pages(self) -> None:
        """PUBACK the pull answers held: the coordinator pulls again only once it has
        applied their page and saved its cursor, or given up on it (a command that could
        not be applied): then it asks again from the cursor saved, and the page comes
        again by cursor (a clean session: the broker would not send it again anyway)."""
        unacked, self._unacked = self._unacked, []
        if self._driver is not None and self.connected.is_set():
            for mid in unacked:
                self._driver.client.ack(mid, 1)

    def _topic(self, leaf: str) -> str:
        return topics.topic(self.locker_id, leaf)

    # -- the connection ----------------------------------------------------------------

    async def _ready(self) -> None:
        """Connected; else wait for the next attempt's outcome and raise its error."""
        if self.connected.is_set():
            return
        if self._dialer is None:
            self._outcome = asyncio.get_running_loop().create_future()
            self._dialer = asyncio.ensure_future(self._dial_forever())
        assert self._outcome is not None
        loop = asyncio.get_running_loop()
        within = max(0.0, self._next_at - loop.time()) + 2 * self.timeout_s
        try:
            async with asyncio.timeout(within):  # wait_for (3.11) can lose a cancel
                outcome = await asyncio.shield(self._outcome)
        except TimeoutError as exc:
            raise Unreachable(f"no connect attempt ended within {within:.0f} s") from exc
        if outcome is not None:
            raise outcome
        if not self.connected.is_set():
            raise Unreachable("the connection was lost again at once")

    async def _dial_forever(self) -> None:
        loop = asyncio.get_running_loop()
        await self._recall()
        while True:
            now = loop.time()
            self._next_at = self.redial.next_attempt(now)
            if self._next_at == self.redial.allowed_from() > now:
                log.warning(
                    "sync: the next MQTT connect waits %.0f s: %d connects in the last minute"
                    " (at most that many)", self._next_at - now, self.redial.per_minute,
                )  # fmt: skip
            await asyncio.sleep(max(0.0, self._next_at - loop.time()))
            await self._note()
            started = loop.time()
            outcome = await self._attempt()
            self.redial.attempted(started, ok=outcome is None, refused=self._refused)
            self._settle(outcome)
            if isinstance(outcome, AuthRejected):
                self._dialer = None  # no hammering: the next request dials, after the
                return  # coordinator's long wait for refused credentials
            if outcome is None:
                (self.reconnected or self.wake)()  # the coordinator pulls by cursor now
                assert self._lost is not None
                await self._lost
                self.redial.lost()

    async def _recall(self) -> None:
        """Count the attempts of earlier runs (a crash loop) toward the cap, once."""
        if self.ledger is None or self._recalled:
            return
        self._recalled = True
        try:
            ages = await self.ledger.ages()
        except Exception:  # the cap then holds within this run only
            log.exception("sync: cannot read the recent MQTT connects")
            return
        now = asyncio.get_running_loop().time()
        self.redial.recall([now - age for age in ages])

    async def _note(self) -> None:
        if self.ledger is None:
            return
        try:
            await self.ledger.note()
        except Exception:
            log.exception("sync: cannot record an MQTT connect attempt")

    def _settle(self, outcome: SyncError | None) -> None:
        done, self._outcome = self._outcome, asyncio.get_running_loop().create_future()
        if done is not None and not done.done():
            done.set_result(outcome)

    async def _attempt(self) -> SyncError | None:
        self.attempts += 1
        self._refused = False  # nothing listening: the redial policy treats it apart
        try:
            async with asyncio.timeout(self.timeout_s):  # wait_for (3.11) can lose a cancel
                await self._connect()
        except SyncError as exc:
            await self._drop()
            return exc
        except Exception as exc:  # any fault is one failed attempt, never the end of sync
            self._refused = isinstance(exc, ConnectionRefusedError)
            await self._drop()
            return Unreachable(f"connect to {self.broker.host}: {type(exc).__name__}: {exc}")
        self.connects += 1
        return None

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        await self._drop()
        # Orders this connection's presence (its online, its will) after the last one's.
        self._since = max(round(time.time(), 3), self._since + 0.001)
        self._driver = LoopDriver(self._client(), loop)
        self._lost = loop.create_future()
        self._step = loop.create_future()
        await self._driver.connect(
            self.broker.host, self.broker.port, self.keepalive_s, within_s=self.timeout_s
        )
        await self._step
        self._step = loop.create_future()
        leaves = [(self._topic(leaf), 1) for leaf in topics.DEVICE_SUBSCRIBES]
        self._driver.client.subscribe(leaves)
        await self._step
        self.connected.set()
        self._publish(topics.CONN, self._presence(online=True), "")

    def _client(self) -> paho.Client:
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.locker_id,
            clean_session=None if self.v5 else True,
            protocol=paho.MQTTv5 if self.v5 else paho.MQTTv311,
            transport="websockets" if self.broker.websockets else "tcp",
            reconnect_on_failure=False,
            manual_ack=True,
        )
        if self.broker.websockets:
            client.ws_set_options(path=self.broker.path)
        if self.tls is not None:
            client.tls_set_context(self.tls)
        if self.token_file is not None:
            client.username_pw_set(self.locker_id, read_token(self.token_file))
        client.will_set(self._topic(topics.CONN), self._presence(online=False), 1, False)
        client.on_connect = self._scoped(client, self._on_connack)
        client.on_subscribe = self._scoped(client, self._on_suback)
        client.on_message = self._scoped(client, self._on_message)
        client.on_disconnect = self._scoped(client, self._on_disconnect)
        return client

    def _scoped(self, client: paho.Client, callback: Callable[..., None]) -> Callable[..., None]:
        """``callback``, for as long as ``client`` is the live one: a client given up (a
        connect that timed out) never touches the connection that replaced it."""

        def call(*args: Any) -> None:
            if self._driver is not None and self._driver.client is client:
                callback(*args)

        return call

    def _presence(self, online: bool) -> bytes:
        return topics.encode({"online": online, "since": self._since})

    async def _drop(self) -> None:
        self.connected.clear()
        if self._driver is not None:
            driver = self._driver
            await driver.close()  # its on_disconnect still counts: it is the live client
            if self._driver is driver:
                self._driver = None

    # -- paho's callbacks (on the loop) ------------------------------------------------

    def _on_connack(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            refused = reason.value in REFUSED
            error = (AuthRejected if refused else Unreachable)(f"the broker refused: {reason}")
            self._fail_step(error)
            return
        limit = getattr(props, "MaximumPacketSize", None)
        self.max_packet = min(MAX_PACKET, limit) if limit else MAX_PACKET
        self._pass_step()

    def _on_suback(self, client: Any, userdata: Any, mid: int, reasons: Any, props: Any) -> None:
        if any(r.is_failure for r in reasons):
            self._fail_step(AuthRejected(f"the broker refused the subscriptions: {reasons}"))
        else:
            self._pass_step()

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any, p: Any) -> None:
        self.connected.clear()
        self._unacked.clear()  # a new connection has new packet ids
        error: SyncError = Unreachable(f"the broker connection was lost: {reason}")
        if getattr(reason, "value", None) == PACKET_TOO_LARGE:
            error = TooLarge("the broker closed the connection: packet too large")
        self._fail_step(error)
        for waiter in self._acks.values():
            if not waiter.done():
                waiter.set_exception(error)
        if self._lost is not None and not self._lost.done():
            self._lost.set_result(None)

    def _on_message(self, client: Any, userdata: Any, message: paho.MQTTMessage) -> None:
        """Take one message; one that cannot be taken, whatever its bytes, is refused with a
        log line and acknowledged, and changes nothing (paho would otherwise raise through
        the loop's reader, again and again)."""
        try:
            self._take(client, message)
        except Exception as exc:
            reason = str(exc) if isinstance(exc, topics.Unreadable) else repr(exc)
            log.warning("sync: refused a message on %s: %s", _topic_of(message), reason)
            client.ack(message.mid, message.qos)

    def _take(self, client: Any, message: paho.MQTTMessage) -> None:
        leaf = message.topic.removeprefix(self._topic(""))
        body = topics.read(message.payload)
        if leaf == topics.CMD:  # a poke carries no command: nothing to keep it for
            client.ack(message.mid, message.qos)
            self.wake()
            return
        req = body.get("req")
        waiter = self._acks.get(req) if isinstance(req, str) else None
        if waiter is None or waiter.done() or leaf not in (topics.ACK, topics.RPC_RES):
            client.ack(message.mid, message.qos)  # an answer to nothing waiting: stale
            return
        commands = body.get("commands")
        if leaf == topics.RPC_RES and isinstance(commands, list) and commands:
            self._unacked.append(message.mid)  # PUBACK once its page is saved
        else:
            client.ack(message.mid, message.qos)
        waiter.set_result(body)

    def _pass_step(self) -> None:
        if self._step is not None and not self._step.done():
            self._step.set_result(None)

    def _fail_step(self, error: SyncError) -> None:
        if self._step is not None and not self._step.done():
            self._step.set_exception(error)


def publish_size(topic: str, payload: int, properties: Properties | None, v5: bool) -> int:
    """Bytes of the QoS 1 PUBLISH paho puts on the wire for a ``payload``-byte payload, laid
    out as its ``Client._send_publish`` does: the fixed header byte, the remaining length
    (1 to 4 bytes), the topic (2 + its bytes), the packet id (2), under MQTT 5 the
    properties (paho's own packing: their length, then each), and the payload."""
    packed = b""
    if v5:
        packed = properties.pack() if properties is not None else b"\0"  # type: ignore[no-untyped-call]
    remaining = 2 + len(topic.encode()) + 2 + len(packed) + payload
    return 1 + next(n for n in (1, 2, 3, 4) if remaining < 128**n) + remaining


def _topic_of(message: paho.MQTTMessage) -> str:
    try:
        return message.topic
    except UnicodeDecodeError:  # paho decodes the topic as UTF-8 on each read
        return repr(bytes(message._topic))


def raise_for_error(answer: dict[str, Any], cursor: str | None) -> None:
    """Raise what an ``error`` answer means, as the HTTPS client does for its statuses
    (``cursor``: the one a pull asked after; None for a push)."""
    error = answer.get("error")
    if error is None:
        return
    status = error.get("status") if isinstance(error, dict) else None
    message = f"the back office answered {status}: {error}"
    if status in (401, 403):
        raise AuthRejected(message)
    if isinstance(status, int) and status >= 500:
        raise ServerError(message)
    if status == 413:
        raise TooLarge(message)
    if status == 410 and cursor is not None:
        raise UnknownCursor(f"the back office does not know cursor {cursor!r}: {error}")
    raise ProtocolError(message)


def from_config(
    config: Config,
    tls: ssl.SSLContext | None,
    wake: Callable[[], None],
    reconnected: Callable[[], None] | None = None,
    ledger: ConnectLedger | None = None,
) -> MqttTransport:
    """The transport the ``[sync]`` section describes."""
    sync = config.sync
    if tls is not None and sync.mqtt_alpn:
        tls.set_alpn_protocols([sync.mqtt_alpn])
    return MqttTransport(
        sync.url,
        config.locker.id,
        redial=Redial(sync.mqtt_first_retry_s, sync.backoff_base_s, sync.backoff_max_s),
        token_file=config.resolve(sync.token_file) if sync.token_file else None,
        tls=tls,
        keepalive_s=sync.mqtt_keepalive_s,
        version=sync.mqtt_version,
        timeout_s=sync.timeout_s,
        wake=wake,
        reconnected=reconnected,
        ledger=ledger,
    )
