"""The systemd units: they parse, and they keep the privileges where the README says."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
UNITS = ROOT / "systemd"


def settings(name: str) -> dict[str, list[str]]:
    """``key -> values`` of a unit file, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", (UNITS / name).read_text())
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            out.setdefault(key.strip(), []).append(value.strip())
    return out


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
@pytest.mark.parametrize("name", ["lockerd.service", "lockerd-kiosk.service"])
def test_systemd_analyze_verifies_the_unit(tmp_path, name) -> None:
    # Programs that are not installed here stand in as /bin/true; everything else is as shipped.
    text = re.sub(r"(Exec\w+=)(/\S+)", r"\1/bin/true", (UNITS / name).read_text())
    unit = tmp_path / name
    unit.write_text(text)
    done = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr


def offline_security() -> str | None:
    """Why ``systemd-analyze security --offline=yes`` cannot score a unit file here, or None."""
    if shutil.which("systemd-analyze") is None:
        return "no systemd-analyze here"
    done = subprocess.run(
        ["systemd-analyze", "security", "--help"], capture_output=True, text=True, check=False
    )
    if "--offline" not in done.stdout:
        return "this systemd-analyze has no --offline (systemd 250 or later has)"
    return None


def exposure(unit: Path) -> float:
    done = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", "--no-pager", str(unit)],
        capture_output=True,
        text=True,
        check=False,
    )
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", done.stdout)
    assert found, done.stdout + done.stderr
    return float(found.group(1))


@pytest.mark.skipif(offline_security() is not None, reason=str(offline_security()))
@pytest.mark.parametrize("name", ["lockerd.service", "lockerd-kiosk.service"])
def test_systemd_scores_each_unit_exposure_at_most_4(name) -> None:
    # systemd's own scale: 0 (tight) .. 10 (unprotected); "OK" ends at 4.9. The units
    # README shows the figures; each hardening choice is explained in the unit.
    assert exposure(UNITS / name) <= 4.0


def test_the_kiosk_keeps_chromium_sandboxed_and_on_loopback() -> None:
    kiosk = settings("lockerd-kiosk.service")
    command = kiosk["ExecStart"][0]
    assert "--no-sandbox" not in command
    # The namespace sandbox needs exactly these; every other kind stays refused.
    assert kiosk["RestrictNamespaces"] == ["user pid net"]
    assert kiosk["IPAddressDeny"] == ["any"] and kiosk["IPAddressAllow"] == ["localhost"]
    devices = {"char-drm rw", "char-input rw", "char-alsa rw", "/dev/tty1 rw"}
    assert devices == set(kiosk["DeviceAllow"])  # the GPU, touch, sound (spoken prompts), tty
    assert kiosk["PAMName"] == ["login"] and kiosk["TTYPath"] == ["/dev/tty1"]
    assert "MemoryDenyWriteExecute" not in kiosk and "PrivateDevices" not in kiosk
    # ProtectHome=yes would make /run/user, and so the Wayland socket, inaccessible.
    assert kiosk["ProtectHome"] == ["tmpfs"] and kiosk["BindPaths"] == ["/run/user"]


def test_the_kiosk_may_play_spoken_prompts() -> None:
    """Read aloud plays audio (docs/kiosk-api.md, "Spoken prompts"): the sound card is
    allowed, and Chromium plays it whether or not the screen was touched since it loaded."""
    kiosk = settings("lockerd-kiosk.service")
    assert "char-alsa rw" in kiosk["DeviceAllow"] and kiosk["DevicePolicy"] == ["closed"]
    assert " --autoplay-policy=no-user-gesture-required " in kiosk["ExecStart"][0]


def test_the_kiosk_runs_chromium_as_an_unprivileged_user_on_loopback() -> None:
    kiosk = settings("lockerd-kiosk.service")
    assert kiosk["User"] == ["kiosk"]
    assert "SupplementaryGroups" not in kiosk and "Group" not in kiosk
    command = kiosk["ExecStart"][0]
    assert command.startswith("/usr/bin/cage ") and " --kiosk " in command
    assert command.endswith("http://127.0.0.1:8080/")
    assert kiosk["Conflicts"] == ["getty@tty1.service"]
    assert "lockerd.service" in kiosk["After"][0]


def test_the_daemon_may_reach_the_scanners() -> None:
    daemon = settings("lockerd.service")
    groups = daemon["SupplementaryGroups"][0].split()
    assert {"dialout", "gpio", "i2c", "video", "input"} <= set(groups)
    assert {"char-video4linux rw", "char-input rw"} <= set(daemon["DeviceAllow"])
    assert daemon["User"] == ["lockerd"]


def test_the_daemon_unit_notifies_and_has_a_watchdog() -> None:
    daemon = settings("lockerd.service")
    assert daemon["Type"] == ["notify"] and daemon["WatchdogSec"] == ["20s"]
    assert daemon["Restart"] == ["on-failure"] and daemon["WorkingDirectory"] == ["/run/lockerd"]
    assert daemon["StateDirectoryMode"] == ["0700"]


@pytest.mark.skipif(
    shutil.which("systemd-sysusers") is None or shutil.which("systemd-tmpfiles") is None,
    reason="no systemd-sysusers or systemd-tmpfiles here",
)
def test_sysusers_and_tmpfiles_make_the_users_and_folders(tmp_path) -> None:
    (tmp_path / "etc").mkdir()
    for tool, name in [
        ("systemd-sysusers", "lockerd.sysusers"),
        ("systemd-tmpfiles", "lockerd.tmpfiles"),
    ]:
        extra = ["--create"] if tool == "systemd-tmpfiles" else []
        done = subprocess.run(
            [tool, f"--root={tmp_path}", *extra, str(UNITS / name)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
    groups = {
        line.split(":")[0]: set(filter(None, line.split(":")[3].split(",")))
        for line in (tmp_path / "etc" / "group").read_text().splitlines()
    }
    hardware = {"dialout", "gpio", "i2c", "video", "input"}
    assert all("lockerd" in groups[g] for g in hardware)
    assert not any("kiosk" in members for members in groups.values())
    state = tmp_path / "var" / "lib" / "lockerd"
    # The state folder is the daemon's alone: lockerd would tighten a looser one at start.
    assert state.is_dir() and oct(state.stat().st_mode & 0o777) == "0o700"
