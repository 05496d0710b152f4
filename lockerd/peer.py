"""Where a control-socket client is: over SSH (from which address) or at the locker itself.

The daemon works it out from the peer process (``SO_PEERCRED`` gives its pid),
never from what the client says. It walks the process's ancestry in
``/proc``:

- with an ``sshd`` (or ``sshd-session``) ancestor, the session is remote: the
  address is ``SSH_CONNECTION`` as sshd set it in its child's environment, or
  else the host utmp records for that session (the daemon may not read the
  environment of another user's process; utmp is readable by everyone);
- without one, the nearest ``SSH_CONNECTION`` in the ancestry's environments
  (an SSH session whose sshd this daemon cannot see, as in a container), or
  ``local``.

A local user can make a command look remote (by setting ``SSH_CONNECTION``
with no sshd above it), never a remote one look local or come from another
address: sshd's own child environment and utmp are not the client's to set.
"""

from __future__ import annotations

import struct
from pathlib import Path

PROC = Path("/proc")
UTMP = Path("/run/utmp")
SSHD = ("sshd", "sshd-session")
#: glibc's struct utmp on Linux (384 bytes): type, pid, line, id, user, host, the rest.
_UTMP = struct.Struct("<hxxi32s4s32s256s52x")
_USER_PROCESS = 7
_MAX_DEPTH = 64


def origin(pid: int, proc: Path = PROC, utmp: Path = UTMP) -> str:
    """``ssh from ADDRESS``, ``ssh (address unknown)`` or ``local`` for process ``pid``."""
    chain = ancestry(pid, proc)
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
