"""The broker-side examples in config/broker/: who may publish and subscribe where.

mosquitto.conf and mosquitto.acl run as shipped (their paths and port replaced) on a real
mosquitto with mutual TLS: each client's certificate CN is its user name. The EMQX and
AWS IoT files cannot run here; they are parsed, and must name exactly the topics of
lockerd/sync/topics.py, in the right direction.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from lockerd.sync import topics
from tests.broker import Mosquitto, needs_mosquitto
from tests.mqtt_rig import synced_over_mqtt, tls_as
from tests.pki import Pki
from tests.sync_rig import LOCKER

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "config" / "broker"
OFFICE = "back-office"
L1, L2 = "site-0101", "site-0102"
#: What each side may publish and read, by topic leaf (lockerd/sync/topics.py).
LOCKER_PUBLISHES = {topics.EVT, topics.RPC_REQ, topics.CONN}
LOCKER_READS = set(topics.DEVICE_SUBSCRIBES)


class ShippedBroker(Mosquitto):
    """mosquitto running config/broker/mosquitto.conf and mosquitto.acl: only the port,
    the files, persistence and logging are the test's."""

    def _config(self) -> Path:
        assert self.tls is not None
        cert, key = self.tls.issue("localhost")
        acl = self.folder / "lockers.acl"
        acl.write_text((SHIPPED / "mosquitto.acl").read_text())
        acl.chmod(0o644)
        ours = {
            "listener": f"{self.port} 127.0.0.1",
            "acl_file": str(acl),
            "cafile": str(self.tls.ca_file),
            "certfile": str(cert),
            "keyfile": str(key),
        }
        lines = []
        for line in (SHIPPED / "mosquitto.conf").read_text().splitlines():
            word = line.split(" ", 1)[0]
            lines.append(f"{word} {ours[word]}" if word in ours else line)
        lines += ["log_dest stderr", "log_type all", "connection_messages true", "user root"]
        path = self.folder / "mosquitto.conf"
        path.write_text("\n".join(lines) + "\n")
        return path


@pytest.fixture
async def acl_broker(tmp_path):
    pki = Pki(tmp_path)
    broker = await ShippedBroker(tmp_path / "broker", tls=pki).start()
    yield broker, pki
    await broker.stop()


class Probe:
    """A raw MQTT 5 client with a certificate, its acknowledgements as futures."""

    def __init__(self, broker: Mosquitto, pki: Pki, name: str, client_id: str = ""):
        self.loop = asyncio.get_running_loop()
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"{name}-probe",
            protocol=paho.MQTTv5,
        )
        self.client.tls_set_context(tls_as(pki, name))
        self.gone: asyncio.Future[Any] = self.loop.create_future()
        self.client.on_disconnect = lambda c, u, f, reason, p: self._done(self.gone, reason)
        self.port = broker.port
        self.acks: dict[int, asyncio.Future[Any]] = {}
        self.client.on_publish = lambda c, u, mid, reason, p: self._settle(mid, reason)
        self.client.on_subscribe = lambda c, u, mid, reasons, p: self._settle(mid, reasons)
        self.connected: asyncio.Future[Any] = self.loop.create_future()
        self.client.on_connect = lambda c, u, f, reason, p: self._done(self.connected, reason)
        #: The topics of the messages received, in order.
        self.received: list[str] = []
        self._changed = asyncio.Condition()
        self._notes: set[asyncio.Future[None]] = set()
        self.client.on_message = lambda c, u, m: self.loop.call_soon_threadsafe(self._got, m.topic)

    async def __aenter__(self) -> Probe:
        self.client.connect("localhost", self.port)
        self.client.loop_start()
        reason = await asyncio.wait_for(self.connected, 10)
        assert not reason.is_failure, reason
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _settle(self, mid: int, value: Any) -> None:
        self.loop.call_soon_threadsafe(self._arrived, mid, value)

    def _arrived(self, mid: int, value: Any) -> None:
        self.acks.setdefault(mid, self.loop.create_future())
        if not self.acks[mid].done():
            self.acks[mid].set_result(value)

    def _got(self, topic: str) -> None:
        self.received.append(topic)
        self._notes.add(asyncio.ensure_future(self._notify()))

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def until_received(self, topic: str) -> None:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: topic in self.received), 10)

    def _done(self, future: asyncio.Future[Any], value: Any) -> None:
        self.loop.call_soon_threadsafe(lambda: future.done() or future.set_result(value))

    async def _acked(self, mid: int) -> Any:
        self.acks.setdefault(mid, self.loop.create_future())
        return await asyncio.wait_for(self.acks[mid], 10)

    async def publish(self, topic: str, body: dict[str, Any]) -> Any:
        """The broker's PUBACK reason code."""
        info = self.client.publish(topic, topics.encode(body), 1)
        return await self._acked(info.mid)

    async def subscribe(self, topic: str) -> Any:
        """The broker's SUBACK reason code."""
        _, mid = self.client.subscribe(topic, 1)
        return (await self._acked(mid))[0]


FORGED_PAGE = {
    "req": "0123456789abcdef",
    "commands": [
        {
            "id": "forged-1",
            "type": "courier.upsert",
            "data": {"id": "thief", "code": "1111", "rights": ["collect"]},
            "expires_at": 4102444800,
        }
    ],
    "cursor": "x",
}


@needs_mosquitto
@pytest.mark.parametrize(
    ("leaf", "body"),
    [
        (topics.RPC_RES, FORGED_PAGE),  # an answer to L2's pull, with an unsigned command
        (topics.CMD, {"pending": 1}),  # a poke
        (topics.ACK, {"req": "0123456789abcdef", "acked_seq": 10**6}),
        (topics.EVT, {"req": "0123456789abcdef", "first_seq": 1, "events": []}),
        (topics.RPC_REQ, {"req": "0123456789abcdef", "after": ""}),
        (topics.CONN, {"online": False, "since": 1.0}),
    ],
)
async def test_a_locker_cannot_publish_on_another_lockers_topics(acl_broker, leaf, body) -> None:
    broker, pki = acl_broker
    async with Probe(broker, pki, L1) as thief:
        reason = await thief.publish(topics.topic(L2, leaf), body)
    assert reason.is_failure and reason.getName() == "Not authorized", reason
    await broker.wait_for(f"Denied PUBLISH from {L1} (")  # its client id is its CN
    assert broker.seen(f"'lockers/{L2}/{leaf}'") == 1  # only in the denial line


@needs_mosquitto
@pytest.mark.parametrize("leaf", [topics.ACK, topics.RPC_RES, topics.CMD])
async def test_a_locker_cannot_answer_or_command_itself_either(acl_broker, leaf) -> None:
    """The back office's direction is the back office's, even on a locker's own topics."""
    broker, pki = acl_broker
    async with Probe(broker, pki, L1) as locker:
        reason = await locker.publish(topics.topic(L1, leaf), {"pending": 1})
    assert reason.is_failure and reason.getName() == "Not authorized", reason


@needs_mosquitto
@pytest.mark.parametrize(
    "filter_",
    [
        *(topics.topic(L2, leaf) for leaf in sorted(LOCKER_READS | LOCKER_PUBLISHES)),
        "lockers/+/cmd",
        "lockers/+/evt",
        f"lockers/{L2}/#",
        "lockers/#",
        "#",
    ],
)
async def test_a_locker_cannot_read_another_lockers_topics(acl_broker, filter_) -> None:
    """mosquitto grants the SUBSCRIBE and delivers nothing its ACL does not let it read:
    L1 gets none of L2's messages, and then gets one of its own (the broker's one thread
    routes in order, so anything of L2's for L1 would have come first)."""
    broker, pki = acl_broker
    async with (
        Probe(broker, pki, L1) as thief,
        Probe(broker, pki, L2) as other,
        Probe(broker, pki, OFFICE) as office,
    ):
        await thief.subscribe(filter_)
        assert not (await thief.subscribe(topics.topic(L1, topics.CMD))).is_failure
        assert not (await other.subscribe(topics.topic(L2, topics.CMD))).is_failure
        for leaf in sorted(LOCKER_PUBLISHES):
            assert not (await other.publish(topics.topic(L2, leaf), {"n": 1})).is_failure
        for leaf in sorted(LOCKER_READS):
            assert not (await office.publish(topics.topic(L2, leaf), FORGED_PAGE)).is_failure
        await other.until_received(topics.topic(L2, topics.CMD))  # L2 does get its own
        await office.publish(topics.topic(L1, topics.CMD), {"pending": 0})
        await thief.until_received(topics.topic(L1, topics.CMD))
    assert [t for t in thief.received if L2 in t] == []


@needs_mosquitto
async def test_a_locker_cannot_take_over_another_lockers_client_id(acl_broker) -> None:
    """L1's certificate saying client id L2 gets a session under L1: L2 stays connected
    and its will (offline) is never published."""
    broker, pki = acl_broker
    async with Probe(broker, pki, OFFICE) as office:
        await office.subscribe("lockers/+/conn")
        victim = Probe(broker, pki, L2, client_id=L2)
        will = topics.encode({"online": False, "since": 1.0})
        victim.client.will_set(topics.topic(L2, topics.CONN), will, 1)
        async with victim, Probe(broker, pki, L1, client_id=L2) as thief:
            await broker.wait_for(f"as {L1} (")
            # the broker routes in order: a will of L2's would arrive before this
            assert not (await thief.publish(topics.topic(L1, topics.CONN), {})).is_failure
            await office.until_received(topics.topic(L1, topics.CONN))
            assert not victim.gone.done()
            assert not (await victim.publish(topics.topic(L2, topics.CONN), {})).is_failure
            await office.until_received(topics.topic(L2, topics.CONN))
    assert office.received == [topics.topic(L1, topics.CONN), topics.topic(L2, topics.CONN)]
    assert broker.seen(f"Client {L2} already connected") == 0


@needs_mosquitto
async def test_each_side_may_do_what_sync_needs_and_no_more(acl_broker) -> None:
    broker, pki = acl_broker
    async with Probe(broker, pki, L1) as locker, Probe(broker, pki, OFFICE) as office:
        for leaf in sorted(LOCKER_READS):
            assert not (await locker.subscribe(topics.topic(L1, leaf))).is_failure, leaf
        for leaf in sorted(LOCKER_PUBLISHES):
            assert not (await locker.publish(topics.topic(L1, leaf), {})).is_failure, leaf
        for leaf in topics.OFFICE_SUBSCRIBES:
            assert not (await office.subscribe(f"lockers/+/{leaf}")).is_failure, leaf
            assert (await office.publish(topics.topic(L1, leaf), {})).is_failure, leaf
        for leaf in sorted(LOCKER_READS):
            assert not (await office.publish(topics.topic(L1, leaf), {})).is_failure, leaf


@needs_mosquitto
@pytest.mark.parametrize("version", ["5", "3.1.1"])
async def test_the_whole_sync_runs_through_the_shipped_acl(tmp_path, version) -> None:
    """Pushes and their acks, pulls and their pages, pokes and presence all pass."""
    broker = ShippedBroker(tmp_path / "broker", tls=Pki(tmp_path))
    async with synced_over_mqtt(tmp_path, version, mosquitto=broker) as s:
        await s.rig.stored("PCL1", "S")
        await s.drain()
        await s.rig.jump(60)  # past the power group's gap after that door's pulse
        s.issue("courier.upsert", {"id": "c9", "code": "9999", "rights": ["deliver"]})
        s.issue("compartment.open", {"compartment": "M1", "reason": "parcel stuck"})
        await s.drain()
        await s.drain()  # the commands' outcomes reach the back office
        s.assert_every_event_arrived_once_in_order()
        applied = [e["data"]["type"] for e in s.journal() if e["type"] == "command.applied"]
        assert applied == ["courier.upsert", "compartment.open"]
        assert s.rig.unlocks_of("M1") == 1
        # its "online" went out before its pushes, on the same connection: it is in
        await s.office.wait_for(lambda: (s.office.db.presence(LOCKER) or {}).get("online"))
    assert broker.seen("Denied") == 0


# -- the examples for brokers that cannot run here ------------------------------------------

OFFICE_READS = set(topics.OFFICE_SUBSCRIBES)


def _leaves(topic_list: list[str], who: str) -> set[str]:
    """The leaves of ``lockers/<who>/<leaf>`` topics; anything else fails the test."""
    leaves = set()
    for name in topic_list:
        assert name.startswith(f"lockers/{who}/"), (name, who)
        leaves.add(name.removeprefix(f"lockers/{who}/"))
    return leaves


def emqx_rules() -> list[tuple[str, str, str, list[str]]]:
    """(permission, who, action, topics) of each rule of emqx-acl.conf, an Erlang term
    file: every line that is not a comment must be one whole rule."""
    rule = re.compile(
        r'^\{(allow|deny), (all|\{username, (?:"[\w-]+"|\{re, "[^"]+"\})\})'
        r'(?:, (publish|subscribe|all), \[((?:"[^"]+"(?:, )?)+)\])?\}\.$'
    )
    rules = []
    for line in (SHIPPED / "emqx-acl.conf").read_text().splitlines():
        if not line or line.startswith("%%"):
            continue
        found = rule.match(line)
        assert found, f"not a rule emqx reads: {line}"
        permission, who, action, names = found.groups()
        rules.append((permission, who, action or "all", re.findall(r'"([^"]+)"', names or "")))
    return rules


def test_the_emqx_acl_names_exactly_the_topics_of_the_code() -> None:
    rules = emqx_rules()
    office = '{username, "back-office"}'
    allowed = {(who, action): topics_ for perm, who, action, topics_ in rules if perm == "allow"}
    assert _leaves(allowed[(office, "subscribe")], "+") == OFFICE_READS
    assert _leaves(allowed[(office, "publish")], "+") == LOCKER_READS
    assert _leaves(allowed[("all", "publish")], "${username}") == LOCKER_PUBLISHES
    assert _leaves(allowed[("all", "subscribe")], "${username}") == LOCKER_READS
    assert len(allowed) == 4
    assert rules[-1] == ("deny", "all", "all", [])  # and nothing else


def test_the_emqx_acl_gives_nothing_to_a_user_name_that_widens_its_topics() -> None:
    """``${username}`` is pasted into topics: "+", "#" or "/" in a (password) user name
    would reach every locker's, so such names are denied before any locker's rule."""
    rules = emqx_rules()
    first_locker_rule = next(i for i, rule in enumerate(rules) if rule[1] == "all")
    guards = [
        re.fullmatch(r'\{username, \{re, "(.+)"\}\}', who).group(1)  # type: ignore[union-attr]
        for perm, who, action, names in rules[:first_locker_rule]
        if perm == "deny" and who.startswith("{username, {re,") and action == "all"
        and names == ["#"]
    ]  # fmt: skip
    assert len(guards) == 1
    for name in ["+", "#", "a/b", "site+", "+/#", "site-0101/#"]:
        assert re.search(guards[0], name), name
    for name in [L1, L2, "site_9"]:
        assert not re.search(guards[0], name), name
    text = (SHIPPED / "emqx-authorization.conf").read_text()
    assert re.search(r"^\s*peer_cert_as_clientid = cn$", text, re.M)
    assert re.search(r"^\s*peer_cert_as_username = cn$", text, re.M)


def test_the_emqx_authorization_block_is_hocon_that_reads_the_acl() -> None:
    """HOCON as far as it can be checked here: balanced braces and brackets, deny when no
    rule matches, and the file source named."""
    text = (SHIPPED / "emqx-authorization.conf").read_text()
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    for opening, closing in ("{}", "[]"):
        depth = 0
        for char in body:
            depth += (char == opening) - (char == closing)
            assert depth >= 0
        assert depth == 0, opening
    assert re.search(r"^\s*no_match = deny$", body, re.M)
    assert re.search(r"^\s*type = file$", body, re.M)
    assert re.search(r'^\s*path = "etc/lockers-acl.conf"$', body, re.M)


def aws_allowed(name: str) -> dict[str, list[str]]:
    policy = json.loads((SHIPPED / name).read_text())
    assert policy["Version"] == "2012-10-17"
    allowed: dict[str, list[str]] = {}
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"
        resources = statement["Resource"]
        resources = [resources] if isinstance(resources, str) else resources
        for resource in resources:
            assert resource.startswith("arn:aws:iot:"), resource
            kind, _, path = resource.split(":", 5)[-1].partition("/")
            allowed.setdefault(f"{statement['Action']} {kind}", []).append(path)
    return allowed


def test_the_aws_iot_policies_name_exactly_the_topics_of_the_code() -> None:
    thing = "${iot:Connection.Thing.ThingName}"
    locker = aws_allowed("aws-iot-locker-policy.json")
    assert locker["iot:Connect client"] == [thing]  # client id = thing name = locker id
    assert _leaves(locker["iot:Publish topic"], thing) == LOCKER_PUBLISHES
    assert _leaves(locker["iot:Subscribe topicfilter"], thing) == LOCKER_READS
    assert _leaves(locker["iot:Receive topic"], thing) == LOCKER_READS
    assert len(locker) == 4
    office = aws_allowed("aws-iot-back-office-policy.json")
    assert office["iot:Connect client"] == ["back-office-*"]
    assert _leaves(office["iot:Subscribe topicfilter"], "+") == OFFICE_READS
    assert _leaves(office["iot:Receive topic"], "*") == OFFICE_READS
    assert _leaves(office["iot:Publish topic"], "*") == LOCKER_READS
    assert len(office) == 4


def test_the_mosquitto_acl_names_exactly_the_topics_of_the_code() -> None:
    lines = [
        line.split(" ", 1)
        for line in (SHIPPED / "mosquitto.acl").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    office = [rest for word, rest in lines[1:7] if word == "topic"]
    assert lines[0] == ["user", OFFICE] and len(office) == 6
    grants = {(word, *rest.split(" ")) for word, rest in lines if word in ("topic", "pattern")}
    assert {(w, how, name) for w, how, name in grants if w == "pattern"} == {
        *(("pattern", "write", f"lockers/%u/{leaf}") for leaf in LOCKER_PUBLISHES),
        *(("pattern", "read", f"lockers/%u/{leaf}") for leaf in LOCKER_READS),
    }
    assert {(w, how, name) for w, how, name in grants if w == "topic"} == {
        *(("topic", "read", f"lockers/+/{leaf}") for leaf in OFFICE_READS),
        *(("topic", "write", f"lockers/+/{leaf}") for leaf in LOCKER_READS),
    }
    assert len(lines) == 13
