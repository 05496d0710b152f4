"""Load one TOML file into one validated :class:`Config`, or fail naming every problem.

Beyond types and bounds, the whole wiring is checked before anything is
driven: names unique, every reference resolvable, every lock channel,
sensor channel and GPIO pin claimed once, every channel on its board.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import tomllib
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from drivers.scanner.base import FORMATS
from drivers.scanner.decode import DECODER_FORMATS
from lockerd import throttle
from lockerd.config._typed import Problems, build
from lockerd.config.schema import (
    SERIAL_PROTOCOLS,
    BoardConfig,
    BusConfig,
    CompartmentConfig,
    Config,
    Cu16BoardConfig,
    Cu48BoardConfig,
    GpioBoardConfig,
    I2cBoardConfig,
    ModbusBoardConfig,
    ScannerConfig,
    XorBoardConfig,
)
from lockerd.errors import ConfigError
from lockerd.qrtoken import private_key, public_key, public_text

__all__ = ["Config", "ConfigError", "load", "parse"]

#: The kiosk page's languages: one string catalogue each.
LANGUAGES = tuple(
    sorted(
        Path(entry.name).stem
        for entry in resources.files("lockerd.kiosk").joinpath("static/i18n").iterdir()
        if entry.name.endswith(".json")
    )
)

BOARD_SCHEMAS: dict[str, type[BoardConfig]] = {
    "kerong-cu16": Cu16BoardConfig,
    "kerong-cu48": Cu48BoardConfig,
    "generic-8a": XorBoardConfig,
    "modbus-rtu": ModbusBoardConfig,
    "gpio": GpioBoardConfig,
    "i2c": I2cBoardConfig,
}


def load(path: str | Path) -> Config:
    """Read and validate ``path``.

    Raises:
        ConfigError: listing every problem as ``FILE: key.path: problem``.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror or exc}"]) from exc
    return parse(text, path)


def parse(text: str, path: Path) -> Config:
    """Validate TOML ``text`` as if read from ``path``."""
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: not valid TOML: {exc}"]) from exc
    problems = Problems()
    config = build(Config, table, "", problems)
    if config is not None:
        boards = _boards(config, problems)
        config = dataclasses.replace(config, path=path, boards=tuple(boards))
        _check_wiring(config, problems)
        config = _with_code_length(config, problems)
    if problems or config is None:
        raise ConfigError([f"{path}: {item}" for item in problems.items])
    return config


def _with_code_length(config: Config, problems: Problems) -> Config:
    """Derive an unset ``pickup.code_length``; refuse a bank whose codes are too easy to guess."""
    pickup, doors = config.pickup, len(config.compartment)
    if not math.isfinite(pickup.throttle.lockout_s):
        problems.add("pickup.throttle.lockout_s", f"{pickup.throttle.lockout_s} is not a number")
        return config
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


def _boards(config: Config, problems: Problems) -> list[BoardConfig]:
    buses = {bus.name: bus for bus in config.bus}
    boards = []
    for index, raw in enumerate(config.board):
        path = f"board[{index}]"
        name = raw.get("bus")
        bus = buses.get(name) if isinstance(name, str) else None
        if bus is None:
            problems.add(f"{path}.bus", f"no bus named {raw.get('bus')!r}")
            continue
        board = build(BOARD_SCHEMAS[bus.protocol], raw, path, problems)
        if board is not None:
            boards.append(board)
    return boards


def _check_wiring(config: Config, problems: Problems) -> None:
    _unique(problems, "size", (s.name for s in config.size))
    _unique(problems, "power_group", (g.name for g in config.power_group))
    _unique(problems, "bus", (b.name for b in config.bus))
    _unique(problems, "board", (b.name for b in config.boards))
    _unique(problems, "compartment", (c.id for c in config.compartment), key="id")
    for index, bus in enumerate(config.bus):
        _check_bus(bus, f"bus[{index}]", problems)
    _check_boards(config, problems)
    _check_compartments(config, problems)
    sizes = set(config.size_order)
    for index, parcel in enumerate(config.demo.expected_parcels):
        if parcel.size not in sizes:
            problems.add(f"demo.expected_parcels[{index}].size", f"no size named {parcel.size!r}")
    for index, key in enumerate(config.pickup.qr_keys):
        try:
            public_key(key)
        except ValueError as exc:
            problems.add(f"pickup.qr_keys[{index}]", str(exc))
    _check_demo_signer(config, problems)
    _check_sync(config, problems)
    _unique(problems, "scanner", (s.name for s in config.scanner))
    for index, scanner in enumerate(config.scanner):
        _check_scanner(scanner, f"scanner[{index}]", problems)
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
    if config.safety.pulse_ms > config.safety.max_pulse_ms:
        problems.add("safety.pulse_ms", f"{config.safety.pulse_ms} exceeds max_pulse_ms")
    if not config.compartment:
        problems.add("compartment", "a bank needs at least one compartment")


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


def _check_sync(config: Config, problems: Problems) -> None:
    sync = config.sync
    for index, key in enumerate(sync.command_keys):
        try:
            public_key(key)
        except ValueError as exc:
            problems.add(f"sync.command_keys[{index}]", str(exc))
    if not sync.url:
        return
    parts = urlsplit(sync.url)
    loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
    if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
        problems.add("sync.url", "must be https:// (plain http only to a back office on loopback)")
    if not parts.hostname or parts.query or parts.fragment:
        problems.add("sync.url", f"{sync.url!r} is not a base URL (scheme, host, optional path)")
    if not sync.token_file:
        problems.add("sync.token_file", "a back office needs this locker's bearer token")
    if bool(sync.client_cert) != bool(sync.client_key):
        problems.add("sync", "client_cert and client_key go together")


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
    if bus.protocol in (*SERIAL_PROTOCOLS, "i2c"):
        if bool(bus.port) == bus.simulator:
            problems.add(path, "give exactly one of port (a real link) or simulator = true")
        if bus.pin_factory or bus.chip_label:
            problems.add(path, "pin_factory and chip_label are for gpio buses only")
    else:
        if not bus.pin_factory:
            problems.add(f"{path}.pin_factory", "a gpio bus needs a pin factory (lgpio, mock...)")
        if bus.port or bus.simulator:
            problems.add(path, "a gpio bus has no port; pin_factory = 'mock' simulates it")


def _check_boards(config: Config, problems: Problems) -> None:
    groups = {g.name for g in config.power_group}
    addresses: dict[tuple[str, int], str] = {}
    pins: dict[tuple[str, int], str] = {}
    for index, board in enumerate(config.boards):
        path = f"board[{index}]"
        if isinstance(board, I2cBoardConfig):
            _check_expander(board, path, addresses, problems)
            continue
        if board.power_group not in groups:
            problems.add(f"{path}.power_group", f"no power_group named {board.power_group!r}")
        if not isinstance(board, GpioBoardConfig):
            other = addresses.setdefault((board.bus, board.address), board.name)
            if other != board.name:
                problems.add(f"{path}.address", f"{board.address} is already board {other!r}")
            energize = getattr(board, "energize_ms", 0)
            if energize > config.safety.max_pulse_ms:
                problems.add(
                    f"{path}.energize_ms",
                    f"{energize} exceeds safety.max_pulse_ms ({config.safety.max_pulse_ms})",
                )
            if isinstance(board, Cu16BoardConfig) and board.set_energize_time:
                _check_energize_write(board, path, problems)
            if (
                isinstance(board, ModbusBoardConfig)
                and board.pulse_unit_ms > config.safety.pulse_ms
            ):
                problems.add(f"{path}.pulse_unit_ms", "is longer than safety.pulse_ms")
            continue
        if not board.lock_pins:
            problems.add(f"{path}.lock_pins", "a gpio board needs at least one lock pin")
        for key in ("lock_pins", "door_pins", "feedback_pins"):
            for pin_index, pin in enumerate(getattr(board, key)):
                claimed = pins.setdefault((board.bus, pin), f"{board.name}.{key}")
                if claimed != f"{board.name}.{key}" or getattr(board, key).count(pin) > 1:
                    problems.add(f"{path}.{key}[{pin_index}]", f"pin {pin} is used twice")


def _check_energize_write(board: Cu16BoardConfig, path: str, problems: Problems) -> None:
    """The board takes its energize time in 10 ms steps, and 0 ms is no pulse at all."""
    if board.energize_ms < 10 or board.energize_ms % 10:
        problems.add(
            f"{path}.energize_ms",
            f"{board.energize_ms} cannot be written to the board (set_energize_time): "
            "give a multiple of 10 ms, at least 10",
        )


def _check_expander(
    board: I2cBoardConfig, path: str, addresses: dict[tuple[str, int], str], problems: Problems
) -> None:
    other = addresses.setdefault((board.bus, board.address), board.name)
    if other != board.name:
        problems.add(f"{path}.address", f"0x{board.address:02X} is already board {other!r}")
    ranges = [range(0x20, 0x28)] + ([range(0x38, 0x40)] if board.chip == "pcf8574" else [])
    if not any(board.address in r for r in ranges):
        problems.add(f"{path}.address", f"0x{board.address:02X} is not a {board.chip} address")


def _check_compartments(config: Config, problems: Problems) -> None:
    boards = {b.name: b for b in config.boards}
    sizes = set(config.size_order)
    claimed: dict[tuple[str, str, int], str] = {}
    places: dict[tuple[int, int], str] = {}
    for index, comp in enumerate(config.compartment):
        path = f"compartment[{index}]"
        if comp.size not in sizes:
            problems.add(f"{path}.size", f"no size named {comp.size!r}")
        place = places.setdefault((comp.column, comp.row), comp.id)
        if place != comp.id:
            problems.add(path, f"column {comp.column} row {comp.row} is already {place!r}")
        board = boards.get(comp.board)
        sensing = boards.get(comp.door_board)
        if board is None:
            problems.add(f"{path}.board", f"no board named {comp.board!r}")
        if comp.sensor_board and sensing is None:
            problems.add(f"{path}.sensor_board", f"no board named {comp.sensor_board!r}")
        if board is not None and sensing is not None:
            _claim_channels(comp, board, sensing, path, claimed, problems)
        _claim_item_sensor(comp, boards, path, claimed, problems)


def _claim_item_sensor(
    comp: CompartmentConfig,
    boards: dict[str, BoardConfig],
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
        problems.add(f"{path}.item_board", f"no board named {comp.items_board!r}")
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
    for key, owner, channel, limit in checks:
        if channel > limit:
            problems.add(
                f"{path}.{key}", f"channel {channel} is outside 1..{limit} on {owner.name!r}"
            )
            continue
        if key == "sensor" and _output_only(owner, channel):
            problems.add(
                f"{path}.sensor",
                "GPA7/GPB7 are output-only on the MCP23017 (Microchip erratum);"
                " wire door switches to GPx0..GPx6",
            )
            continue
        item = claimed.get((owner.name, "item", channel)) if key == "sensor" else None
        if item is not None:
            problems.add(
                f"{path}.sensor",
                f"{owner.name!r} input {channel} is already {item!r}'s item-sensor input",
            )
            continue
        taken = claimed.setdefault((owner.name, key, channel), comp.id)
        if taken != comp.id:
            problems.add(
                f"{path}.{key}",
                f"{owner.name!r} {key} channel {channel} is already used by {taken!r}",
            )


def _output_only(board: BoardConfig, channel: int) -> bool:
    mcp = isinstance(board, I2cBoardConfig) and board.chip == "mcp23017"
    return mcp and channel in (8, 16)


def _unique(problems: Problems, section: str, names: Iterable[Any], key: str = "name") -> None:
    seen: set[Any] = set()
    for index, name in enumerate(names):
        if name in seen:
            problems.add(f"{section}[{index}].{key}", f"{name!r} is defined twice")
        seen.add(name)
