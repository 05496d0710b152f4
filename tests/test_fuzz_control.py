"""Fuzz: request lines on the control socket lockerctl talks to.

Any line (bytes, JSON of any shape, a known command with any arguments)
gets one JSON reply line; a refusal is ``{"ok": false, "error": {"code",
"message"}}``, never ``internal_error`` or a logged traceback, and changes
nothing in the store. The daemon keeps answering after every case.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import strategies as st

from lockerd.commands import handlers
from lockerd.control import ControlServer
from tests.fuzzing import Renewed, changes, dump, groups, own_loop, run
from tests.rig import Rig, bank_config
from tests.test_fuzz_sync import json_values

COMMANDS = [
    "status", "open", "disable", "enable", "events", "sync", "config", "audit",
    "parcels", "diag", "cycle-test",
]  # fmt: skip
#: Commands that change the store when they succeed (the rest only read).
WRITERS = {"open", "disable", "enable", "parcels"}


class Traceback(logging.Handler):
    """Collects every log record that carries an exception."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info:
            self.records.append(record)


class Socket:
    """The real control server on the test rig, and one connection per request."""

    def __init__(self, loop: Any, rig: Rig, server: ControlServer):
        self.loop, self.rig, self.server = loop, rig, server

    async def _ask(self, line: bytes) -> list[bytes]:
        reader, writer = await asyncio.open_unix_connection(str(self.server.path))
        try:
            writer.write(line)
            await writer.drain()
            return (await reader.read()).splitlines()
        finally:
            writer.close()

    def ask(self, line: bytes) -> list[bytes]:
        return self.loop(self.rig.run(self._ask(line)))  # type: ignore[no-any-return]

    def refusal_changes_nothing(self, line: bytes, command: str | None = None) -> Any:
        """Ask; a refusal must change nothing. What an accepted request changed."""
        before = dump(self.rig.store.db.conn)
        replies = self.ask(line)
        changed = changes(before, dump(self.rig.store.db.conn))
        assert len(replies) == 1, f"{line!r} got {replies!r}"
        reply = json.loads(replies[0])
        if reply.get("ok") is True:
            assert command in COMMANDS, f"{line!r} was accepted: {reply}"
            assert command in WRITERS or changed == {}, f"{line!r} changed {changed}"
        else:
            assert reply["ok"] is False and set(reply) == {"ok", "error"}, reply
            error = reply["error"]
            assert isinstance(error["code"], str) and isinstance(error["message"], str)
            assert error["code"] != "internal_error", f"{line!r}: {reply}"
            assert changed == {}, f"{line!r} was refused ({error}) but changed {changed}"
        (status,) = self.ask(b'{"command": "status"}\n')
        assert json.loads(status)["ok"] is True, "the daemon stopped answering"
        return changed


@pytest.fixture
def socket(tmp_path: Path) -> Any:
    """Control sockets on fresh lockers (see :class:`~tests.fuzzing.Renewed`)."""
    folder = Path(tempfile.mkdtemp(prefix="lockerd-fuzz-", dir="/tmp"))
    watch = Traceback()
    logging.getLogger("lockerd").addHandler(watch)
    with own_loop() as loop:

        def make(cases: int) -> Socket:
            rig = loop(Rig(bank_config(tmp_path / f"locker-{cases}")).start())
            server = ControlServer(rig.config, rig.locker, handlers(rig.config, rig.locker, None))
            server.path = folder / f"control-{cases}.sock"
            loop(server.start())
            return Socket(loop, rig, server)

        def close(socket: Socket) -> None:
            loop(socket.server.stop())
            loop(socket.rig.stop())

        renewed = Renewed(make, close)
        try:
            yield renewed
        finally:
            renewed.close()
            logging.getLogger("lockerd").removeHandler(watch)
            shutil.rmtree(folder, ignore_errors=True)
    assert not watch.records, [r.getMessage() for r in watch.records]


@groups(40, 4_000)
def test_any_line_gets_an_error_reply_and_changes_nothing(socket: Any, examples: int) -> None:
    run(
        "control (any line)",
        examples,
        lambda line: socket.spoil(
            socket().refusal_changes_nothing(line.replace(b"\n", b" ") + b"\n")
        ),
        line=st.one_of(
            st.binary(max_size=64),
            json_values.map(lambda v: json.dumps(v).encode()),
            st.text(max_size=40).map(str.encode),
        ),
    )


def safe(command: str, args: Any) -> Any:
    """Arguments that do not start a stream waiting on real time (a followed journal, a
    door cycle waiting for a person): the fuzz needs one reply per request."""
    if isinstance(args, dict):
        args = {k: v for k, v in args.items() if k not in ("follow", "ids")}
    return args


args = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {},
        optional={
            "id": st.sampled_from(["S1", "M1", "L1", "X9", ""]) | json_values,
            "after": st.integers(-5, 2**70) | json_values,
            "limit": st.integers(-5, 2**70) | json_values,
            "action": st.sampled_from(["list", "show", "extend", "returned", "x"]) | json_values,
            "barcode": st.sampled_from(["EXP0001", "JJD0001"]) | json_values,
            "state": st.sampled_from(["stored", "expected", "nope"]) | json_values,
            "hours": st.floats() | json_values,
            "verify": json_values,
            "push": json_values,
            "timeout": json_values,
            "reason": json_values,
        },
    ),
)


@groups(40, 5_000)
def test_any_request_to_any_command_is_answered_and_a_refusal_changes_nothing(
    socket: Any, examples: int
) -> None:
    def prop(command: Any, args: Any, extra: dict[str, Any]) -> None:
        request = {"command": command, "args": safe(command, args), **extra}
        line = json.dumps(request).encode() + b"\n"
        changed = socket().refusal_changes_nothing(
            line, command if isinstance(command, str) else None
        )
        socket.spoil(changed)

    run(
        "control (requests to every command)",
        examples,
        prop,
        command=st.one_of(st.sampled_from(COMMANDS), json_values),
        args=args,
        extra=st.fixed_dictionaries(
            {}, optional={"reason": json_values, "origin": json_values, "x": json_values}
        ),
    )


@pytest.mark.parametrize(
    "line",
    [
        b'{"command": "status", "pad": "' + b"a" * 70_000 + b'"}\n',  # past the 64 KiB line
        b'{"command": "status"}',  # the client ends its side without a newline
    ],
    ids=["over-64-KiB", "no-newline"],
)
def test_an_oversized_or_unterminated_request_gets_an_error_reply(socket: Any, line: bytes) -> None:
    """Found by the fuzz: these got no reply at all (the connection was just closed)."""
    here = socket()

    async def ask() -> list[bytes]:
        reader, writer = await asyncio.open_unix_connection(str(here.server.path))
        writer.write(line)
        writer.write_eof()
        await writer.drain()
        try:
            return (await asyncio.wait_for(reader.read(), 10)).splitlines()
        finally:
            writer.close()

    replies = here.loop(ask())
    assert len(replies) == 1, replies
    reply = json.loads(replies[0])
    assert reply["ok"] is False and reply["error"]["code"] != "internal_error", reply


@pytest.mark.parametrize(
    "args",
    [{"after": 2**64}, {"limit": 2**63}, {"after": -1}, {"limit": 0}],
    ids=["after-past-64-bits", "limit-past-64-bits", "after-negative", "limit-zero"],
)
def test_events_out_of_range_are_refused_by_name(socket: Any, args: dict[str, int]) -> None:
    """Found by the slow fuzz: an ``after`` past 64 bits failed in SQLite (internal_error)."""
    line = json.dumps({"command": "events", "args": args}).encode() + b"\n"
    [reply] = socket().ask(line)
    error = json.loads(reply)["error"]
    assert error["code"] == "invalid_field" and next(iter(args)) in error["message"], error
