"""Where a control-socket client is: over SSH (from which address), at the locker, or unknown.

The daemon works it out from the peer process (``SO_PEERCRED`` gives its pid),
right after it accepts the connection and never from what the client says.
The daemon runs as its own user and may not read other users' environments,
so it goes by what a user cannot shed:

1. The process's cgroup (``/proc/PID/cgroup``), which ``setsid`` and
   re-parenting leave as it was. In a logind session's scope
   (``/user.slice/user-UID.slice/session-ID.scope``) the session's file
   ``/run/systemd/sessions/ID`` (world-readable) decides: ``REMOTE=1`` is
   ``ssh from REMOTE_HOST`` (``ssh (address unknown)`` without one), else
   ``local``. Elsewhere in a user's slice (``user@UID.service``, as
   ``systemd-run --user`` starts it) the origin is ``unknown (user
   service)``. In sshd's own service cgroup (an sshd without logind
   sessions) it is an SSH login, its address found as in 2.
2. Otherwise (a system service, no systemd, a session file missing), its
   ancestry in ``/proc``: with an ``sshd`` (or ``sshd-session``) ancestor it
   is remote, from ``SSH_CONNECTION`` as sshd set it in its child's
   environment, or else the host utmp records for that session (readable by
   everyone); without one, the nearest ``SSH_CONNECTION`` in the ancestry's
   environments (an SSH session whose sshd this daemon cannot see, as in a
   container), or ``local``.

When the process is gone (it connected, handed the socket to a child and
exited), or sits in a session scope with no session file and no ancestry
back into the session (re-parented away), :class:`OriginUnknown` is raised
and the request refused.

A local user can make a command look remote (by setting ``SSH_CONNECTION``
with no sshd above it), never a remote one look local or come from another
address: the cgroup, logind's session files, sshd's own child environment
and utmp are not the client's to set.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path

PROC = Path("/proc")
UTMP = Path("/run/utmp")
SESSIONS = Path("/run/systemd/sessions")
USER_SERVICE = "unknown (user service)"
SSHD = ("sshd", "sshd-session")
#: glibc's struct utmp on Linux (384 bytes): type, pid, line, id, user, host, the rest.
_UTMP = struct.Struct("<hxxi32s4s32s256s52x")
_USER_PROCESS = 7
_MAX_DEPTH = 64


_SCOPE = re.compile(r"/user\.slice/user-\d+\.slice/session-([A-Za-z0-9]+)\.scope(?:/|$)")
_USER = re.compile(r"/user\.slice/user-\d+\.slice(?:/|$)")
_SSHD_UNIT = re.compile(r"/(?:sshd?\.service|sshd@[^/]*\.service)(?:/|$)")


class OriginUnknown(Exception):
    """Where the peer is cannot be told: the request is refused, not taken as local."""


def origin(pid: int, proc: Path = PROC, utmp: Path = UTMP, sessions: Path = SESSIONS) -> str:
    """``ssh from ADDRESS``, ``ssh (address unknown)``, ``local`` or ``unknown (user service)``.

    Raises :class:`OriginUnknown` when process ``pid`` is gone or has left its session.
    """
    if pid <= 0:
        raise OriginUnknown("no process: the peer is in another pid namespace")
    if not _alive(proc, pid):
        raise OriginUnknown(f"process {pid} is gone")
    group = cgroup(proc, pid)
    scope = _SCOPE.search(group) if group else None
    if scope:
        fields = session_fields(sessions, scope.group(1))
        if fields is not None:
            if fields.get("REMOTE") != "1":
                return "local"
            host = fields.get("REMOTE_HOST", "")
            return f"ssh from {host}" if host else "ssh (address unknown)"
    elif group and _USER.search(group):
        return USER_SERVICE
    chain = ancestry(pid, proc)
    if scope and not any(_leads_here(proc, p, group) for p in chain[1:]):
        # No session file, and no parent in its scope: re-parented away from the session.
        raise OriginUnknown(f"process {pid} left its session ({group})")
    found = _from_ancestry(proc, chain, utmp)
    if found == "local" and group and _SSHD_UNIT.search(group):
        return "ssh (address unknown)"
    return found


def _from_ancestry(proc: Path, chain: list[int], utmp: Path) -> str:
    sshd = next((i for i, p in enumerate(chain) if _comm(proc, p) in SSHD), None)
    if sshd is None:
        for p in chain:
            address = _ssh_address(proc, p)
            if address:
                return f"ssh from {address}"
        return "local"
    address = _ssh_address(proc, chain[sshd - 1]) if sshd > 0 else None
    hosts = utmp_hosts(utmp)
    address = address or next((hosts[p] for p in chain[sshd:] if p in hosts), None)
    return f"ssh from {address}" if address else "ssh (address unknown)"


def _leads_here(proc: Path, pid: int, group: str) -> bool:
    """Whether ancestor ``pid`` is in the same cgroup, or is sshd (the session's start)."""
    return cgroup(proc, pid) == group or _comm(proc, pid) in SSHD


def _alive(proc: Path, pid: int) -> bool:
    try:
        stat = (proc / str(pid) / "stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")  # not a zombie


def cgroup(proc: Path, pid: int) -> str:
    """The process's cgroup path: the unified hierarchy's, or systemd's under cgroup v1."""
    try:
        lines = (proc / str(pid) / "cgroup").read_text().splitlines()
    except OSError:
        return ""
    paths = {}
    for line in lines:
        _, controllers, path = line.split(":", 2) if line.count(":") >= 2 else ("", "-", "")
        paths[controllers] = path
    systemd = paths.get("name=systemd", "")
    unified = paths.get("", "")
    return systemd if systemd not in ("", "/") else unified


def session_fields(folder: Path, sid: str) -> dict[str, str] | None:
    """A logind session's file (``KEY=VALUE`` lines), or None if there is none."""
    try:
        text = (folder / sid).read_text()
    except OSError:
        return None
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and not key.startswith("#"):
            fields[key.strip()] = value.strip()
    return fields


def ancestry(pid: int, proc: Path = PROC) -> list[int]:
    """``pid`` and its parents, nearest first, up to (not including) pid 1."""
    chain: list[int] = []
    while pid > 1 and len(chain) < _MAX_DEPTH and pid not in chain:
        chain.append(pid)
        pid = _parent(proc, pid)
    return chain


def _parent(proc: Path, pid: int) -> int:
    try:
        stat = (proc / str(pid) / "stat").read_text()
    except OSError:
        return 0
    # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
    return int(stat.rpartition(")")[2].split()[1])


def _comm(proc: Path, pid: int) -> str:
    try:
        return (proc / str(pid) / "comm").read_text().strip()
    except OSError:
        return ""


def _ssh_address(proc: Path, pid: int) -> str | None:
    try:
        environ = (proc / str(pid) / "environ").read_bytes()
    except OSError:  # another user's process: not ours to read
        return None
    for entry in environ.split(b"\0"):
        if entry.startswith(b"SSH_CONNECTION="):
            address = entry.partition(b"=")[2].split(b" ")[0].decode(errors="replace")
            return address or None
    return None


def utmp_hosts(path: Path = UTMP) -> dict[int, str]:
    """The remote host of each logged-in session, by the pid that logged it in."""
    try:
        data = path.read_bytes()
    except OSError:
        return {}
    hosts = {}
    for start in range(0, len(data) - _UTMP.size + 1, _UTMP.size):
        kind, pid, _, _, _, host = _UTMP.unpack_from(data, start)
        host = host.split(b"\0")[0].decode(errors="replace")
        if kind == _USER_PROCESS and host:
            hosts[pid] = host
    return hosts
