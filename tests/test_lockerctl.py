"""lockerctl against ``lockerd run`` on the demo: each command, its audit entry, its exit status."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from subprocess import PIPE

import pytest

from lockerd.control import ORIGIN_UNKNOWN, allowed
from lockerd.store.audit import legacy_hash
from tests.browser import demo_config
from tests.daemon import ROOT, Daemon

SSH = "10.1.2.3 50123 10.0.0.1 22"


class Ctl:
    def __init__(self, socket: Path):
        self.socket = socket

    async def __call__(self, *args: str, ssh: str | None = None) -> tuple[int, str, str]:
        env = dict(os.environ)
        env.pop("SSH_CONNECTION", None)
        if ssh:
            env["SSH_CONNECTION"] = ssh
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "lockerd.lockerctl",
            "--socket",
            str(self.socket),
            *args,
            cwd=ROOT,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 30)
        return proc.returncode or 0, out.decode(), err.decode()

    async def json(self, *args: str) -> object:
        code, out, err = await self(*args, "--json")
        assert code == 0, err
        return json.loads(out)


@pytest.fixture
def open_folder(tmp_path):
    # The socket in a folder anyone may enter, so that another user can be refused by name.
    folder = Path(f"/tmp/lockerctl-test-{os.getpid()}-{tmp_path.name}")
    folder.mkdir(mode=0o755)
    yield folder
    folder.rmdir()


@pytest.fixture
async def locker(request, tmp_path, open_folder):
    """The demo locker; a test may change config keys with ``@pytest.mark.demo(key=value)``."""
    folder = open_folder
    marker = request.node.get_closest_marker("demo")
    config = demo_config(tmp_path, **(marker.kwargs if marker else {}))
    config.write_text(config.read_text() + f'\n[control]\nsocket = "{folder}/control.sock"\n')
    async with Daemon(config, "--state-dir", str(tmp_path)) as daemon:
        yield daemon, Ctl(folder / "control.sock"), tmp_path / "lockerd.db"


async def test_status_draws_the_bank_and_lists_every_compartment(locker) -> None:
    _, ctl, _ = locker
    code, out, _ = await ctl("status")
    assert code == 0
    assert "[ A1 free ][ B1 free ][ C1 free ]" in out
    assert "[ A4 free ][ B4 free ][         ]" in out
    assert "board cu0: online" in out and "sync: off" in out
    status = await ctl.json("status")
    assert len(status["compartments"]) == 10


async def sent(daemon: Daemon) -> str:
    """A member of the public returns SHIP0042 (GLS) at the demo kiosk; its compartment."""
    events = await daemon.events(after=0)
    body = {"size": "M", "reference": "SHIP0042", "carrier": "GLS", "kind": "return"}
    _, issued = await daemon.call("POST", "/api/demo/send-codes", body)
    _, flow = await daemon.call("POST", "/api/sends", {"code": issued["code"]})
    comp = flow["compartment"]
    await events.flow(flow["id"], "open")
    await daemon.call("POST", f"/api/demo/doors/{comp}/put")
    await daemon.call("POST", f"/api/demo/doors/{comp}/close")
    await events.flow(flow["id"], "stored")
    await events.close()
    return str(comp)


async def test_status_names_the_outbound_parcel_in_a_compartment(locker) -> None:
    """A parcel sent at the locker waits for its carrier: the bank view names it (send or
    return, reference, carrier) as it names an inbound parcel's barcode."""
    daemon, ctl, _ = locker
    inbound = await daemon.drop_off("JJD0001")
    comp = await sent(daemon)
    code, out, _ = await ctl("status")
    assert code == 0
    line = next(row for row in out.splitlines() if row.startswith(f"{comp} "))
    assert "return SHIP0042 (GLS)" in line, out
    assert re.search(rf"(?m)^{inbound} .* JJD0001\b", out), out
    status = await ctl.json("status")
    by_id = {c["id"]: c for c in status["compartments"]}
    outbound = {"kind": "return", "reference": "SHIP0042", "carrier": "GLS"}
    assert (by_id[comp]["parcel"], by_id[comp]["outbound"]) == (None, outbound)
    assert (by_id[inbound]["parcel"], by_id[inbound]["outbound"]) == ("JJD0001", None)
    _, api = await daemon.call("GET", "/api/status")
    assert next(c for c in api["compartments"] if c["id"] == comp)["outbound"] == outbound
    assert all(c["outbound"] is None for c in api["compartments"] if c["id"] != comp)


async def test_disable_and_enable_are_audited_with_who_and_from_where(locker) -> None:
    _, ctl, _ = locker
    code, out, _ = await ctl("disable", "A1", "--reason", "hinge loose", ssh=SSH)
    assert (code, out.strip()) == (0, "A1: out_of_service")
    code, out, _ = await ctl("enable", "A1", "--reason", "hinge fixed")
    assert (code, out.strip()) == (0, "A1: free")
    entries = await ctl.json("audit")
    assert [(e["actor"], e["origin"], e["action"], e["target"], e["reason"]) for e in entries] == [
        ("root", "ssh from 10.1.2.3", "disable", "A1", "hinge loose"),
        ("root", "local", "enable", "A1", "hinge fixed"),
    ]
    events = await ctl.json("events", "--limit", "200")
    actions = [e["data"] for e in events if e["type"] == "service.action"]
    assert [a["audit_hash"] for a in actions] == [e["hash"] for e in entries]


#: A client that writes its own request, claiming an origin, as a hostile one could.
CLAIMING_CLIENT = """
import json, socket, sys
sock = socket.socket(socket.AF_UNIX)
sock.connect(sys.argv[1])
request = {"command": "disable", "args": {"id": "A1"}, "reason": "claimed",
           "origin": "ssh from 6.6.6.6"}
sock.sendall(json.dumps(request).encode() + b"\\n")
print(sock.makefile().readline())
"""


@pytest.mark.parametrize(("ssh", "origin"), [(None, "local"), (SSH, "ssh from 10.1.2.3")])
async def test_the_origin_is_found_from_the_client_process_not_taken_from_it(
    locker, ssh, origin
) -> None:
    _, ctl, _ = locker
    env = {k: v for k, v in os.environ.items() if k != "SSH_CONNECTION"}
    if ssh:
        env["SSH_CONNECTION"] = ssh
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CLAIMING_CLIENT,
        str(ctl.socket),
        env=env,
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 30)
    assert json.loads(out)["ok"], out
    entries = await ctl.json("audit")
    assert [(e["reason"], e["origin"]) for e in entries] == [("claimed", origin)]


#: A client that connects, hands the socket to a child and exits; the child asks.
HANDOFF_CLIENT = """
import json, os, socket, sys
sock = socket.socket(socket.AF_UNIX)
sock.connect(sys.argv[1])
if os.fork():
    os._exit(0)
request = {"command": "disable", "args": {"id": "A1"}, "reason": "handed off"}
sock.sendall(json.dumps(request).encode() + b"\\n")
print(sock.makefile().readline(), flush=True)
"""


def handed_off(path: Path) -> subprocess.Popen[bytes]:
    """Start HANDOFF_CLIENT and wait until its first process has exited and been reaped."""
    client = subprocess.Popen([sys.executable, "-c", HANDOFF_CLIENT, str(path)], stdout=PIPE)
    assert client.wait(30) == 0
    return client


async def test_a_request_whose_connecting_process_is_gone_is_refused(locker) -> None:
    daemon, ctl, _ = locker
    assert daemon.proc is not None
    daemon.proc.send_signal(signal.SIGSTOP)  # it accepts only once the client's parent is gone
    try:
        client = await asyncio.to_thread(handed_off, ctl.socket)
    finally:
        daemon.proc.send_signal(signal.SIGCONT)
    assert client.stdout is not None
    with client.stdout:
        out = await asyncio.to_thread(client.stdout.read)  # the child's answer, then EOF
    assert json.loads(out) == {
        "ok": False,
        "error": {"code": "origin_unknown", "message": ORIGIN_UNKNOWN},
    }
    assert "run lockerctl from a login shell" in ORIGIN_UNKNOWN
    assert await ctl.json("audit") == []
    assert (await ctl.json("status"))["compartments"][0]["state"] == "free"


async def test_a_state_change_needs_a_reason(locker) -> None:
    _, ctl, _ = locker
    code, _, err = await ctl("disable", "A1")
    assert code == 2 and "--reason" in err
    code, _, err = await ctl("disable", "A1", "--reason", "  ")
    assert code == 1 and "needs a reason: give one with --reason" in err


async def test_open_pulses_the_door_and_asks_for_a_check(locker) -> None:
    daemon, ctl, _ = locker
    events = await daemon.events(after=0)
    await daemon.call("POST", "/api/demo/doors/B1/open")  # the customer takes the handle
    code, out, _ = await ctl("open", "B1", "--reason", "customer locked keys inside")
    assert code == 0 and out.startswith("B1: opening")
    await events.event("door.opened", compartment="B1")
    await daemon.call("POST", "/api/demo/doors/B1/close")
    await events.event("compartment.needs_check", compartment="B1", reason="service")
    await events.close()
    code, out, _ = await ctl("enable", "B1", "--reason", "checked: empty")
    assert out.strip() == "B1: free"


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (("open", "Z9", "--reason", "x"), 1, "no compartment 'Z9'"),
        (("enable", "A1", "--reason", "x"), 1, "A1 is free, not out of service"),
        (("sync", "--push"), 1, "no back office"),
        (("events", "--limit", "0"), 2, "limit must be a whole number in 1..100000"),
        (("frobnicate",), 2, "invalid choice"),
    ],
)
async def test_refusals_have_a_reason_and_an_exit_status(locker, args, code, says) -> None:
    _, ctl, _ = locker
    got, _, err = await ctl(*args)
    assert got == code and says in err


def as_user(uid: int, path: Path, request: dict) -> dict:
    """Ask the control socket from a child process running as ``uid`` (the peer it sees)."""
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover (the child)
        try:
            os.setgid(uid)
            os.setuid(uid)
            with socket.socket(socket.AF_UNIX) as sock:
                sock.connect(str(path))
                sock.sendall(json.dumps(request).encode() + b"\n")
                os.write(write_end, sock.makefile("rb").readline())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as answer:
        line = answer.read()
    os.waitpid(child, 0)
    return json.loads(line)


async def test_a_caller_outside_the_group_is_refused(locker) -> None:
    _, ctl, _ = locker
    answer = await asyncio.to_thread(as_user, 65534, ctl.socket, {"command": "status"})
    assert answer == {
        "ok": False,
        "error": {"code": "not_allowed", "message": "only root or the control group may do that"},
    }


def test_the_control_group_by_membership_or_primary_group() -> None:
    import grp

    root_group = grp.getgrgid(0).gr_name
    assert allowed(0, 0, "")
    assert allowed(65534, 0, root_group)  # primary group
    assert not allowed(65534, 65534, root_group)
    assert not allowed(65534, 65534, "no-such-group")


async def test_not_running_is_its_own_exit_status(tmp_path) -> None:
    code, _, err = await Ctl(tmp_path / "control.sock")("status")
    assert code == 3 and "lockerd is not running" in err


@pytest.mark.parametrize(
    ("tamper", "problem"),
    [
        (
            "UPDATE audit SET reason = 'nothing to see' WHERE seq = 2",
            "entry 2: its contents were changed",
        ),
        ("DELETE FROM audit WHERE seq = 2", "entry 3: expected entry 2 here"),
        (
            "UPDATE audit SET seq = -seq WHERE seq IN (1, 2);"
            "UPDATE audit SET seq = 3 + seq WHERE seq IN (-1, -2)",  # 1, 2 become 2, 1
            "entry 1: does not follow the entry before it",
        ),
    ],
)
async def test_audit_verify_finds_a_changed_removed_or_reordered_entry(
    locker, tamper, problem
) -> None:
    _, ctl, database = locker
    await three_audited_actions(ctl)
    with sqlite3.connect(database) as db:
        db.executescript(tamper)
    code, out, _ = await ctl("audit", "--verify")
    assert code == 5 and "audit log BROKEN" in out and problem in out


async def three_audited_actions(ctl: Ctl) -> None:
    for target, reason in (("A1", "one"), ("A2", "two"), ("A3", "three")):
        assert (await ctl("disable", target, "--reason", reason))[0] == 0
    code, out, _ = await ctl("audit", "--verify")
    assert code == 0 and out.startswith("audit log intact: 3 entries")


def recompute_chain(db: sqlite3.Connection) -> None:
    """What someone without the device key can do: relink every entry with plain SHA-256."""
    prev = "0" * 64
    db.row_factory = sqlite3.Row
    for row in db.execute("SELECT * FROM audit ORDER BY seq").fetchall():
        entry = dict(row)
        entry["prev"] = prev
        entry["hash"] = prev = legacy_hash(prev, entry)
        db.execute(
            "UPDATE audit SET prev = ?, hash = ? WHERE seq = ?", (entry["prev"], prev, entry["seq"])
        )


@pytest.mark.parametrize(
    ("tamper", "problem"),
    [
        ("DELETE FROM audit WHERE seq = 3", "entry 3 is missing"),
        ("DELETE FROM audit WHERE seq >= 2", "entries 2..3 are missing"),
        ("DELETE FROM audit", "entries 1..3 are missing"),
        ("UPDATE audit SET reason = 'routine' WHERE seq = 2", "entry 2: its contents were changed"),
        ("UPDATE meta SET value = '99' WHERE key = 'audit.keyed_from'", "entry 3: differs"),
    ],
)
async def test_audit_verify_finds_a_removed_tail_and_an_edit_with_the_chain_recomputed(
    locker, tamper, problem
) -> None:
    _, ctl, database = locker
    await three_audited_actions(ctl)
    with sqlite3.connect(database) as db:
        db.executescript(tamper)
        recompute_chain(db)
    code, out, _ = await ctl("audit", "--verify")
    assert code == 5 and "audit log BROKEN" in out and problem in out, out


async def test_audit_verify_finds_a_forged_anchor(locker) -> None:
    _, ctl, database = locker
    await three_audited_actions(ctl)
    with sqlite3.connect(database) as db:
        db.execute("DELETE FROM audit WHERE seq = 3")
        seq, data = db.execute(
            "SELECT seq, data FROM journal WHERE type = 'service.action' ORDER BY seq DESC"
        ).fetchone()
        entry2 = db.execute("SELECT hash FROM audit WHERE seq = 2").fetchone()[0]
        forged = json.loads(data) | {"audit_seq": 2, "audit_head": entry2}
        db.execute("UPDATE journal SET data = ? WHERE seq = ?", (json.dumps(forged), seq))
    code, out, _ = await ctl("audit", "--verify")
    assert code == 5 and f"journal event {seq}: its audit anchor was forged" in out, out


async def test_events_follow_prints_new_events_as_they_happen(locker) -> None:
    _, ctl, _ = locker
    follow = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "lockerd.lockerctl", "--socket", str(ctl.socket),
        "events", "--follow", "--after", "0",
        cwd=ROOT, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        await ctl("disable", "B4", "--reason", "watching")

        async def until_seen() -> str:
            while line := (await follow.stdout.readline()).decode():
                if "service.action" in line:
                    return line
            return ""

        assert '"target": "B4"' in await asyncio.wait_for(until_seen(), 20)
    finally:
        follow.kill()
        await follow.wait()


async def test_parcels_list_show_extend_and_mark_returned(locker) -> None:
    daemon, ctl, _ = locker
    comp = await daemon.drop_off("JJD0001")
    code, out, _ = await ctl("parcels", "list", "--state", "stored")
    assert code == 0 and "JJD0001" in out and comp in out
    before = datetime.fromisoformat((await ctl.json("parcels", "show", "JJD0001"))["pickup_by"])
    code, _, _ = await ctl(
        "parcels", "extend", "JJD0001", "--hours", "200", "--reason", "on holiday"
    )
    after = datetime.fromisoformat((await ctl.json("parcels", "show", "JJD0001"))["pickup_by"])
    assert code == 0 and after > before + timedelta(hours=100)
    code, _, _ = await ctl("parcels", "returned", "JJD0001", "--reason", "sender asked")
    parcel = await ctl.json("parcels", "show", "JJD0001")
    assert code == 0 and parcel["state"] == "returned"
    status = await ctl.json("status")
    assert {c["id"]: c["state"] for c in status["compartments"]}[comp] == "needs_check"
    actions = [e["action"] for e in await ctl.json("audit")]
    assert actions == ["extend", "returned"]
    code, _, err = await ctl("parcels", "show", "NOPE0001")
    assert code == 1 and "no parcel 'NOPE0001'" in err


async def test_outbound_list_show_and_taken_out_by_hand(locker) -> None:
    daemon, ctl, _ = locker
    comp = await sent(daemon)
    code, out, _ = await ctl("outbound", "list", "--state", "awaiting_collection")
    assert code == 0
    assert re.search(rf"(?m)^ +1 return +SHIP0042 +GLS +awaiting_collection +{comp}\b", out), out
    code, _, err = await ctl("found", comp.lower(), "--reason", "looked inside")
    assert (
        code == 1
        and f"{comp} is occupied: no deposit cut short" in err
        and "(not_cut_short)" in err
    )
    code, _, err = await ctl("empty", "Z9", "--reason", "looked inside")
    assert code == 1 and "no compartment 'Z9'" in err
    code, _, err = await ctl("outbound", "removed", "1")
    assert code == 2 and "--reason" in err
    code, _, err = await ctl("outbound", "show", "one")
    assert code == 2 and "invalid int value" in err
    code, out, _ = await ctl("outbound", "removed", "1", "--reason", "carrier picked up at desk")
    assert code == 0 and re.search(r"(?m)^state +removed$", out), out
    shown = await ctl.json("outbound", "show", "1")
    (entry,) = await ctl.json("audit")
    assert (entry["action"], entry["target"]) == ("outbound_removed", "outbound 1")
    assert (shown["state"], shown["collected_by"]) == ("removed", f"technician:{entry['actor']}")
    status = await ctl.json("status")
    assert {c["id"]: c["state"] for c in status["compartments"]}[comp] == "needs_check"
    code, _, err = await ctl("outbound", "show", "9")
    assert code == 1 and "no outbound parcel 9" in err


async def test_diag_scans_the_buses(locker) -> None:
    _, ctl, _ = locker
    code, out, _ = await ctl("diag")
    assert code == 0
    assert re.search(r"cu0 on rs485 address 0: answered in [\d.]+ ms; \d+ reads, 0 failures", out)
    assert "sensors: every door agrees" in out


# Doors that do not spring ajar: only a person's pull opens them.
@pytest.mark.demo(door_springs="false")
async def test_a_cycle_test_walks_each_door_with_a_person(locker) -> None:
    daemon, ctl, _ = locker
    events = await daemon.events(after=0)
    for comp in ("A1", "C1"):  # the person at the bank takes each handle before any pulse
        _, door = await daemon.call("POST", f"/api/demo/doors/{comp}/open")
        assert (door["opened"], door["pulling"]) == (False, True)
    walk = asyncio.ensure_future(
        ctl("cycle-test", "A1", "C1", "--reason", "acceptance", "--timeout", "30")
    )
    for comp in ("A1", "C1"):  # each door opens as its latch releases; the person shuts it
        await events.event("door.opened", compartment=comp)
        await daemon.call("POST", f"/api/demo/doors/{comp}/close")
    code, out, _ = await walk
    await events.close()
    assert code == 0
    assert "A1: pulsed: open the door, then shut it" in out
    assert "A1: opened yes, shut yes, latched yes" in out
    assert "C1: opened yes, shut yes, latched n/a (no lock feedback)" in out


@pytest.mark.demo(door_springs="false")
async def test_a_cycle_test_reports_a_door_nobody_opened(locker) -> None:
    _, ctl, _ = locker
    code, out, _ = await ctl("cycle-test", "A2", "--reason", "acceptance", "--timeout", "5")
    assert code == 1 and "A2: opened NO, shut NO" in out and "no door cycle within 5 s" in out
