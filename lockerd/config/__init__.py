"""Load one TOML file into one validated :class:`Config`, or fail naming every problem.

Beyond types and bounds, the whole wiring is checked before anything is
driven: names unique, every reference resolvable, every lock channel,
sensor channel and GPIO pin claimed once, every channel on its board.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import re
import tomllib
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from drivers.scanner.base import FORMATS
from drivers.scanner.decode import DECODER_FORMATS
from lockerd import families, throttle
from lockerd.config._typed import Problems, build
from lockerd.config.schema import BusConfig, CompartmentConfig, Config, ScannerConfig, SyncSection
from lockerd.errors import ConfigError
from lockerd.families.base import BoardChecks, BoardConfig
from lockerd.qrtoken import private_key, public_key, public_text
from lockerd.sync.topics import MAX_ID, BrokerUrl, id_fits

__all__ = ["Config", "ConfigError", "load", "parse"]

#: The kiosk page's languages: one string catalogue each (read from the package's folder:
#: importlib.resources would cost the start-up 7 ms).
LANGUAGES = tuple(
    sorted(p.stem for p in (Path(__file__).parent.parent / "kiosk/static/i18n").glob("*.json"))
)


#: A bank of 384 doors is about 60 kB of TOML; a bigger file is not a config.
MAX_BYTES = 1 << 20


def load(path: str | Path) -> Config:
    """Read and validate ``path``.

    Raises:
        ConfigError: listing every problem as ``FILE: key.path: problem``.
    """
    path = Path(path)
    try:
        with path.open("rb") as file:
            data = file.read(MAX_BYTES + 1)
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror or exc}"]) from None
    if len(data) > MAX_BYTES:
        raise ConfigError([f"{path}: larger than {MAX_BYTES >> 20} MiB; not a locker config"])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{path}: not UTF-8 text: {_where(data, exc.start)}"]) from None
    return parse(text, path)


def _where(data: bytes, offset: int) -> str:
    """``byte 0xNN at line L, column C`` (the column counted in characters)."""
    start = data.rfind(b"\n", 0, offset) + 1
    column = len(data[start:offset].decode("utf-8", "replace")) + 1
    line = data.count(b"\n", 0, offset) + 1
    return f"byte 0x{data[offset]:02x} at line {line}, column {column}"


def parse(text: str, path: Path) -> Config:
    """Validate TOML ``text`` as if read from ``path``."""
    try:
        table = tomllib.loads(text)
    except RecursionError:
        raise ConfigError([f"{path}: not valid TOML: nested too deeply"]) from None
    except ValueError as exc:  # TOMLDecodeError, or an integer of more than 4300 digits
        raise ConfigError([f"{path}: not valid TOML: {exc}"]) from None
    problems = Problems()
    config = dataclasses.replace(build(Config, table, "", problems), path=path)
    typed = _boards(config, problems)
    config = dataclasses.replace(config, boards=tuple(b for b in typed if b is not None))
    problems.checking = True
    _check_wiring(config, typed, problems)
    if _sound(problems, "pickup", "code_length") and _sound(
        problems, "pickup.throttle", "lockout_after", "lockout_s"
    ):
        config = _with_code_length(config, problems)
    if problems:
        name = _namer(table.get("compartment"))
        raise ConfigError([f"{path}: {line}" for line in problems.lines(name)])
    return config


def _with_code_length(config: Config, problems: Problems) -> Config:
    """Derive an unset ``pickup.code_length``; refuse a bank whose codes are too easy to guess."""
    pickup, doors = config.pickup, len(config.compartment)
    guesses = throttle.yearly_guesses(pickup.throttle)
    if 0 < pickup.code_length < 6:
        problems.add("pickup.code_length", f"{pickup.code_length} is outside 6..12 (or 0: derived)")
        return config
    length = pickup.code_length or throttle.code_length_for(doors, guesses)
    if length is None or not doors:
        if doors:
            problems.add("pickup.throttle", _too_easy(config, throttle.MAX_CODE_LENGTH, guesses))
        return config
    if throttle.guess_chance(doors, length, guesses) > throttle.MAX_GUESS_CHANCE:
        problems.add("pickup.code_length", _too_easy(config, length, guesses))
    return dataclasses.replace(config, pickup=dataclasses.replace(pickup, code_length=length))


def _too_easy(config: Config, length: int, guesses: int) -> str:
    doors, rules = len(config.compartment), config.pickup.throttle
    chance = throttle.guess_chance(doors, length, guesses)
    fixes = []
    lockout = throttle.shortest_lockout_needed(doors, length, rules)
    if lockout is not None and lockout <= 604800:
        fixes.append(f"raise pickup.throttle.lockout_s to at least {lockout}")
    longer = throttle.code_length_for(doors, guesses)
    if longer is not None and longer > length:
        fixes.append(f"make pickup.code_length {longer} (or leave it out to derive it)")
    return (
        f"{length}-digit codes with all {doors} compartments full and up to {guesses:,}"
        f" wrong codes a year give a {chance:.2%} chance a year of guessing one"
        f" (at most {throttle.MAX_GUESS_CHANCE:.0%}): "
        + (" or ".join(fixes) or "lower pickup.throttle.lockout_after and raise lockout_s")
    )


def _namer(compartments: Any) -> Callable[[str], str]:
    """Show ``compartment[1].lock`` as ``compartment "B2" (compartment[1].lock)``."""
    listed = compartments if isinstance(compartments, list) else []
    ids = [c.get("id") if isinstance(c, dict) else None for c in listed]

    def name(path: str) -> str:
        match = re.match(r"compartment\[(\d+)\]", path)
        comp_id = ids[int(match.group(1))] if match else None
        if not isinstance(comp_id, str) or not comp_id.strip():
            return path
        shown = json.dumps(comp_id if len(comp_id) <= 40 else comp_id[:40] + "...")
        return f"compartment {shown} ({path})"

    return name


def _boards(config: Config, problems: Problems) -> list[BoardConfig | None]:
    """Each ``[[board]]`` typed by its bus's protocol, in order; None where it cannot be."""
    buses = {bus.name: (index, bus) for index, bus in enumerate(config.bus)}
    bus_names = _Names(problems, "bus", [bus.name for bus in config.bus])
    boards: list[BoardConfig | None] = []
    for index, raw in enumerate(config.board):
        path = f"board[{index}]"
        name = raw.get("bus")
        found = buses.get(name) if isinstance(name, str) else None
        if not problems.intact(path) or (found is None and name in bus_names):
            problems.skip(path)  # no table, or its bus is one whose name could not be read
            found = None
        elif found is None:
            reason = "missing required key" if name is None else f"no bus named {name!r}"
            problems.add(f"{path}.bus", reason)
        elif not problems.intact(f"bus[{found[0]}].protocol"):
            problems.skip(path)  # which keys it takes depends on that protocol
            found = None
        boards.append(
            None if found is None else build(_family(found[1]).board, raw, path, problems)
        )
    return boards


def _family(bus: BusConfig) -> families.Family:
    return families.FAMILIES[bus.protocol]


def _check_wiring(config: Config, typed: list[BoardConfig | None], problems: Problems) -> None:
    _unique(problems, "size", (s.name for s in config.size))
    _unique(problems, "power_group", (g.name for g in config.power_group))
    _unique(problems, "bus", (b.name for b in config.bus))
    _unique(problems, "board", (b.name if b else None for b in typed))
    _unique(problems, "compartment", (c.id for c in config.compartment), key="id")
    for index, bus in enumerate(config.bus):
        if _sound(problems, f"bus[{index}]", "protocol", "port", "simulator", "pin_factory"):
            _check_bus(bus, f"bus[{index}]", problems)
    _check_boards(config, typed, problems)
    _check_compartments(config, typed, problems)
    _check_codes(config, problems)
    _check_sync(config, problems)
    _unique(problems, "scanner", (s.name for s in config.scanner))
    for index, scanner in enumerate(config.scanner):
        if _sound(problems, f"scanner[{index}]", "type", "device", "simulator", "decoder"):
            _check_scanner(scanner, f"scanner[{index}]", problems)
    _check_kiosk_and_safety(config, problems)
    if not config.compartment:
        problems.add("compartment", "a bank needs at least one compartment")


def _check_codes(config: Config, problems: Problems) -> None:
    """The demo's announced sizes, the QR keys and the demo's signer."""
    sizes = _Names(problems, "size", config.size_order)
    for index, parcel in enumerate(config.demo.expected_parcels):
        if parcel.size not in sizes:
            problems.add(f"demo.expected_parcels[{index}].size", f"no size named {parcel.size!r}")
    for index, key in enumerate(config.pickup.qr_keys):
        try:
            public_key(key)
        except ValueError as exc:
            problems.add(f"pickup.qr_keys[{index}]", str(exc))
    if problems.intact("pickup.qr_keys"):
        _check_demo_signer(config, problems)


def _check_kiosk_and_safety(config: Config, problems: Problems) -> None:
    if config.kiosk.language not in LANGUAGES:
        problems.add(
            "kiosk.language",
            f"{config.kiosk.language!r} is not one of the page's languages: {', '.join(LANGUAGES)}",
        )
    if not loopback(config.kiosk.host):
        problems.add(
            "kiosk.host",
            f"{config.kiosk.host!r} is not loopback: the kiosk API is for the device's own"
            " screen and listens only on a loopback address (127.0.0.1, ::1) or localhost",
        )
    if config.safety.pulse_ms > config.safety.max_pulse_ms and _sound(
        problems, "safety", "max_pulse_ms"
    ):
        problems.add("safety.pulse_ms", f"{config.safety.pulse_ms} exceeds max_pulse_ms")
    _check_pickup_window(config, problems)


def _check_pickup_window(config: Config, problems: Problems) -> None:
    """A resident's door-open window must outlast the pulse and a board's answer (1 s)."""
    least = config.safety.max_pulse_ms / 1000 + 1
    sound = _sound(problems, "safety", "max_pulse_ms") and _sound(
        problems, "timing", "pickup_door_open_s"
    )
    if config.timing.pickup_door_open_s < least and sound:
        problems.add(
            "timing.pickup_door_open_s",
            f"{config.timing.pickup_door_open_s} s is shorter than the longest pulse"
            f" (safety.max_pulse_ms) plus a board's answer: at least {least:g} s",
        )


def loopback(host: str) -> bool:
    """Whether ``host`` is ``localhost`` or a loopback address (127.0.0.0/8, ``::1``)."""
    if host.lower() == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback and (address.version == 4 or str(address) == "::1")


def kiosk_url(host: str, port: int) -> str:
    """The kiosk page's address on ``host`` (an IPv6 address in brackets)."""
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


class _Names:
    """The names a section defines; while one of them could not be read, any name may be it."""

    def __init__(self, problems: Problems, section: str, names: Sequence[Any]) -> None:
        self.names = {name for name in names if isinstance(name, str)}
        self.complete = problems.trusted(section) and all(
            isinstance(name, str) and problems.intact(f"{section}[{index}].name")
            for index, name in enumerate(names)
        )

    def __contains__(self, name: object) -> bool:
        return not self.complete or (isinstance(name, str) and name in self.names)


def _sound(problems: Problems, path: str, *keys: str) -> bool:
    """Every one of ``keys`` under ``path`` was read without a problem."""
    return all(problems.intact(f"{path}.{key}") for key in keys)


def _check_sync(config: Config, problems: Problems) -> None:
    sync = config.sync
    for index, key in enumerate(sync.command_keys):
        try:
            public_key(key)
        except ValueError as exc:
            problems.add(f"sync.command_keys[{index}]", str(exc))
    if not sync.url:
        return
    if sync.transport == "mqtt":
        _check_mqtt(config, problems)
    else:
        _check_https(sync, problems)
    if bool(sync.client_cert) != bool(sync.client_key) and _sound(
        problems, "sync", "client_cert", "client_key"
    ):
        problems.add("sync", "client_cert and client_key go together")


def _check_https(sync: SyncSection, problems: Problems) -> None:
    parts = urlsplit(sync.url)
    on_loopback = parts.hostname is not None and loopback(parts.hostname)
    if parts.scheme != "https" and not (parts.scheme == "http" and on_loopback):
        problems.add("sync.url", "must be https:// (plain http only to a back office on loopback)")
    if not parts.hostname or parts.query or parts.fragment:
        problems.add("sync.url", f"{sync.url!r} is not a base URL (scheme, host, optional path)")
    if not sync.token_file:
        problems.add("sync.token_file", "a back office needs this locker's bearer token")


def _check_mqtt(config: Config, problems: Problems) -> None:
    sync = config.sync
    try:
        broker = BrokerUrl.parse(sync.url)
    except ValueError as exc:
        problems.add("sync.url", f"with transport = mqtt: {exc}")
        return
    if not broker.tls and not loopback(broker.host):
        problems.add(
            "sync.url", "must be mqtts:// or wss:// (plain mqtt only to a broker on loopback)"
        )
    if sync.mqtt_alpn and not broker.tls:
        problems.add("sync.mqtt_alpn", "ALPN needs TLS (mqtts:// or wss://)")
    if not id_fits(config.locker.id):
        problems.add(
            "locker.id",
            f"{config.locker.id!r}: with MQTT it is the client id and a topic level: 1 to"
            f" {MAX_ID} printable ASCII characters (no space or control character), none of / + #",
        )


def _check_demo_signer(config: Config, problems: Problems) -> None:
    if not config.demo.qr_signing_key:
        return
    try:
        public = public_text(private_key(config.demo.qr_signing_key))
    except ValueError as exc:
        problems.add("demo.qr_signing_key", str(exc))
        return
    if public not in config.pickup.qr_keys:
        problems.add("demo.qr_signing_key", f"its public key {public} is not in pickup.qr_keys")


def _check_scanner(scanner: ScannerConfig, path: str, problems: Problems) -> None:
    if scanner.type == "wedge":
        if not scanner.device or scanner.simulator:
            problems.add(path, "a wedge scanner needs its device (no simulator: use serial)")
    elif bool(scanner.device) == scanner.simulator:
        problems.add(path, "give exactly one of device (a real scanner) or simulator = true")
    if scanner.images and not (scanner.type == "camera" and scanner.simulator):
        problems.add(f"{path}.images", "only a simulated camera shows image files")
    if scanner.type != "camera":
        return
    if not scanner.formats:
        problems.add(f"{path}.formats", "a camera needs at least one format to look for")
    readable = DECODER_FORMATS[scanner.decoder]
    for index, fmt in enumerate(scanner.formats):
        if fmt not in FORMATS:
            problems.add(f"{path}.formats[{index}]", f"{fmt!r} is not one of {', '.join(FORMATS)}")
        elif fmt not in readable:
            problems.add(
                f"{path}.formats[{index}]", f"the {scanner.decoder} decoder cannot read {fmt}"
            )
        elif scanner.formats.index(fmt) != index:
            problems.add(f"{path}.formats[{index}]", f"{fmt!r} is listed twice")


def _check_bus(bus: BusConfig, path: str, problems: Problems) -> None:
    if _family(bus).wire != "gpio":
        if bool(bus.port) == bus.simulator:
            problems.add(path, "give exactly one of port (a real link) or simulator = true")
        if bus.pin_factory or bus.chip_label:
            problems.add(path, "pin_factory and chip_label are for gpio buses only")
    else:
        if not bus.pin_factory:
            problems.add(f"{path}.pin_factory", "a gpio bus needs a pin factory (lgpio, mock...)")
        if bus.port or bus.simulator:
            problems.add(path, "a gpio bus has no port; pin_factory = 'mock' simulates it")


def _check_boards(config: Config, typed: list[BoardConfig | None], problems: Problems) -> None:
    """Each board's own checks, as its family has them (power group, address, pins...)."""
    groups = _Names(problems, "power_group", [g.name for g in config.power_group])
    checks = BoardChecks(config, problems, groups)
    for index, board in enumerate(typed):
        if board is not None:
            families.family_of(board).check(board, f"board[{index}]", checks)


def _channel_keys() -> tuple[str, ...]:
    """The board keys that say which channels and inputs a board has, of every family (a
    board's other keys, an address for one, may be wrong without making its channels
    unknown)."""
    keys = (key for family in families.FAMILIES.values() for key in family.channel_keys)
    return ("name", *dict.fromkeys(keys))


def _check_compartments(
    config: Config, typed: list[BoardConfig | None], problems: Problems
) -> None:
    # A board that could not be read still exists: its compartments are neither
    # "no board named" nor checked against the values it could not be read with.
    named = _Names(problems, "board", [raw.get("name") for raw in config.board])
    boards = {
        b.name: b
        for i, b in enumerate(typed)
        if b is not None and _sound(problems, f"board[{i}]", *_channel_keys())
    }
    sizes = _Names(problems, "size", config.size_order)
    claimed: dict[tuple[str, str, int], str] = {}
    places: dict[tuple[int, int], str] = {}
    for index, comp in enumerate(config.compartment):
        path = f"compartment[{index}]"
        if comp.size not in sizes:
            problems.add(f"{path}.size", f"no size named {comp.size!r}")
        if _sound(problems, path, "id", "column", "row"):
            place = places.setdefault((comp.column, comp.row), comp.id)
            if place != comp.id:
                problems.add(path, f"column {comp.column} row {comp.row} is already {place!r}")
        for key, name in (("board", comp.board), ("sensor_board", comp.sensor_board)):
            if name and name not in named:
                problems.add(f"{path}.{key}", f"no board named {name!r}")
        board = boards.get(comp.board)
        sensing = boards.get(comp.door_board)
        wiring = ("id", "board", "lock", "sensor", "sensor_board")
        if board is not None and sensing is not None and _sound(problems, path, *wiring):
            _claim_channels(comp, board, sensing, path, claimed, problems)
        if _sound(problems, path, "id", "board", "item_sensor", "item_board"):
            _claim_item_sensor(comp, boards, named, path, claimed, problems)


def _claim_item_sensor(
    comp: CompartmentConfig,
    boards: dict[str, BoardConfig],
    named: _Names,
    path: str,
    claimed: dict[tuple[str, str, int], str],
    problems: Problems,
) -> None:
    """An item sensor is an input of a board that has inputs, used by nothing else."""
    if not comp.item_sensor:
        if comp.item_board:
            problems.add(f"{path}.item_board", "item_board goes with item_sensor")
        return
    owner = boards.get(comp.items_board)
    if owner is None:
        if comp.item_board and comp.item_board not in named:
            problems.add(f"{path}.item_board", f"no board named {comp.item_board!r}")
        return
    if not owner.items or not owner.sensor_channels:
        problems.add(f"{path}.item_sensor", f"{owner.name!r} has no inputs for item sensors")
        return
    if comp.item_sensor > owner.sensor_channels:
        problems.add(
            f"{path}.item_sensor",
            f"input {comp.item_sensor} is outside 1..{owner.sensor_channels} on {owner.name!r}",
        )
        return
    # A door switch and an item sensor on one input would be read as both.
    for key in ("sensor", "item"):
        taken = claimed.get((owner.name, key, comp.item_sensor))
        if taken is not None and not (key == "item" and taken == comp.id):
            what = "door-sensor" if key == "sensor" else "item-sensor"
            problems.add(
                f"{path}.item_sensor",
                f"{owner.name!r} input {comp.item_sensor} is already {taken!r}'s {what} input",
            )
            return
    claimed[(owner.name, "item", comp.item_sensor)] = comp.id


def _claim_channels(
    comp: CompartmentConfig,
    board: BoardConfig,
    sensing: BoardConfig,
    path: str,
    claimed: dict[tuple[str, str, int], str],
    problems: Problems,
) -> None:
    if not board.channels:
        problems.add(f"{path}.board", f"{board.name!r} drives no locks; name it as sensor_board")
        return
    checks = [("lock", board, comp.lock, board.channels)]
    if not sensing.door_from_hook:
        checks.append(("sensor", sensing, comp.sensor_channel, sensing.sensor_channels))
    elif comp.sensor_board and comp.sensor_board != comp.board:
        problems.add(f"{path}.sensor_board", f"{sensing.name!r} has no door-sensor inputs")
    elif comp.sensor not in (0, comp.lock):
        problems.add(
            f"{path}.sensor",
            f"{board.name!r} reads each door from its lock's own switch; leave sensor out",
        )
    before = len(problems.found)
    for key, owner, channel, limit in checks:
        if key == "sensor" and not comp.sensor and len(problems.found) > before:
            break  # the sensor channel is the lock's, and that one's problem is named already
        refusal = _channel_refusal(comp, key, owner, channel, limit, claimed)
        if refusal is not None:
            problems.add(f"{path}.{key}", refusal)


def _channel_refusal(
    comp: CompartmentConfig,
    key: str,
    owner: BoardConfig,
    channel: int,
    limit: int,
    claimed: dict[tuple[str, str, int], str],
) -> str | None:
    """Why ``comp`` cannot have ``owner``'s ``key`` channel; None once it is claimed for it."""
    if channel > limit:
        return f"channel {channel} is outside 1..{limit} on {owner.name!r}"
    if key == "sensor":
        refused = families.family_of(owner).refuse_sensor(owner, channel)
        if refused is not None:
            return refused
        item = claimed.get((owner.name, "item", channel))
        if item is not None:
            return f"{owner.name!r} input {channel} is already {item!r}'s item-sensor input"
    taken = claimed.setdefault((owner.name, key, channel), comp.id)
    if taken != comp.id:
        return f"{owner.name!r} {key} channel {channel} is already used by {taken!r}"
    return None


def _unique(problems: Problems, section: str, names: Iterable[Any], key: str = "name") -> None:
    seen: set[Any] = set()
    for index, name in enumerate(names):
        if name is None or not problems.intact(f"{section}[{index}].{key}"):
            continue
        if name in seen:
            problems.add(f"{section}[{index}].{key}", f"{name!r} is defined twice")
        seen.add(name)
