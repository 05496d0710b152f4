"""The daemon imports only what its config uses (issue 16: start-up time and memory).

Each case serves the daemon as ``lockerd run`` does (``lockerd.daemon.serve``:
store, buses, scanners, sync, the kiosk and the control socket) in a fresh
interpreter until it is ready, stops it, and reads that interpreter's
``sys.modules``, as someone measuring the start-up would. numpy comes only
with a camera or its twin, the sync client only with sync (aiohttp's own
client comes with the ``aiohttp.web`` the kiosk serves with), paho only with
MQTT sync, pymodbus only with a Modbus bus, gpiozero only with GPIO.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests import families

WATCHED = ("numpy", "cv2", "lockerd.sync.client", "paho.mqtt.client", "pymodbus", "gpiozero")

PROBE = """
import asyncio, json, os, signal, sys
from pathlib import Path
from lockerd.config import load
from lockerd.daemon import serve

def ready(line):  # stop once ready, as SIGTERM from systemd would
    asyncio.get_running_loop().call_soon(os.kill, os.getpid(), signal.SIGTERM)

asyncio.run(serve(load(Path(sys.argv[1])), ready))
print(json.dumps(sorted(m for m in json.loads(sys.argv[2]) if m in sys.modules)))
"""


def imported(tmp_path: Path, data: dict[str, Any], watched: tuple[str, ...] = WATCHED) -> set[str]:
    """The ``watched`` modules a daemon started on ``data`` has imported."""
    path = tmp_path / "locker.toml"
    path.write_text(families.text(data))
    args = [sys.executable, "-c", PROBE, str(path), json.dumps(watched)]
    done = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.splitlines()[-1]))


def with_sync(tmp_path: Path, data: dict[str, Any], **section: str) -> dict[str, Any]:
    token = tmp_path / "sync.token"
    token.write_text("a-token\n")
    data["sync"] = {"token_file": str(token), **section}
    return data


def test_a_bank_of_serial_boards_imports_none_of_the_optional_stacks(tmp_path) -> None:
    assert imported(tmp_path, families.bank(tmp_path)) == set()


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ("modbus", {"pymodbus"}),
        ("gpio", {"gpiozero"}),
        ("camera twin", {"numpy"}),
        ("serial scanner twin", set()),
        ("https sync", {"lockerd.sync.client"}),
        ("mqtt sync", {"lockerd.sync.client", "paho.mqtt.client"}),
    ],
)
def test_each_stack_comes_with_the_config_that_uses_it(tmp_path, change, expected) -> None:
    data = configured(tmp_path, change)
    assert imported(tmp_path, data) == expected


def configured(tmp_path: Path, change: str) -> dict[str, Any]:
    if change in ("modbus", "gpio"):
        return families.bank(tmp_path, family={"modbus": "modbus-rtu", "gpio": "gpio"}[change])
    data = families.bank(tmp_path)
    if change == "camera twin":
        data["scanner"] = [{"name": "cam", "type": "camera", "simulator": True}]
    elif change == "serial scanner twin":
        data["scanner"] = [{"name": "wand", "type": "serial", "simulator": True}]
    elif change == "https sync":
        with_sync(tmp_path, data, url="https://127.0.0.1:9")
    else:
        with_sync(tmp_path, data, transport="mqtt", url="mqtts://127.0.0.1:9")
    return data


def test_a_bank_on_a_real_port_imports_no_board_twin(tmp_path) -> None:
    data = families.bank(tmp_path)
    for bus in data["bus"]:
        bus.pop("simulator", None)
        bus["port"] = "loop://"  # a port with no board behind it: the boards stay silent
    twins = ("drivers.simserial", "drivers.simworld", "drivers.kerong.sim")
    assert imported(tmp_path, data, twins) == set()
