"""Where a control-socket client is: its logind session (from its cgroup and a
/run/systemd/sessions-like folder) or its ancestry (a /proc tree and a utmp file on disk)."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest

from lockerd import peer


def process(
    proc: Path,
    pid: int,
    ppid: int,
    comm: str,
    environ: dict[str, str] | None,
    cgroup: str | None = None,
    state: str = "S",
) -> None:
    folder = proc / str(pid)
    folder.mkdir(parents=True)
    (folder / "stat").write_text(f"{pid} ({comm}) {state} {ppid} {pid} {pid} 0 -1\n")
    (folder / "comm").write_text(comm + "\n")
    if cgroup is not None:
        (folder / "cgroup").write_text(cgroup)
    if environ is not None:  # None: another user's process, whose environment we may not read
        (folder / "environ").write_bytes(
            b"".join(f"{k}={v}\0".encode() for k, v in environ.items())
        )


def utmp(path: Path, *sessions: tuple[int, str]) -> Path:
    record = struct.Struct("<hxxi32s4s32s256s52x")
    data = b"".join(
        record.pack(7, pid, b"pts/0", b"ts/0", b"alice", host.encode()) for pid, host in sessions
    )
    path.write_bytes(record.pack(2, 0, b"~", b"~~", b"reboot", b"6.1.0") + data)
    return path


@pytest.fixture
def proc(tmp_path):
    """sshd (100) -> sshd [priv] (200) -> sshd-session (300) -> bash (400) -> client (500)."""
    tree = tmp_path / "proc"
    process(tree, 100, 1, "sshd", None)
    process(tree, 200, 100, "sshd", None)
    process(tree, 300, 200, "sshd-session", None)
    process(tree, 400, 300, "bash", {"SSH_CONNECTION": "10.9.8.7 5555 10.0.0.1 22"})
    process(tree, 500, 400, "lockerctl", {"SSH_CONNECTION": "6.6.6.6 1 2.2.2.2 22"})
    return tree


def test_over_ssh_the_address_is_the_one_sshd_gave_its_child(proc, tmp_path) -> None:
    # The client's own environment says otherwise; sshd's child's is the one believed.
    assert peer.origin(500, proc, tmp_path / "no-utmp") == "ssh from 10.9.8.7"


def test_without_access_to_that_environment_utmp_names_the_host(proc, tmp_path) -> None:
    (proc / "400" / "environ").unlink()  # the technician's shell belongs to another user
    record = utmp(tmp_path / "utmp", (200, "10.4.4.4"))
    assert peer.origin(500, proc, record) == "ssh from 10.4.4.4"
    assert peer.origin(500, proc, utmp(tmp_path / "other", (999, "10.5.5.5"))) == (
        "ssh (address unknown)"
    )


def test_with_no_sshd_above_it_the_nearest_ssh_connection_or_local(tmp_path) -> None:
    tree = tmp_path / "proc"
    process(tree, 10, 1, "bash", {"SSH_CONNECTION": "10.1.1.1 1 10.0.0.1 22"})
    process(tree, 20, 10, "python", {"HOME": "/root"})
    process(tree, 30, 1, "bash", {"HOME": "/root"})
    assert peer.origin(20, tree, tmp_path / "no-utmp") == "ssh from 10.1.1.1"
    assert peer.origin(30, tree, tmp_path / "no-utmp") == "local"


def test_a_process_that_is_gone_or_dead_cannot_be_placed(tmp_path) -> None:
    # It connected, handed the socket to a child and exited: its session is not known.
    with pytest.raises(peer.OriginUnknown, match="process 4242 is gone"):
        peer.origin(4242, tmp_path, tmp_path / "no-utmp", tmp_path)
    process(tmp_path, 4243, 1, "lockerctl", {}, state="Z")
    with pytest.raises(peer.OriginUnknown, match="process 4243 is gone"):
        peer.origin(4243, tmp_path, tmp_path / "no-utmp", tmp_path)
    with pytest.raises(peer.OriginUnknown, match="no process"):
        peer.origin(0, tmp_path, tmp_path / "no-utmp", tmp_path)  # another pid namespace


def session(folder: Path, sid: str, **fields: str) -> Path:
    """A logind session file as systemd-logind writes it under /run/systemd/sessions."""
    folder.mkdir(exist_ok=True)
    lines = ["# This is private data. Do not parse.", "UID=1000", "USER=alice", "ACTIVE=1"]
    lines += [f"{k}={v}" for k, v in fields.items()] + [f"SCOPE=session-{sid}.scope"]
    (folder / sid).write_text("\n".join(lines) + "\n")
    return folder


SCOPE = "0::/user.slice/user-1000.slice/session-5.scope\n"


def test_setsid_keeps_the_session_its_cgroup_names(tmp_path) -> None:
    # `setsid -f lockerctl ...` from an SSH shell: re-parented to pid 1, no sshd above it,
    # still in the session's scope, whose file logind keeps world-readable.
    tree = tmp_path / "proc"
    process(tree, 500, 1, "lockerctl", {"HOME": "/home/alice"}, cgroup=SCOPE)
    sessions = session(
        tmp_path / "sessions", "5", REMOTE="1", REMOTE_HOST="10.9.8.7", SERVICE="sshd"
    )
    assert peer.origin(500, tree, tmp_path / "no-utmp", sessions) == "ssh from 10.9.8.7"
    session(sessions, "5", REMOTE="1", SERVICE="sshd")
    assert peer.origin(500, tree, tmp_path / "no-utmp", sessions) == "ssh (address unknown)"
    session(sessions, "5", REMOTE="0", SERVICE="login", TTY="tty1")
    assert peer.origin(500, tree, tmp_path / "no-utmp", sessions) == "local"


def test_the_session_file_is_believed_over_the_ancestry(proc, tmp_path) -> None:
    (proc / "500" / "cgroup").write_text(SCOPE)
    sessions = session(tmp_path / "sessions", "5", REMOTE="1", REMOTE_HOST="10.2.2.2")
    assert peer.origin(500, proc, tmp_path / "no-utmp", sessions) == "ssh from 10.2.2.2"
    # cgroup v1 (or hybrid): the name=systemd hierarchy names it.
    (proc / "500" / "cgroup").write_text(
        "4:memory:/user.slice\n1:name=systemd:/user.slice/user-1000.slice/session-5.scope\n0::/\n"
    )
    assert peer.origin(500, proc, tmp_path / "no-utmp", sessions) == "ssh from 10.2.2.2"


def test_without_its_session_file_the_ancestry_decides_unless_it_was_cut(proc, tmp_path) -> None:
    no_sessions = tmp_path / "no-sessions"
    (proc / "500" / "cgroup").write_text(SCOPE)
    assert peer.origin(500, proc, tmp_path / "no-utmp", no_sessions) == "ssh from 10.9.8.7"
    # Re-parented away from the session's processes: nothing says where it is.
    process(proc, 600, 1, "lockerctl", {"HOME": "/root"}, cgroup=SCOPE)
    with pytest.raises(peer.OriginUnknown, match="left its session"):
        peer.origin(600, proc, tmp_path / "no-utmp", no_sessions)
    # A scope name that is no session id is not looked up as a file, nor taken as local.
    process(proc, 700, 1, "lockerctl", {}, cgroup="0::/user.slice/user-1000.slice/session-...scope")
    assert peer.origin(700, proc, tmp_path / "no-utmp", no_sessions) == peer.USER_SERVICE


def test_a_user_service_is_not_local(tmp_path) -> None:
    # `systemd-run --user lockerctl ...`: the user's manager, not a session, started it.
    tree = tmp_path / "proc"
    service = "0::/user.slice/user-1000.slice/user@1000.service/app.slice/run-u7.service\n"
    process(tree, 800, 1, "lockerctl", {"HOME": "/home/alice"}, cgroup=service)
    sessions = session(tmp_path / "sessions", "5", REMOTE="1", REMOTE_HOST="10.9.8.7")
    assert peer.origin(800, tree, tmp_path / "no-utmp", sessions) == "unknown (user service)"
    process(tree, 801, 1, "lockerctl", {}, cgroup="0::/user.slice/user-1000.slice\n")
    assert peer.origin(801, tree, tmp_path / "no-utmp", sessions) == "unknown (user service)"


def test_system_services_are_local_and_sshd_s_own_cgroup_is_ssh(tmp_path) -> None:
    tree = tmp_path / "proc"
    sessions = tmp_path / "no-sessions"
    process(tree, 900, 1, "lockerctl", {}, cgroup="0::/system.slice/lockertest.service\n")
    assert peer.origin(900, tree, tmp_path / "no-utmp", sessions) == "local"
    # An sshd without logind sessions (UsePAM no) keeps its logins in its own cgroup:
    # a command that left the shell's ancestry is still an SSH login's.
    process(tree, 901, 1, "lockerctl", {}, cgroup="0::/system.slice/ssh.service\n")
    assert peer.origin(901, tree, tmp_path / "no-utmp", sessions) == "ssh (address unknown)"
    unit = "sshd@3-10.0.0.1:22-10.7.7.7:4242.service"  # socket-activated sshd
    process(tree, 902, 1, "lockerctl", {}, cgroup=f"0::/system.slice/system-sshd.slice/{unit}\n")
    assert peer.origin(902, tree, tmp_path / "no-utmp", sessions) == "ssh (address unknown)"


def test_this_process_under_the_real_proc() -> None:
    assert peer.ancestry(os.getpid())[0] == os.getpid()
    assert os.getppid() in peer.ancestry(os.getpid()) or os.getppid() == 1
    assert peer.origin(os.getpid()) in ("local", "ssh (address unknown)") or peer.origin(
        os.getpid()
    ).startswith("ssh from ")
