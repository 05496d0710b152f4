"""Start ``lockerd run`` as a real process and talk to it over HTTP and the event stream."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import aiohttp

from tests import event_schemas

ROOT = Path(__file__).resolve().parent.parent
READY = "ready: kiosk at "


class Daemon:
    def __init__(self, config: Path, *args: str):
        self.config = config
        self.args = args
        self.url = ""
        self.proc: asyncio.subprocess.Process | None = None
        self.http: aiohttp.ClientSession | None = None
        self.output: list[str] = []
        self._line = asyncio.Event()

    async def __aenter__(self) -> Daemon:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "lockerd",
            "run",
            str(self.config),
            "--port",
            "0",
            *self.args,
            cwd=ROOT,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        self.url = await asyncio.wait_for(self._ready(), timeout=30)
        self.http = aiohttp.ClientSession(base_url=self.url)
        return self

    async def _ready(self) -> str:
        assert self.proc is not None and self.proc.stdout is not None
        while line := (await self.proc.stdout.readline()).decode():
            self.output.append(line)
            if READY in line:
                asyncio.get_running_loop().create_task(self._drain())
                return line.split(READY, 1)[1].strip()
        raise RuntimeError("lockerd exited before it was ready:\n" + "".join(self.output))

    async def _drain(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        while line := (await self.proc.stdout.readline()).decode():
            self.output.append(line)
            self._line.set()

    async def printed(self, text: str, within: float = 30) -> str:
        """Until a line of its output contains ``text``; that line."""
        async with asyncio.timeout(within):
            while True:
                self._line.clear()
                for line in self.output:
                    if text in line:
                        return line
                await self._line.wait()

    async def stop(self) -> int:
        assert self.proc is not None
        if self.http is not None:
            await self.http.close()
            self.http = None
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(self.proc.wait(), timeout=15)
        if "--state-dir" in self.args:  # its events are held to their schemas too
            state = Path(self.args[self.args.index("--state-dir") + 1])
            event_schemas.journal_of(state / "lockerd.db")
        return self.proc.returncode or 0

    async def kill(self) -> None:
        """SIGKILL: no clean-up at all, as a power cut or the OOM killer would."""
        assert self.proc is not None
        self.proc.kill()
        await asyncio.wait_for(self.proc.wait(), timeout=15)
        await self.stop()

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()

    async def call(
        self, method: str, path: str, body: Any = None, token: str | None = None
    ) -> tuple[int, Any]:
        assert self.http is not None
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        data = None if body is None else (body if isinstance(body, str) else json.dumps(body))
        if data is not None:  # as the kiosk page sends it
            headers["Content-Type"] = "application/json"
        async with self.http.request(method, path, data=data, headers=headers) as response:
            return response.status, await response.json()

    async def sim_bank(self, until: Any, within: float = 10) -> list[dict[str, Any]]:
        """The demo bank's compartments (``/api/demo/bank``) once ``until(compartments)`` holds,
        read again and again until it does: the simulators say what a person at the bank
        would see, such as a latch catching again when its pulse ends (no event says so)."""

        async def settled() -> list[dict[str, Any]]:
            while True:
                _, bank = await self.call("GET", "/api/demo/bank")
                if until(bank["compartments"]):
                    return list(bank["compartments"])
                await asyncio.sleep(0.02)

        return await asyncio.wait_for(settled(), within)

    async def drop_off(self, barcode: str) -> str:
        """A courier drops a parcel off on the demo's simulated doors, which spring ajar as
        their latch releases (``demo.door_springs``); its compartment."""
        events = await self.events(after=0)
        _, login = await self.call("POST", "/api/courier/login", {"code": "1234"})
        _, flow = await self.call("POST", "/api/dropoffs", {"barcode": barcode}, login["token"])
        await events.flow(flow["id"], "open")
        await self.call("POST", f"/api/demo/doors/{flow['compartment']}/close")
        await events.flow(flow["id"], "stored")
        await events.close()
        return str(flow["compartment"])

    async def events(self, after: int = 0) -> EventStream:
        assert self.http is not None
        ws = await self.http.ws_connect(f"/api/events?after={after}")
        hello = await ws.receive_json(timeout=10)
        assert hello["type"] == "hello"
        return EventStream(ws)


class EventStream:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse):
        self.ws = ws
        self.seen: list[dict[str, Any]] = []

    async def wait_for(self, predicate: Any, within: float = 15) -> dict[str, Any]:
        """The first message (already seen or coming) that matches, within ``within`` seconds."""
        for message in self.seen:
            if predicate(message):
                return message

        async def next_match() -> dict[str, Any]:
            while True:
                message = await self.ws.receive_json()
                self.seen.append(message)
                if predicate(message):
                    return message

        return await asyncio.wait_for(next_match(), within)

    async def event(self, kind: str, **data: Any) -> dict[str, Any]:
        return await self.wait_for(
            lambda m: (
                m.get("type") == kind
                and all(m.get("data", {}).get(k) == v for k, v in data.items())
            )
        )

    async def flow(self, flow_id: str, state: str) -> dict[str, Any]:
        return await self.wait_for(
            lambda m: (
                m.get("type") == "flow.updated"
                and m["flow"]["id"] == flow_id
                and m["flow"]["state"] == state
            )
        )

    async def close(self) -> None:
        await self.ws.close()
