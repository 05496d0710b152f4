"""A real mosquitto on loopback for tests: its own folder and port, stopped by its PID.

Debian's package (``/usr/sbin/mosquitto``); tests that need it skip, saying
so, where it is missing. Readiness and every client connect are read from
its log as they happen, so tests wait on events, never on sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from tests.pki import Pki

MOSQUITTO = shutil.which("mosquitto") or shutil.which("/usr/sbin/mosquitto")
PASSWD = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
needs_mosquitto = pytest.mark.skipif(
    MOSQUITTO is None, reason="mosquitto is not installed (Debian: apt-get install mosquitto)"
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Mosquitto:
    """One broker; ``tls`` makes it require client certificates from that PKI's CA."""

    def __init__(
        self, folder: Path, *, tls: Pki | None = None, max_packet: int = 0, quiet: bool = False
    ):
        self.folder, self.tls, self.max_packet = folder, tls, max_packet
        #: User names and passwords the broker checks (a client with no user name is let in).
        self.passwords: dict[str, str] = {}
        #: No line per client connect (a benchmark's 10,000).
        self.quiet = quiet
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o755)
        self.port = free_port()
        self.log: list[str] = []
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._seen = asyncio.Condition()

    @property
    def url(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://127.0.0.1:{self.port}"

    def _config(self) -> Path:
        lines = [
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous true",
            "persistence false",
            "log_dest stderr",
            *(f"log_type {kind}" for kind in ("error", "warning", "notice", "information")),
            f"connection_messages {'false' if self.quiet else 'true'}",
            "user root",
        ]
        if self.max_packet:
            lines.append(f"max_packet_size {self.max_packet}")
        if self.passwords:
            lines.append(f"password_file {self._password_file()}")
        if self.tls is not None:
            cert, key = self.tls.issue("localhost")
            lines += [f"cafile {self.tls.ca_file}", f"certfile {cert}", f"keyfile {key}"]
            lines += ["require_certificate true", "use_identity_as_username true"]
        path = self.folder / "mosquitto.conf"
        path.write_text("\n".join(lines) + "\n")
        return path

    def _password_file(self) -> Path:
        path = self.folder / "passwords"
        path.unlink(missing_ok=True)
        for user, password in self.passwords.items():
            create = [] if path.exists() else ["-c"]
            subprocess.run([PASSWD, *create, "-b", str(path), user, password], check=True)
        return path

    async def start(self) -> Mosquitto:
        assert MOSQUITTO is not None
        self._proc = await asyncio.create_subprocess_exec(
            MOSQUITTO, "-c", str(self._config()), stderr=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        self.log.clear()
        self._reader = asyncio.ensure_future(self._read())
        await self.wait_for("running")
        return self

    async def _read(self) -> None:
        assert self._proc is not None and self._proc.stderr is not None
        async for line in self._proc.stderr:
            async with self._seen:
                self.log.append(line.decode(errors="replace").rstrip())
                self._seen.notify_all()

    async def wait_for(self, text: str, count: int = 1, within: float = 20.0) -> None:
        """Until ``count`` log lines since the start contain ``text``."""
        async with self._seen:
            await asyncio.wait_for(self._seen.wait_for(lambda: self.seen(text) >= count), within)

    async def settled(self) -> None:
        """Until every log line the broker wrote before now has been read: a connection
        of the test's own is logged after them (one thread writes the log in order)."""
        assert not self.quiet, "a quiet broker logs no connections"
        _, writer = await asyncio.open_connection("127.0.0.1", self.port)
        port = writer.get_extra_info("sockname")[1]
        try:
            await self.wait_for(f"127.0.0.1:{port} ")
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    def seen(self, text: str) -> int:
        return sum(text in line for line in self.log)

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    async def stop(self) -> None:
        if self._proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            self._proc.terminate()
        await self._proc.wait()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)
        self._proc = None

    async def restart(self) -> None:
        await self.stop()
        await self.start()
