"""Where a control-socket client is, from its ancestry (a /proc tree and a utmp file on disk)."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest

from lockerd import peer


def process(proc: Path, pid: int, ppid: int, comm: str, environ: dict[str, str] | None) -> None:
    folder = proc / str(pid)
    folder.mkdir(parents=True)
    (folder / "stat").write_text(f"{pid} ({comm}) S {ppid} {pid} {pid} 0 -1\n")
    (folder / "comm").write_text(comm + "\n")
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


def test_a_process_that_is_gone_is_local(tmp_path) -> None:
    assert peer.origin(4242, tmp_path, tmp_path / "no-utmp") == "local"


def test_this_process_under_the_real_proc() -> None:
    assert peer.ancestry(os.getpid())[0] == os.getpid()
    assert os.getppid() in peer.ancestry(os.getpid()) or os.getppid() == 1
