"""Fuzz: the commands a back office sends, and its answers, as the locker receives them.

A command that is not what docs/sync-protocol.md says (any JSON value, or a
valid command with a field dropped, added or replaced) is refused with a
reason and changes nothing but what the protocol says a refusal writes: one
inbox row and one ``command.rejected`` event, or nothing at all when it has
no usable id. A valid command applies (or is refused with its reason) once;
sent again it changes nothing. A back office's answer that is not sync v1
is a :class:`~lockerd.sync.client.ProtocolError`, never anything else.
"""

from __future__ import annotations

import base64
import dataclasses
import itertools
import json
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from aiohttp import web
from hypothesis import strategies as st
from paho.mqtt.enums import CallbackAPIVersion

from lockerd.sync import commands
from lockerd.sync.client import BackOfficeClient, SyncError
from lockerd.sync.coordinator import SyncCoordinator
from lockerd.sync.mqtt import MqttTransport
from lockerd.sync.topics import ACK, CMD, EVT, RPC_REQ, RPC_RES, encode, topic
from tests.broker import Mosquitto, needs_mosquitto
from tests.fuzzing import Renewed, changes, dump, groups, journal_types, own_loop, run
from tests.mqtt_rig import quick_redial
from tests.rig import Rig, bank_config
from tests.sync_rig import LOCKER, OFFICE_KEY, TOKEN, sync_section

NOW = 1_800_000_000  # the rig's fake clock starts here
COMPARTMENTS = ["S1", "S2", "M1", "M2", "L1"]

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**80), 2**80),
    st.floats(),
    st.text(max_size=20),
    st.sampled_from(["JJD0001", "EXP0001", "S1", "M1", "deliver", "collect", "c1", "4321"]),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=5,
)
barcodes = st.one_of(
    st.sampled_from(["EXP0001", "JJD0001", "JJD0002"]),
    st.from_regex(r"[A-Z0-9]{4,12}", fullmatch=True),
)
courier_ids = st.sampled_from(["c1", "c2", "c3", "c9"])
DATA = {
    "parcel.expect": st.fixed_dictionaries(
        {"barcode": barcodes},
        optional={
            "size": st.sampled_from(["S", "M", "L", "XL"]),
            "recipient": st.sampled_from(["flat-1", "flat-2"]),
            "hold_hours": st.integers(1, 2160),
        },
    ),
    "parcel.cancel": st.fixed_dictionaries({"barcode": barcodes}),
    "parcel.extend": st.fixed_dictionaries(
        {"barcode": barcodes, "pickup_by": st.integers(NOW - 10**6, NOW + 10**6)}
    ),
    "courier.upsert": st.fixed_dictionaries(
        {
            "id": courier_ids,
            "code": st.from_regex(r"[0-9]{4,8}", fullmatch=True),
            "rights": st.lists(st.sampled_from(["deliver", "collect"]), min_size=1, max_size=2),
        },
        optional={"name": st.just("Courier")},
    ),
    "courier.revoke": st.fixed_dictionaries({"id": courier_ids}),
    "compartment.disable": st.fixed_dictionaries(
        {"compartment": st.sampled_from(COMPARTMENTS)}, optional={"reason": st.just("wet")}
    ),
    "compartment.enable": st.fixed_dictionaries({"compartment": st.sampled_from(COMPARTMENTS)}),
    "compartment.open": st.fixed_dictionaries(
        {"compartment": st.sampled_from(COMPARTMENTS)}, optional={"reason": st.just("stuck")}
    ),
}


class Office:
    """Numbers and signs commands as the back office would."""

    def __init__(self) -> None:
        self.ids = itertools.count(1)
        self.open_seqs = itertools.count(1)

    def command(self, kind: str, data: dict[str, Any]) -> dict[str, Any]:
        command = {"id": f"fz-{next(self.ids)}", "type": kind, "expires_at": NOW + 3600}
        command["data"] = dict(data)
        if kind == "compartment.open":
            command["data"]["open_seq"] = next(self.open_seqs)
            checked = commands.Command(command["id"], kind, NOW + 3600, command["data"])
            signature = OFFICE_KEY.sign(commands.open_message(LOCKER, checked))
            command["signature"] = base64.b64encode(signature).decode()
        return command


valid = st.sampled_from(sorted(DATA)).flatmap(lambda kind: st.tuples(st.just(kind), DATA[kind]))
FIELDS = ["id", "type", "expires_at", "data", "signature", "extra"]
mutations = st.lists(
    st.tuples(
        st.sampled_from(["drop", "set", "data-drop", "data-set"]),
        st.sampled_from(FIELDS) | st.text(max_size=8),
        json_values,
    ),
    min_size=1,
    max_size=3,
)


def mutated(command: dict[str, Any], edits: list[tuple[str, str, Any]]) -> dict[str, Any]:
    command = json.loads(json.dumps(command))
    for kind, field, value in edits:
        target = command if not kind.startswith("data") else command.get("data")
        if not isinstance(target, dict):
            continue
        if kind.endswith("drop"):
            target.pop(field if not kind.startswith("data") else _data_key(target, field), None)
        else:
            target[field if not kind.startswith("data") else _data_key(target, field)] = value
    return command


def _data_key(data: dict[str, Any], field: str) -> str:
    """One of the data's own keys, or ``field`` (a new one) when it has none or by chance."""
    keys = sorted(data)
    return keys[len(field) % len(keys)] if keys and len(field) % 3 else field


class SyncedLocker:
    """The test rig with a sync coordinator whose commands are handed to it directly."""

    def __init__(self, loop: Any, rig: Rig, sync: SyncCoordinator):
        self.loop, self.rig, self.sync = loop, rig, sync

    def dump(self) -> Any:
        return dump(self.rig.store.db.conn)

    def apply(self, raw: Any) -> str:
        return self.loop(self.rig.run(self.sync.apply(raw)))  # type: ignore[no-any-return]

    def refused_changes_only_the_inbox(self, raw: Any) -> Any:
        """Apply; a refusal must change only the inbox. What an applied command changed."""
        before = self.dump()
        outcome = self.apply(raw)
        changed = changes(before, self.dump())
        has_id = commands.command_id(raw) is not None
        if outcome == "duplicate" or not has_id:
            assert outcome != "applied"
            assert changed == {}, f"{raw!r} ({outcome}) changed {changed}"
            return changed
        if outcome == "applied":
            # A mutation that left a valid command (an optional field dropped...).
            commands.parse(raw)
            return changed
        assert outcome == "rejected"
        assert set(changed) == {"inbox", "journal"}, f"{raw!r} changed {changed}"
        (_, inbox), (_, journal) = changed["inbox"], changed["journal"]
        assert [row[:3] for row in inbox] == [(raw["id"], inbox[0][1], "rejected")]
        assert inbox[0][3], "a rejection carries its reason"
        assert journal_types(journal) == ["command.rejected"]
        before = self.dump()
        assert self.apply(raw) == "duplicate"
        assert self.dump() == before
        return changed


@contextmanager
def lockers(folder: Path) -> Iterator[Renewed[SyncedLocker]]:
    """Synced lockers, one after another, on a loop of the test's own."""
    token = folder / "sync.token"
    token.write_text(TOKEN + "\n")
    with own_loop() as loop:

        def make(cases: int) -> SyncedLocker:
            state = folder / f"locker-{cases}"
            config = bank_config(state)
            config = dataclasses.replace(config, sync=sync_section("http://127.0.0.1:9", token))
            rig = loop(Rig(config).start())

            async def coordinator() -> SyncCoordinator:  # its HTTP session is made on the loop
                return SyncCoordinator(config, rig.store, rig.locker.db, rig.locker, rig.clock)

            return SyncedLocker(loop, rig, loop(coordinator()))

        def close(locker: SyncedLocker) -> None:
            loop(locker.sync.close())
            loop(locker.rig.stop())

        renewed = Renewed(make, close)
        try:
            yield renewed
        finally:
            renewed.close()


@groups(40, 4_000)
def test_any_json_value_as_a_command_is_refused_and_changes_only_the_inbox(
    examples: int, tmp_path: Path
) -> None:
    with lockers(tmp_path) as locker:
        run(
            "sync (any JSON value as a command)",
            examples,
            lambda raw: locker.spoil(locker().refused_changes_only_the_inbox(raw)),
            raw=st.one_of(
                json_values,
                st.fixed_dictionaries({}, optional={f: json_values for f in FIELDS[:5]}),
            ),
        )


@groups(40, 4_000)
def test_mutated_valid_commands_are_refused_and_change_only_the_inbox(
    examples: int, tmp_path: Path
) -> None:
    office = Office()

    with lockers(tmp_path) as locker:

        def prop(command: tuple[str, dict[str, Any]], edits: list[Any]) -> None:
            raw = mutated(office.command(*command), edits)
            locker.spoil(locker().refused_changes_only_the_inbox(raw))

        run("sync (mutated valid commands)", examples, prop, command=valid, edits=mutations)


@groups(40, 2_000)
def test_valid_commands_apply_once(examples: int, tmp_path: Path) -> None:
    office = Office()

    with lockers(tmp_path) as locker:

        def prop(command: tuple[str, dict[str, Any]]) -> None:
            here = locker()
            raw = office.command(*command)
            first = here.dump()
            outcome = here.apply(raw)
            locker.spoil(changes(first, here.dump()))
            assert outcome in ("applied", "rejected"), outcome
            (row,) = here.rig.store.db.conn.execute(
                "SELECT outcome, reason FROM inbox WHERE id = ?", (raw["id"],)
            )
            assert row[0] == outcome and (outcome == "applied") == (row[1] is None)
            before = here.dump()
            assert here.apply(raw) == "duplicate"
            assert here.dump() == before

        run("sync (valid commands, each twice)", examples, prop, command=valid)


# -- what the back office answers ---------------------------------------------------


class Answers:
    """A back office on loopback that answers every request with the next body given."""

    def __init__(self) -> None:
        self.body = b""
        self.status = 200
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.answer)
        self.runner = web.AppRunner(app, access_log=None)

    async def answer(self, request: web.Request) -> web.Response:
        return web.Response(body=self.body, status=self.status, content_type="application/json")

    async def start(self) -> str:
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        host, port = site._server.sockets[0].getsockname()[:2]  # type: ignore[union-attr]
        return f"http://{host}:{port}"


answers = st.one_of(
    json_values.map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries(
        {}, optional={"acked_seq": json_values, "commands": json_values, "cursor": json_values}
    ).map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=32),
)


@groups(30, 1_000)
def test_any_answer_is_a_sync_error_or_what_the_protocol_says(
    examples: int, tmp_path: Path
) -> None:
    token = tmp_path / "token"
    token.write_text(TOKEN)
    with own_loop() as loop:
        office = Answers()
        url = loop(office.start())

        async def client() -> BackOfficeClient:
            return BackOfficeClient(url, LOCKER, token, timeout_s=5)

        bo = loop(client())

        def prop(body: bytes, status: int) -> None:
            office.body, office.status = body, status
            try:
                acked = loop(bo.push([{"seq": 1, "type": "t", "at": 1.0, "data": {}}], 1))
                assert isinstance(acked, int) and acked >= 0
            except SyncError:
                pass
            try:
                listed, cursor = loop(bo.pull(""))
                assert isinstance(listed, list) and isinstance(cursor, str)
            except SyncError:
                pass

        try:
            run(
                "sync (back-office answers)",
                examples,
                prop,
                body=answers,
                status=st.sampled_from([200, 200, 200, 201, 204, 301, 400, 401, 404, 500]),
            )
        finally:
            loop(bo.close())
            loop(office.runner.cleanup())


# -- what the back office answers, over MQTT ------------------------------------------


class AnswersOnBroker:
    """A back office on a real mosquitto that meets each request with the case's payload
    (on the answer topic, and as a poke on ``cmd``), then with a 503 naming the request:
    whether the locker takes the case's payload as its answer or not, every call ends
    at once."""

    def __init__(self, port: int) -> None:
        self.payload: bytes | dict[str, Any] = b""
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id="answers")
        self.client.on_message = self.answer
        self.client.connect("127.0.0.1", port)
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *args: subscribed.set()
        self.client.loop_start()
        self.client.subscribe([(topic(LOCKER, EVT), 1), (topic(LOCKER, RPC_REQ), 1)])
        assert subscribed.wait(10)

    def answer(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        req = json.loads(message.payload)["req"]
        reply = topic(LOCKER, ACK if message.topic.endswith(EVT) else RPC_RES)
        case = self.payload
        payload = encode({"req": req, **case}) if isinstance(case, dict) else case
        client.publish(reply, payload, 1)
        client.publish(topic(LOCKER, CMD), payload, 1)
        client.publish(reply, encode({"req": req, "error": {"status": 503, "message": "x"}}), 1)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


class Caught(logging.Handler):
    """Errors the loop logs (an exception raised through a reader callback, say)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.said: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.said.append(record.getMessage())


mqtt_answers = st.one_of(
    answers,
    st.fixed_dictionaries(
        {},
        optional={
            "acked_seq": json_values,
            "commands": json_values,
            "cursor": json_values,
            "error": json_values,
            "pending": json_values,
        },
    ),
    st.integers(1, 200_000).map(lambda n: b"[" * n),  # nested past Python's recursion limit
    st.integers(1, 5_000).map(lambda n: b'{"req":' * n),
)


@needs_mosquitto
@groups(20, 500)
def test_any_answer_or_poke_over_mqtt_is_a_sync_error_or_what_the_protocol_says(
    examples: int, tmp_path: Path
) -> None:
    """The same property over a real broker, with any bytes as the answer and as a poke:
    the locker's one connection carries on, and the loop never logs an error."""
    caught = Caught()
    logging.getLogger().addHandler(caught)
    with own_loop() as loop:
        broker = loop(Mosquitto(tmp_path / "broker").start())
        office = AnswersOnBroker(broker.port)

        async def transport() -> MqttTransport:
            return MqttTransport(broker.url, LOCKER, redial=quick_redial(), timeout_s=10)

        locker = loop(transport())

        def prop(payload: bytes | dict[str, Any]) -> None:
            office.payload = payload
            try:
                acked = loop(locker.push([{"seq": 1, "type": "t", "at": 1.0, "data": {}}], 1))
                assert isinstance(acked, int) and acked >= 0
            except SyncError:
                pass
            try:
                listed, cursor = loop(locker.pull(""))
                assert isinstance(listed, list) and isinstance(cursor, str)
            except SyncError:
                pass
            assert locker.connects == 1 and locker.connected.is_set()
            assert caught.said == []

        try:
            run("sync (back-office answers and pokes over MQTT)", examples, prop,
                payload=mqtt_answers)  # fmt: skip
        finally:
            logging.getLogger().removeHandler(caught)
            loop(locker.close())
            office.close()
            loop(broker.stop())
