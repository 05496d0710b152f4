"""The state folder on disk: private modes, and one daemon per folder.

The folder is 0700 and every file in it 0600 (database, WAL, shared-memory
index, device key): nothing in it is for anyone but the daemon's user.
Looser modes (a folder made by hand, a database from an older lockerd) are
tightened at start, with a warning; a folder or file the daemon may not
chmod stops the start with the path named.
"""

from __future__ import annotations

import fcntl
import logging
import os
import stat
from pathlib import Path

from lockerd.errors import StoreError

log = logging.getLogger(__name__)

FOLDER_MODE = 0o700
FILE_MODE = 0o600
LOCK_NAME = "lockerd.lock"


def private_folder(path: Path) -> None:
    """Create ``path`` (0700) or tighten it to 0700."""
    try:
        path.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
        _tighten(path, FOLDER_MODE)
    except OSError as exc:
        raise StoreError(f"{path}: cannot make the state folder private: {exc.strerror}") from exc


def private_file(path: Path) -> None:
    """Create ``path`` empty (0600) if missing, or tighten an existing one to 0600."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE))
        _tighten(path, FILE_MODE)
    except OSError as exc:
        raise StoreError(f"{path}: cannot make the file private: {exc.strerror}") from exc


def private_key(path: Path) -> None:
    """The device key: tightened to 0600 if it is ours; another owner's (say root:lockerd
    0640 in /etc/lockerd) is accepted unless every user may read it."""
    try:
        info = path.stat()
    except OSError as exc:
        raise StoreError(f"{path}: cannot read the device key: {exc.strerror}") from exc
    if info.st_uid == os.geteuid():
        private_file(path)
    elif info.st_mode & 0o007:
        raise StoreError(f"{path}: the device key is readable by every user; chmod o-rwx it")


def tighten_if_present(path: Path) -> None:
    if path.exists():
        private_file(path)


def _tighten(path: Path, wanted: int) -> None:
    now = stat.S_IMODE(path.stat().st_mode)
    if now & ~wanted:
        os.chmod(path, now & wanted)
        log.warning("%s was mode %04o; now %04o (it holds secrets)", path, now, now & wanted)


class StateLock:
    """An exclusive ``flock`` on ``lockerd.lock`` in the state folder, held while running.

    The kernel drops it when the holder exits, however it exits, so a crashed
    daemon never blocks the next start. The file holds the holder's pid, for
    the refusal's message only.
    """

    def __init__(self, fd: int, path: Path):
        self._fd = fd
        self.path = path

    @classmethod
    def acquire(cls, folder: Path) -> StateLock:
        private_folder(folder)
        path = folder / LOCK_NAME
        fd = os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise StoreError(
                f"{folder} is in use by another lockerd (pid {holder}); stop it first, "
                "or give this one its own state.directory"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return cls(fd, path)

    def release(self) -> None:
        if self._fd >= 0:
            os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing drops the flock
            self._fd = -1
