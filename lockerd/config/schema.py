"""The config model: one frozen dataclass per TOML section.

Every field carries its doc line; ``docs/config-reference.md`` documents the
same keys with their defaults and units. A ``[[board]]`` section is its
family's (``lockerd/families/``), chosen by its bus's ``protocol``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from lockerd.config._typed import opt
from lockerd.families.base import BoardConfig


def _protocols() -> tuple[str, ...]:
    """The protocols of the registered families (looked up when a config is read)."""
    from lockerd.families import PROTOCOLS

    return PROTOCOLS


Right = Literal["deliver", "collect"]

#: The most lock or input channels any supported board has (a Modbus relay board: 64).
CHANNEL_MAX = 64


@dataclass(frozen=True)
class LockerSection:
    id: str = opt(doc="this locker's identifier, as the back office knows it")
    name: str = opt("", doc="a human name for screens and logs")
    support: str = opt(
        "",
        doc="who to call when a door cannot be opened (shown on every dead-end kiosk screen,"
        " e.g. a phone number); check-config warns when it is not set",
    )


@dataclass(frozen=True)
class StateSection:
    directory: str = opt(doc="folder for the database (relative paths: from the config file)")
    key_file: str = opt(
        "",
        doc="device key file: code HMACs, sealed codes awaiting delivery, the audit chain's"
        " keyed links (default: device.key in the state directory)",
    )


@dataclass(frozen=True)
class KioskSection:
    host: str = opt(
        "127.0.0.1",
        doc="address the kiosk API listens on: loopback only (127.0.0.1, ::1, localhost)",
    )
    port: int = opt(8080, doc="TCP port of the kiosk API", min=0, max=65535)
    demo: bool = opt(False, doc="serve the demo page and the simulated-door endpoints")
    idle_s: float = opt(
        60.0,
        doc="the page goes home (ending a courier's session) after this idle (three times"
        ' this with the kiosk\'s "More time")',
        min=10,
        max=3600,
    )
    language: str = opt("en", doc="the page's language at start and after each idle timeout")
    speech_renderer: str = opt(
        "espeak-ng",
        doc="the program that renders the page's spoken prompts where the browser has no"
        ' voice (a name on PATH or a path; "": none)',
    )


@dataclass(frozen=True)
class TimingSection:
    door_open_timeout_s: float = opt(
        20.0,
        doc="a pulsed door must be seen open within this (three times this for a person who"
        ' asked for more time: docs/kiosk-api.md "More time")',
        min=1,
        max=300,
    )
    pickup_door_open_s: float = opt(
        5.0,
        doc="a resident's pulsed door must be seen open within this, else the pickup ends and"
        " the parcel stays (its code opens it again; the status-checked re-pulse runs when the"
        " resident says it did not open): the latch catches again when the energize time (at"
        " most safety.max_pulse_ms) ends, so a longer wait only keeps the resident waiting"
        " (three times this for a resident who asked for more time: the time to reach the"
        " door and say it did not open)",
        min=2,
        max=60,
    )
    door_left_open_s: float = opt(
        120.0, doc="a door open longer than this raises an alarm", min=5, max=86400
    )
    poll_interval_ms: int = opt(200, doc="how often each bus reads its boards", min=20, max=5000)
    debounce_polls: int = opt(
        2, doc="equal reads needed before a sensor change counts", min=1, max=10
    )
    offline_after_polls: int = opt(
        3, doc="missed polls before a board counts as silent", min=1, max=100
    )
    offline_probe_s: float = opt(
        5.0,
        doc="a silent board is tried again, once, this often (not in every poll)",
        min=1,
        max=600,
    )
    fast_poll_ms: int = opt(
        20,
        doc="while a door just unlocked is awaited, its board is read this often",
        min=5,
        max=1000,
    )
    release_margin_ms: int = opt(
        300,
        doc="a door read from its lock's switch counts as opened only if the release"
        " outlasts the board's energize time by this much",
        min=50,
        max=5000,
    )
    expiry_sweep_s: float = opt(
        60.0, doc="how often parcels are checked against deadlines", min=1, max=3600
    )
    courier_idle_s: float = opt(
        300.0,
        doc="a courier session ends after this long idle (three times this for a session"
        " begun with more time)",
        min=10,
        max=3600,
    )


@dataclass(frozen=True)
class ThrottleSection:
    free_failures: int = opt(
        2, doc="wrong codes since the last completed pickup before back-off starts", min=0, max=20
    )
    backoff_base_s: float = opt(
        2.0, doc="first back-off; doubles with each failure", min=0.1, max=60
    )
    backoff_max_s: float = opt(60.0, doc="longest back-off", min=1, max=3600)
    lockout_after: int = opt(
        10,
        doc="wrong codes the keypad takes before a lock-out; each comes back lockout_s"
        " after it was typed (only time refills them)",
        min=3,
        max=100,
    )
    lockout_s: float = opt(
        900.0,
        doc="how long a lock-out lasts: one wrong code comes back this long after it was"
        " typed; sets the wrong codes a year (lockerd check-config prints the figure)",
        min=10,
        max=604800,
    )


@dataclass(frozen=True)
class PickupSection:
    code_length: int = opt(
        0,
        doc="digits in a pickup code, 6..12; 0: derived, the fewest from 8 that keep the"
        " chance of guessing a code at most 1% a year with every compartment full",
        min=0,
        max=12,
    )
    hold_hours: float = opt(72.0, doc="pickup deadline after a parcel is stored", min=1, max=2160)
    reopen_grace_s: float = opt(
        20.0,
        doc="after a pickup's door closes, the kiosk offers to open that door once more"
        " for this long (a door shut too early; three times this with more time); 0: never",
        min=0,
        max=120,
    )
    next_door_s: float = opt(
        20.0,
        doc="a pickup group (one code, several parcels): after each door closes the kiosk"
        " offers the next door for this long; nobody asks, the pickup ends and the other"
        " parcels stay stored, their code still valid (three times this with more time)",
        min=5,
        max=120,
    )
    throttle: ThrottleSection = opt(ThrottleSection(), doc="wrong-code throttling")
    qr_keys: tuple[str, ...] = opt(
        [], doc="back-office Ed25519 public keys (base64) that sign pickup QR codes"
    )


@dataclass(frozen=True)
class SyncSection:
    transport: Literal["https", "mqtt"] = opt(
        "https", doc="how sync v1 travels: HTTPS to the back office, or MQTT through a broker"
    )
    url: str = opt(
        "",
        doc="the back office's base URL (https://...), or with transport = mqtt the broker's"
        " (mqtts://host:port or wss://host:port/path); unset: no sync",
    )
    token_file: str = opt(
        "",
        doc="file holding this locker's bearer token, read at every request (required with"
        " https; with mqtt, if set, the broker password, user name the locker id)",
    )
    ca_file: str = opt(
        "", doc="CA bundle the back office's certificate must chain to (default: system)"
    )
    client_cert: str = opt(
        "", doc="client certificate (PEM) for mutual TLS, if the back office asks"
    )
    client_key: str = opt("", doc="the client certificate's private key (PEM)")
    interval_s: float = opt(15.0, doc="time between rounds while all is well", min=1, max=3600)
    batch: int = opt(500, doc="events in one push", min=100, max=5000)
    batch_bytes: int = opt(
        98304,
        doc="bytes in one push at most (a proxy answering 413 halves the batch)",
        min=4096,
        max=98304,
    )
    timeout_s: float = opt(20.0, doc="one request's time limit", min=1, max=300)
    backoff_base_s: float = opt(
        2.0, doc="first wait after a failed round; doubles", min=0.1, max=600
    )
    backoff_max_s: float = opt(300.0, doc="longest wait between failed rounds", min=1, max=86400)
    heartbeat_s: float = opt(300.0, doc="time between heartbeat events", min=10, max=86400)
    keep_acked_days: float = opt(
        30.0, doc="acknowledged events are pruned after this", min=0, max=3650
    )
    disk_budget_mb: float = opt(
        512.0,
        doc="database size that raises storage.over_budget (nothing is dropped)",
        min=1,
        max=1_000_000,
    )
    command_keys: tuple[str, ...] = opt(
        [],
        doc="back-office Ed25519 public keys that sign remote opens: each the raw 32-byte"
        " key in standard, padded base64 (44 characters)",
    )
    mqtt_version: Literal["5", "3.1.1"] = opt("5", doc="MQTT protocol version (mqtt only)")
    mqtt_keepalive_s: int = opt(
        120, doc="MQTT keep-alive (AWS IoT Core takes 30 to 1200 s)", min=30, max=1200
    )
    mqtt_first_retry_s: float = opt(
        60.0,
        doc="the window: the first reconnect after a lost broker connection is drawn"
        " uniformly within it, past its first tenth, and a failed one again over what is"
        " left of it, so a fleet comes back spread, within the window if the broker is back"
        " by then (a restart shorter than a tenth of it sees no attempt at all), else within"
        " about a window after (docs/sync-mqtt.md has figures). At least fleet size / the"
        " broker's connects per second",
        min=0,
        max=3600,
    )
    mqtt_alpn: str = opt(
        "", doc="TLS ALPN protocol to offer (AWS IoT Core on port 443: x-amzn-mqtt-ca)"
    )


@dataclass(frozen=True)
class ControlSection:
    socket: str = opt(
        "",
        doc="lockerctl's socket (default: control.sock in $RUNTIME_DIRECTORY, else the state dir)",
    )
    group: str = opt("", doc="a group whose members may use lockerctl (root always may)")


@dataclass(frozen=True)
class SafetySection:
    pulse_ms: int = opt(500, doc="lock pulse length", min=50, max=5000)
    max_pulse_ms: int = opt(1000, doc="no pulse may be longer than this", min=50, max=5000)
    cooldown_s: float = opt(3.0, doc="least time between two pulses of one lock", min=0, max=600)


@dataclass(frozen=True)
class SizeConfig:
    name: str = opt(doc="size class name (S, M, L...), listed smallest first")
    height_mm: int = opt(0, doc="inner height (0: not given)", min=0, max=3000)
    width_mm: int = opt(0, doc="inner width (0: not given)", min=0, max=3000)
    depth_mm: int = opt(0, doc="inner depth (0: not given)", min=0, max=3000)


@dataclass(frozen=True)
class PowerGroupConfig:
    name: str = opt(doc="a supply that may energize one lock at a time")
    gap_ms: int = opt(
        300, doc="least time between the end of one pulse and the next", min=0, max=1000
    )


@dataclass(frozen=True)
class BusConfig:
    name: str = opt(doc="bus name boards refer to")
    protocol: str = opt(doc="board family on this bus", choices=_protocols)
    port: str = opt("", doc="serial URL (/dev/..., a pty, socket://host:port) or an I2C bus device")
    simulator: bool = opt(False, doc="run the simulator twin on a pty instead of a port")
    baud: int = opt(19200, doc="serial baud rate", min=1200, max=921600)
    timeout_ms: int = opt(300, doc="reply timeout for one request", min=10, max=5000)
    gap_ms: int = opt(
        -1,
        doc="idle time between frames; -1: 3.5 characters at the baud rate (RS-485 frame silence)",
        min=-1,
        max=1000,
    )
    retries: int = opt(
        2, doc="status-read retries (unlocks are never retried blind)", min=0, max=10
    )
    pin_factory: str = opt("", doc="gpio: gpiozero pin factory (lgpio, rpigpio, native, mock)")
    chip_label: str = opt("", doc="gpio: find the gpiochip by this label (pinctrl-rp1 on a Pi 5)")

    @property
    def gap_s(self) -> float:
        """The idle time kept between frames: as configured, else 3.5 characters (8N1)."""
        return self.gap_ms / 1000 if self.gap_ms >= 0 else 3.5 * 10 / self.baud


@dataclass(frozen=True)
class CompartmentConfig:
    id: str = opt(doc="compartment id shown to people (A1, B3...)")
    size: str = opt(doc="size class name")
    column: int = opt(doc="column, 1 = leftmost", min=1, max=64)
    row: int = opt(doc="row, 1 = top", min=1, max=64)
    board: str = opt(doc="board that drives its lock")
    lock: int = opt(doc="lock channel on the board", min=1, max=CHANNEL_MAX)
    sensor: int = opt(0, doc="door-sensor channel (default: same as lock)", min=0, max=CHANNEL_MAX)
    sensor_board: str = opt("", doc="board that senses the door (default: the lock's board)")
    item_sensor: int = opt(
        0,
        doc="input of the item (infrared) sensor that sees a parcel inside (0: none)",
        min=0,
        max=CHANNEL_MAX,
    )
    item_board: str = opt("", doc="board whose input item_sensor is (default: the lock's board)")
    low_reach: bool = opt(False, doc="reachable from a wheelchair")

    @property
    def sensor_channel(self) -> int:
        return self.sensor or self.lock

    @property
    def door_board(self) -> str:
        return self.sensor_board or self.board

    @property
    def items_board(self) -> str:
        return self.item_board or self.board


@dataclass(frozen=True)
class ScannerConfig:
    name: str = opt(doc="scanner name, shown as the source of its scans")
    type: Literal["camera", "serial", "wedge"] = opt(
        doc="camera (V4L2), serial (CDC-ACM or UART module) or wedge (USB keyboard, evdev)"
    )
    device: str = opt(
        "", doc="camera: /dev/videoN or an index; serial: a pyserial URL; wedge: /dev/input path"
    )
    simulator: bool = opt(False, doc="camera or serial: run the simulator twin instead")
    images: tuple[str, ...] = opt([], doc="simulated camera: image files it shows at start")
    decoder: Literal["zxing", "zbar"] = opt("zxing", doc="camera: zxing (zxing-cpp) or zbar")
    formats: tuple[str, ...] = opt(
        ["qr", "code128"], doc="camera: the only symbologies looked for (each costs time)"
    )
    fps: float = opt(10.0, doc="camera: frames decoded a second at most", min=1, max=30)
    width: int = opt(640, doc="camera: frame width", min=160, max=1920)
    height: int = opt(480, doc="camera: frame height", min=120, max=1080)
    repeat_s: float = opt(
        3.0,
        doc="camera: a code in view is read again only after this long out of sight",
        min=0,
        max=3600,
    )
    baud: int = opt(9600, doc="serial: baud rate (a CDC-ACM port ignores it)", min=1200, max=921600)


@dataclass(frozen=True)
class DemoCourier:
    id: str = opt(doc="courier id")
    code: str = opt(doc="login code (demo only; real couriers come from the back office)")
    name: str = opt("", doc="display name")
    rights: tuple[Right, ...] = opt(["deliver"], doc="deliver and/or collect")
    carrier: str = opt(
        "", doc="the carrier whose parcels the courier collects ('' for none, as a back office's)"
    )


@dataclass(frozen=True)
class DemoParcel:
    barcode: str = opt(doc="tracking barcode")
    size: str = opt(doc="size class")
    recipient: str = opt("", doc="opaque recipient reference")
    group: str = opt(
        "", doc="pickup group: the parcels of one group are collected with any one of their codes"
    )


@dataclass(frozen=True)
class DemoSection:
    couriers: tuple[DemoCourier, ...] = opt([], doc="couriers seeded at start")
    expected_parcels: tuple[DemoParcel, ...] = opt([], doc="parcels announced at start")
    door_springs: bool = opt(
        False,
        doc="simulated doors spring ajar when their latch releases, as doors with a"
        " push-out spring do (otherwise a simulated person must pull them during the pulse)",
    )
    qr_signing_key: str = opt(
        "",
        doc="Ed25519 private key (base64 of 32 bytes) that signs the demo's pickup QR codes,"
        " as a back office would; its public half must be in pickup.qr_keys",
    )


@dataclass(frozen=True)
class Config:
    """The whole validated config; ``path`` is the file it came from."""

    locker: LockerSection = opt(doc="identity")
    state: StateSection = opt(doc="where state lives")
    size: tuple[SizeConfig, ...] = opt(doc="size classes, smallest first")
    power_group: tuple[PowerGroupConfig, ...] = opt(doc="lock power supplies")
    bus: tuple[BusConfig, ...] = opt(doc="buses")
    board: tuple[dict, ...] = opt(doc="boards (checked against their bus's protocol)")  # type: ignore[type-arg]
    compartment: tuple[CompartmentConfig, ...] = opt(doc="compartments")
    kiosk: KioskSection = opt(KioskSection(), doc="kiosk API")
    timing: TimingSection = opt(TimingSection(), doc="timers")
    pickup: PickupSection = opt(PickupSection(), doc="pickup codes")
    safety: SafetySection = opt(SafetySection(), doc="lock safety")
    sync: SyncSection = opt(SyncSection(), doc="back-office sync (docs/sync-protocol.md)")
    control: ControlSection = opt(ControlSection(), doc="lockerctl's control socket")
    scanner: tuple[ScannerConfig, ...] = opt([], doc="barcode and QR scanners")
    demo: DemoSection = opt(DemoSection(), doc="demo seed data")
    path: Path = opt(Path("."), doc="the file this came from", internal=True)
    boards: tuple[BoardConfig, ...] = opt((), doc="boards, typed by protocol", internal=True)

    def resolve(self, value: str) -> Path:
        """A path from the config, relative to the config file's folder."""
        path = Path(value).expanduser()
        return path if path.is_absolute() else (self.path.parent / path).resolve()

    @property
    def database_path(self) -> Path:
        return self.resolve(self.state.directory) / "lockerd.db"

    @property
    def key_path(self) -> Path:
        return self.resolve(self.state.key_file or f"{self.state.directory}/device.key")

    def board_named(self, name: str) -> BoardConfig:
        return next(b for b in self.boards if b.name == name)

    def bus_named(self, name: str) -> BusConfig:
        return next(b for b in self.bus if b.name == name)

    @property
    def size_order(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.size)

    @property
    def compartment_ids(self) -> set[str]:
        return {c.id for c in self.compartment}

    def compartment_size(self, comp_id: str) -> str:
        return next(c.size for c in self.compartment if c.id == comp_id)
