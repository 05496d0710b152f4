"""lockerctl as a technician reads it: ids as printed, times, pipes, case, no back office."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import sys
from datetime import datetime

import pytest

from lockerd.commands import compartment_id
from lockerd.ctltext import sync_text
from tests.ctl_rig import control
from tests.daemon import ROOT
from tests.test_lockerctl import Ctl

#: A local ISO 8601 time with its UTC offset: 2026-12-01T11:08:27+01:00.
ISO = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d"


def local_iso(at: float) -> str:
    return datetime.fromtimestamp(at).astimezone().isoformat(timespec="seconds")


async def test_parcels_show_takes_the_id_parcels_list_prints(rig) -> None:
    compartment = await rig.stored("JJD0001", "S")
    async with control(rig) as ctl:
        [listed] = await ctl.json("parcels", "list", "--state", "stored")
        code, out, _ = await ctl("parcels", "list", "--state", "stored")
        assert code == 0 and out.split()[:2] == [str(listed["id"]), "JJD0001"]
        shown = await ctl.json("parcels", "show", str(listed["id"]))
        assert (shown["barcode"], shown["compartment_id"]) == ("JJD0001", compartment)
        assert (await ctl.json("parcels", "show", "JJD0001"))["id"] == listed["id"]
        code, _, err = await ctl("parcels", "show", str(listed["id"] + 1))
        assert code == 1 and f"no parcel '{listed['id'] + 1}'" in err


async def _followed(ctl: Ctl, *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "lockerd.lockerctl", "--socket", str(ctl.socket),
        "events", "--follow", *args,
        cwd=ROOT, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def test_events_follow_stops_after_limit_events(rig) -> None:
    async with control(rig) as ctl:
        assert (await ctl("disable", "S1", "--reason", "history"))[0] == 0
        [last] = await ctl.json("events", "--limit", "1")
        follow = await _followed(ctl, "--after", str(last["seq"]), "--limit", "2")
        for comp in ("S2", "M1", "M2"):
            assert (await ctl("disable", comp, "--reason", "watching"))[0] == 0
        out, _ = await asyncio.wait_for(follow.communicate(), 20)
        lines = out.decode().splitlines()
        assert follow.returncode == 0 and len(lines) == 2
        seqs = [int(re.match(r"#(\d+) ", line).group(1)) for line in lines]
        assert seqs == [last["seq"] + 1, last["seq"] + 2]


def _on_subscribe(rig, monkeypatch) -> asyncio.Event:
    """Set once someone (a followed ``events`` stream) starts listening to the journal."""
    subscribed, subscribe = asyncio.Event(), rig.locker.subscribe

    def listening():
        queue = subscribe()
        subscribed.set()
        return queue

    monkeypatch.setattr(rig.locker, "subscribe", listening)
    return subscribed


async def test_events_follow_without_after_starts_at_the_end(rig, monkeypatch) -> None:
    async with control(rig) as ctl:
        assert (await ctl("disable", "S1", "--reason", "history"))[0] == 0
        [last] = await ctl.json("events", "--limit", "1")
        subscribed = _on_subscribe(rig, monkeypatch)
        follow = await _followed(ctl, "--limit", "1", "--json")
        await asyncio.wait_for(subscribed.wait(), 30)  # the follower is in, from the end on
        assert (await ctl("enable", "S1", "--reason", "watching"))[0] == 0
        out, _ = await asyncio.wait_for(follow.communicate(), 20)
        [event] = [json.loads(line) for line in out.decode().splitlines()]
        assert event["seq"] > last["seq"]


async def test_events_and_audit_show_local_iso_times(rig) -> None:
    async with control(rig) as ctl:
        assert (await ctl("disable", "S1", "--reason", "loose hinge"))[0] == 0
        journal = rig.store.journal.events()
        code, out, _ = await ctl("events", "--limit", "1")
        newest = journal[-1]
        assert code == 0 and out.startswith(f"#{newest['seq']} {local_iso(newest['at'])} ")
        events = await ctl.json("events", "--limit", "1000")
        assert [e["at"] for e in events] == [local_iso(e["at"]) for e in journal]
        [entry] = rig.store.audit.entries()
        code, out, _ = await ctl("audit")
        assert code == 0 and re.match(rf"#1 {ISO} root \(local\) disable S1: loose hinge$", out)
        assert (await ctl.json("audit"))[0]["at"] == local_iso(entry["at"])


def _into_closed_pipe(*args: str) -> tuple[int, str]:
    """lockerctl ``args`` with its output into a pipe whose reader has gone (``| head -1``
    done before lockerctl writes): its exit status and what it wrote to stderr."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "lockerd.lockerctl", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    err = proc.stderr.read().decode()
    return proc.wait(30), err


async def test_status_into_a_closed_pipe_ends_quietly_as_on_sigpipe(rig) -> None:
    async with control(rig) as ctl:
        got = await asyncio.to_thread(_into_closed_pipe, "--socket", str(ctl.socket), "status")
        assert got == (-signal.SIGPIPE, "")


async def test_compartment_ids_are_taken_in_either_case(rig) -> None:
    async with control(rig) as ctl:
        code, out, _ = await ctl("disable", "s1", "--reason", "lower case")
        assert (code, out.strip()) == (0, "S1: out_of_service")
        assert [e["target"] for e in await ctl.json("audit")] == ["S1"]
        code, _, err = await ctl("open", "z9", "--reason", "x")
        assert code == 1 and "no compartment 'z9'" in err


@pytest.mark.parametrize(
    ("ids", "name", "found"),
    [
        ({"A1", "B2"}, "A1", "A1"),
        ({"A1", "B2"}, "b2", "B2"),
        ({"A1", "B2"}, "C3", None),
        ({"a1", "A1"}, "a1", "a1"),  # exact wins
        ({"a1", "A1"}, "A1", "A1"),
        ({"ab", "AB", "C"}, "Ab", None),  # ambiguous folded: refused
        ({"ab", "AB", "C"}, "c", "C"),
    ],
)
def test_a_compartment_id_in_another_case_where_unambiguous(ids, name, found) -> None:
    assert compartment_id(name, ids) == found


async def test_sync_without_a_back_office_says_so_and_succeeds(rig) -> None:
    async with control(rig) as ctl:
        code, out, err = await ctl("sync")
        assert (code, err) == (0, "")
        assert out.strip() == "sync: off (this locker has no back office: [sync] url is unset)"
        assert (await ctl.json("sync"))["url"] is None
        code, _, err = await ctl("sync", "--push")
        assert code == 1 and "no back office" in err


async def test_config_prints_text_and_json_only_when_asked(rig) -> None:
    async with control(rig) as ctl:
        code, out, _ = await ctl("config")
        assert code == 0 and not out.lstrip().startswith("{")
        lines = out.splitlines()  # as the config file is written: TOML's tables
        assert lines[lines.index("[locker]") + 1] == f'id = "{rig.config.locker.id}"'
        assert lines.count("[[compartment]]") == len(rig.config.compartment)
        plain = await ctl.json("config")
        assert plain["locker"]["id"] == rig.config.locker.id


def test_sync_with_a_back_office_reads_as_a_sentence() -> None:
    status = {"url": "https://office.example/", "ok": False, "last_error": "timeout",
              "last_ok": 1_764_590_000.0, "failures": 3, "unsent": 7}  # fmt: skip
    assert sync_text(status) == (
        "sync with https://office.example/: failing (timeout);"
        f" last success {local_iso(1_764_590_000.0)}; 3 failures in a row; 7 events unsent"
    )
    fresh = status | {"ok": False, "last_error": None, "last_ok": None, "failures": 0}
    assert sync_text(fresh).startswith("sync with https://office.example/: not synced yet;")
    assert "last success never" in sync_text(fresh)
