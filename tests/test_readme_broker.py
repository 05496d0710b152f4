"""README "Pointing a locker at a broker", followed as written: its commands run (a broker,
the reference back office serving it), the demo's config edited as it says, and the demo
syncs through the broker.

Only what would collide with other runs on this machine is the test's: free ports for
1883 and 8090, its own folder for /tmp/sync.token, and mosquitto's full path.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shlex
import sys
import time
from pathlib import Path

import aiohttp

from tests.broker import MOSQUITTO, free_port, needs_mosquitto
from tests.daemon import Daemon

ROOT = Path(__file__).resolve().parent.parent
SECTION = "### Pointing a locker at a broker"


def section() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index(SECTION)
    end = re.search(r"\n##+ ", text[start + len(SECTION) :])
    return text[start : start + len(SECTION) + end.start()] if end else text[start:]


def commands(prose: str) -> list[str]:
    """The lines of the section's last shell block (the one to try it with)."""
    blocks = re.findall(r"```sh\n(.*?)```", prose, re.S)
    return [line for line in blocks[-1].splitlines() if line.strip()]


def demo_with_sync(prose: str) -> str:
    """config/demo.toml edited as the section says."""
    wanted = (
        "uncomment the `[sync]` block at the end of `config/demo.toml`",
        'put `transport = "mqtt"`',
        'set `url = "mqtt://127.0.0.1:1883"`',
    )
    flat = " ".join(prose.split())
    for step in wanted:
        assert step in flat, f"README no longer says to {step}"
    lines = (ROOT / "config" / "demo.toml").read_text().splitlines()
    start = lines.index("# [sync]")
    block = [line.removeprefix("# ") for line in lines[start:]]
    assert all(line and not line.startswith("#") for line in block), block
    block.insert(1, 'transport = "mqtt"')
    block = [re.sub(r'^url = "[^"]*"', 'url = "mqtt://127.0.0.1:1883"', line) for line in block]
    return "\n".join(lines[:start] + block) + "\n"


@needs_mosquitto
async def test_the_broker_walkthrough_syncs_the_demo_as_written(tmp_path) -> None:
    prose = section()
    broker_port, office_port = free_port(), free_port()
    token = tmp_path / "sync.token"

    def ours(text: str) -> str:
        text = text.replace("1883", str(broker_port)).replace(
            "--port 8090", f"--port {office_port}"
        )
        text = text.replace("/tmp/sync.token", str(token))
        return text.replace(".venv/bin/lockerd", f"{sys.executable} -m lockerd")

    started: list[asyncio.subprocess.Process] = []
    config = tmp_path / "demo.toml"
    config.write_text(ours(demo_with_sync(prose)))
    try:
        for line in commands(prose):
            echoed = re.fullmatch(r"echo (\S+) > (\S+)", ours(line))
            if echoed:
                Path(echoed[2]).write_text(echoed[1] + "\n")  # noqa: ASYNC240 (small, local)
                continue
            argv = shlex.split(ours(line).removesuffix("&"))
            if argv[0] == "mosquitto":
                argv[0] = str(MOSQUITTO)
            started.append(await _start(argv, cwd=tmp_path))
        async with Daemon(config, "--state-dir", str(tmp_path / "state")):
            shown = await _until_synced(f"http://127.0.0.1:{office_port}", started)
    finally:
        for process in started:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
            await process.wait()
    assert shown["presence"]["online"] is True
    assert any(e["type"] == "heartbeat" for e in shown["events"])


async def _start(argv: list[str], cwd: Path) -> asyncio.subprocess.Process:
    """Run in ``cwd`` (the back office keeps back-office.db there) with this checkout's code."""
    return await asyncio.create_subprocess_exec(
        *argv, cwd=cwd, env=dict(os.environ, PYTHONPATH=str(ROOT)),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip


async def _until_synced(office: str, started: list[asyncio.subprocess.Process]) -> dict:
    """The back office's view of the demo locker once it shows a heartbeat (asked again
    while it does not, for at most 30 s; a process that exited fails at once)."""
    deadline = time.monotonic() + 30
    async with aiohttp.ClientSession() as http:
        while True:
            for process in started:
                assert process.returncode is None, f"exited: {process}"
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(f"{office}/control/lockers/demo-locker-1") as response:
                    shown = await response.json()
                if shown["presence"] and any(e["type"] == "heartbeat" for e in shown["events"]):
                    return shown
            assert time.monotonic() < deadline, "the demo did not sync through the broker"
            await asyncio.sleep(0.2)
