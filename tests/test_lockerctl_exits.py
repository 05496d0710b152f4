"""lockerctl's exit status and words where something goes wrong: a sync that fails, a
daemon that goes away mid-answer, a bad argument, an interrupt."""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from lockerd.ctltext import local_time
from lockerd.domain import Outbound, Parcel
from tests.ctl_rig import control
from tests.daemon import ROOT
from tests.test_lockerctl import Ctl


async def test_sync_push_exits_0_only_when_the_sync_succeeded(synced) -> None:
    s = synced
    async with control(s.rig, s.sync) as ctl:
        code, out, err = await ctl("sync", "--push")
        assert (code, err) == (0, ""), err
        assert out.startswith(f"sync with {s.office.url}: ok; last success ")
        shown = await ctl.json("sync")
        assert s.sync.last_ok is not None and shown["last_ok"] == local_time(s.sync.last_ok)
        await s.away()
        code, out, err = await ctl("sync", "--push")
        assert code == 1, (out, err)
        assert out.startswith(f"sync with {s.office.url}: failing (")
        assert err == f"lockerctl: the sync did not succeed: {s.sync.last_error}\n"


@asynccontextmanager
async def daemon_saying(*lines: dict[str, Any]) -> AsyncIterator[Ctl]:
    """A stand-in for lockerd on a control socket: it reads the request, writes ``lines``
    and closes the connection, as a daemon stopped in the middle of an answer does."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readline()
        for line in lines:
            writer.write(json.dumps(line).encode() + b"\n")
        await writer.drain()
        writer.close()

    folder = Path(tempfile.mkdtemp(prefix="lockerctl-gone-", dir="/tmp"))
    server = await asyncio.start_unix_server(answer, folder / "control.sock")
    try:
        yield Ctl(folder / "control.sock")
    finally:
        server.close()
        shutil.rmtree(folder, ignore_errors=True)


GONE = "lockerctl: lockerd closed the connection before it answered (did it stop?)\n"
EVENT = {"seq": 7, "at": 1_800_000_000.0, "type": "door.closed", "data": {"compartment": "S1"}}


@pytest.mark.parametrize(
    "args", [("status",), ("disable", "S1", "--reason", "x"), ("events", "--limit", "5")]
)
async def test_a_daemon_gone_before_its_answer_is_not_success(args) -> None:
    async with daemon_saying() as ctl:
        assert await ctl(*args) == (3, "", GONE)


async def test_a_followed_stream_cut_short_is_not_success() -> None:
    async with daemon_saying(EVENT) as ctl:
        code, out, err = await ctl("events", "--follow", "--limit", "2")
        assert (code, err) == (3, GONE) and out.startswith("#7 ")
        code, out, err = await ctl("events", "--follow")
        assert (code, err) == (3, GONE) and out.startswith("#7 ")
        assert await ctl("events", "--follow", "--limit", "1") == (0, out, "")
        progress = {"progress": "S1: pulsed: open the door, then shut it"}
    async with daemon_saying(progress) as ctl:
        code, out, err = await ctl("cycle-test", "S1", "--reason", "walk")
        assert (code, out, err) == (3, progress["progress"] + "\n", GONE)


async def test_an_interrupted_command_ends_by_sigint_quietly(rig) -> None:
    """Ctrl-C on ``events --follow`` (or a cycle test) is no success: lockerctl ends by
    SIGINT as other tools do (the shell's 130), with no traceback."""
    async with control(rig) as ctl:
        follow = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "lockerd.lockerctl", "--socket", str(ctl.socket),
            "events", "--follow", "--after", "0",
            cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert follow.stdout is not None
        assert (await asyncio.wait_for(follow.stdout.readline(), 30)).startswith(b"#1 ")
        follow.send_signal(signal.SIGINT)
        _, err = await asyncio.wait_for(follow.communicate(), 30)
        assert (follow.returncode, err) == (-signal.SIGINT, b"")


def _rows(rig: Any) -> tuple[object, ...]:
    conn = rig.store.db.conn
    return tuple(
        conn.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
        for table in ("parcels", "compartments", "journal", "audit", "unlock_intents", "outbound")
    )


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("events", "--limit", "0"), "limit must be a whole number in 1..100000"),
        (("events", "--after", "-1"), "after must be a whole number in 0..9223372036854775807"),
        (("audit", "--limit", "0"), "limit must be a whole number in 1..100000"),
        (("parcels", "list", "--state", "lost"), "state must be one of expected, stored,"),
        (("outbound", "list", "--state", "lost"), "state must be one of depositing,"),
        (("outbound", "show", "0"), "id must be an outbound parcel's number"),
        (("parcels", "extend", "EXP0001", "--hours", "0", "--reason", "x"),
         "hours must be more than 0 and at most 2160 (invalid_field)"),
        (("parcels", "extend", "EXP0001", "--hours", "2161", "--reason", "x"),
         "hours must be more than 0 and at most 2160 (invalid_field)"),
        (("cycle-test", "S1", "--timeout", "1", "--reason", "x"),
         "timeout must be a whole number in 5..3600"),
    ],
)  # fmt: skip
async def test_a_bad_argument_value_is_exit_status_2_names_it_and_changes_nothing(
    rig, args, says
) -> None:
    before = _rows(rig)
    async with control(rig) as ctl:
        code, out, err = await ctl(*args)
    assert (code, out) == (2, "") and err.startswith("lockerctl: ") and says in err, err
    assert _rows(rig) == before


def _help(*args: str) -> str:
    return subprocess.run(
        [sys.executable, "-m", "lockerd.lockerctl", *args, "--help"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip


COMMANDS = [
    ("status",), ("open",), ("disable",), ("enable",), ("found",), ("empty",), ("events",),
    ("sync",), ("parcels",), ("parcels", "list"), ("parcels", "show"), ("parcels", "extend"),
    ("parcels", "returned"), ("outbound",), ("outbound", "list"), ("outbound", "show"),
    ("outbound", "removed"), ("diag",), ("cycle-test",), ("config",), ("audit",),
]  # fmt: skip


def test_help_names_what_each_command_takes_as_the_readme_does() -> None:
    top = _help()
    assert "parcels" in top and "cycle-test" in top and "local time" in top
    assert "Exit status: 0 done, 1 refused, 2 bad arguments, 3 lockerd not running" in top
    for args in COMMANDS:
        assert "--json" in _help(*args), args  # every command takes it, after its name too
    assert "[--after SEQ] [--limit N] [--follow]" in _help("events")
    assert "[--limit N]" in _help("audit")
    cycle = _help("cycle-test")
    assert "--timeout S" in cycle and "ID [ID ...]" in cycle and "default 120" in cycle
    assert all(str(state) in _help("parcels", "list") for state in Parcel)
    assert all(str(state) in _help("outbound", "list") for state in Outbound)
    for action in ("show", "removed"):
        assert "its number, as outbound list prints it" in _help("outbound", action)


async def test_a_link_that_has_not_tried_yet_is_not_called_failing(synced) -> None:
    s = synced
    async with control(s.rig, s.sync) as ctl:
        code, out, _ = await ctl("sync")
        assert code == 0 and out.startswith(f"sync with {s.office.url}: not synced yet;"), out
        assert "failing" not in out and "last success never" in out
        code, out, _ = await ctl("status")
        assert code == 0 and "\nsync: not synced yet; " in out, out
        await s.away()
        assert (await ctl("sync", "--push"))[0] == 1
        code, out, _ = await ctl("status")
        assert f"\nsync: failing ({s.sync.last_error}); " in out, out


async def test_a_socket_path_that_cannot_be_one_is_a_bad_argument(tmp_path) -> None:
    path = tmp_path / ("x" * 120)  # longer than a Unix socket's address may be
    assert await Ctl(path)("status") == (
        2, "", f"lockerctl: cannot use {path} as the control socket: AF_UNIX path too long\n"
    )  # fmt: skip


async def test_a_cycle_test_naming_an_unknown_compartment_names_it_and_opens_nothing(rig) -> None:
    before = _rows(rig)
    async with control(rig) as ctl:
        code, out, err = await ctl("cycle-test", "s1", "Z9", "--reason", "acceptance")
    assert (code, out) == (1, "")
    assert err == "lockerctl: no compartment 'Z9' in this locker (unknown_compartment)\n"
    assert _rows(rig) == before and rig.unlocks_of("S1") == 0


async def test_audit_verify_with_a_limit_is_refused_as_a_bad_argument(rig) -> None:
    """--verify checks the whole log: a --limit beside it was silently ignored."""
    async with control(rig) as ctl:
        code, out, err = await ctl("audit", "--verify", "--limit", "5")
        assert (code, out) == (2, "") and "--limit does not go with --verify" in err, err
        code, out, _ = await ctl("audit", "--verify")
        assert code == 0 and out.startswith("audit log intact: 0 entries")
        assert (await ctl("audit", "--limit", "5"))[:2] == (0, "(no entries)\n")
