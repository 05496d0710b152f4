"""The ``lockerd`` command: run the daemon, or check a config."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import sqlite3
import ssl
import sys
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from drivers.errors import DriverError
from lockerd import __version__, throttle
from lockerd.config import Config, kiosk_url, load, loopback
from lockerd.errors import ConfigError, LockerError
from lockerd.families import FAMILIES, family_of

if TYPE_CHECKING:
    from lockerd.sync.backoffice import ReferenceBackOffice
    from lockerd.sync.topics import BrokerUrl


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print("\n".join(exc.problems), file=sys.stderr)
        return 2
    except (LockerError, DriverError, OSError) as exc:
        print(f"lockerd: {exc}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lockerd", description="Controller daemon of a smart parcel locker bank."
    )
    parser.add_argument("--version", action="version", version=f"lockerd {__version__}")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run the daemon on a config file")
    run.add_argument("config", type=Path, help="the locker's TOML config")
    run.add_argument("--port", type=int, help="kiosk API port (overrides kiosk.port; 0 = any free)")
    run.add_argument("--state-dir", type=Path, help="database folder (overrides state.directory)")
    run.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="log verbosity (default: info)",
    )
    run.set_defaults(func=_run)

    check = commands.add_parser("check-config", help="validate a config and summarise the bank")
    check.add_argument("config", type=Path, help="the TOML config to check")
    check.set_defaults(func=_check)

    _add_back_office(commands)
    return parser


def _add_back_office(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    office = commands.add_parser(
        "back-office", help="run the reference back office (sync v1) for development and demos"
    )
    office.add_argument("--host", default="127.0.0.1", help="address to listen on")
    office.add_argument("--port", type=int, default=8090, help="TCP port (default: 8090)")
    office.add_argument(
        "--token-file", type=Path, required=True, help="the bearer token lockers must present"
    )
    office.add_argument(
        "--signing-key-file",
        type=Path,
        help="Ed25519 private key (base64) that signs remote opens"
        " (default: one made with the database and kept in it)",
    )
    office.add_argument(
        "--database",
        type=Path,
        default=Path("back-office.db"),
        help="SQLite file it keeps events and commands in (default: back-office.db)",
    )
    office.add_argument(
        "--mqtt",
        metavar="URL",
        help="also serve lockers through this MQTT broker (mqtts://host:port, wss://..., or"
        " mqtt://127.0.0.1:1883 on loopback; docs/sync-mqtt.md)",
    )
    office.add_argument("--mqtt-ca", type=Path, help="CA file the broker's certificate chains to")
    office.add_argument(
        "--mqtt-cert", type=Path, nargs=2, metavar=("CERT", "KEY"), help="client certificate"
    )
    office.set_defaults(func=_back_office)


def _run(args: argparse.Namespace) -> int:
    from lockerd.daemon import serve

    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    config = _overridden(load(args.config), args)
    try:
        asyncio.run(serve(config, announce=lambda line: print(line, flush=True)))
    except KeyboardInterrupt:
        pass
    return 0


def _overridden(config: Config, args: argparse.Namespace) -> Config:
    if args.port is not None:
        if not 0 <= args.port <= 65535:
            raise ConfigError([f"--port: {args.port} is outside 0..65535"])
        config = dataclasses.replace(
            config, kiosk=dataclasses.replace(config.kiosk, port=args.port)
        )
    if args.state_dir is not None:
        state = dataclasses.replace(
            config.state,
            directory=str(args.state_dir.resolve()),
            key_file=config.state.key_file and str(config.key_path),
        )
        config = dataclasses.replace(config, state=state)
    return config


def _back_office(args: argparse.Namespace) -> int:
    from lockerd import qrtoken
    from lockerd.sync.backoffice import ReferenceBackOffice

    token = _read_secret(args.token_file, "--token-file")
    broker = _broker_url(args.mqtt) if args.mqtt else None
    key = None
    if args.signing_key_file is not None:
        text = _read_secret(args.signing_key_file, "--signing-key-file")
        try:
            key = qrtoken.private_key(text)
        except ValueError as exc:
            raise ConfigError([f"--signing-key-file: {args.signing_key_file}: {exc}"]) from exc
    try:
        office = ReferenceBackOffice(
            token, signing_key=key, host=args.host, port=args.port, database=args.database
        )
    except sqlite3.Error as exc:
        raise ConfigError([f"--database: cannot use {args.database}: {exc}"]) from exc

    async def serve() -> None:
        url = await office.start()
        print(f"reference back office at {url}", flush=True)
        if broker is not None:
            await _on_broker(office, broker, args)
        print(f"remote opens are signed by {qrtoken.public_text(office.signing_key)}", flush=True)
        print("(put that key in sync.command_keys; see docs/sync-protocol.md)", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await office.stop()
            office.close()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass
    return 0


def _broker_url(url: str) -> BrokerUrl:
    """``--mqtt``, checked before anything starts: TLS, or plain only on loopback."""
    from lockerd.sync.topics import BrokerUrl

    try:
        broker = BrokerUrl.parse(url)
    except ValueError as exc:
        raise ConfigError([f"--mqtt: {exc}"]) from exc
    if not broker.tls and not loopback(broker.host):
        raise ConfigError(
            [
                f"--mqtt: {url!r} is plain MQTT to a host off loopback: use mqtts:// or wss://"
                " (plain mqtt:// only to a broker on loopback: 127.0.0.1, ::1, localhost)"
            ]
        )
    return broker


async def _on_broker(
    office: ReferenceBackOffice, broker: BrokerUrl, args: argparse.Namespace
) -> None:
    """Serve ``office`` on the broker at ``--mqtt`` too (paho imported only then). An
    unreachable broker is said on stderr, one line an attempt, while it backs off; the
    HTTPS side serves meanwhile."""
    from lockerd.sync.officemqtt import OfficeOnBroker

    tls = None
    if broker.tls:
        tls = ssl.create_default_context(cafile=args.mqtt_ca)
        if args.mqtt_cert:
            tls.load_cert_chain(*args.mqtt_cert)

    def say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    def serving() -> None:
        print(f"serving lockers on {args.mqtt} too (lockers/+/evt, lockers/+/rpc/req)", flush=True)

    face = OfficeOnBroker(office, args.mqtt, tls=tls, announce=say)
    face.on_ready = serving
    await face.start(wait=False)


def _read_secret(path: Path, option: str) -> str:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError([f"{option}: cannot read {path}: {exc.strerror or exc}"]) from exc
    if not text:
        raise ConfigError([f"{option}: {path} is empty"])
    return text


def _check(args: argparse.Namespace) -> int:
    config = load(args.config)
    print(summary(config))
    for line in warnings(config):
        print(f"{config.path}: warning: {line}", file=sys.stderr)
    return 0


def warnings(config: Config) -> list[str]:
    """What a config allows but a locker in use should not lack (check-config still passes)."""
    found = []
    if not config.locker.support:
        found.append(
            "locker.support is not set: the kiosk's dead ends (a door that will not open,"
            " a locked keypad, a parcel that fits nowhere) name nobody to call"
        )
    return found


def summary(config: Config) -> str:
    """A one-screen description of the bank a config describes."""
    lines = [
        f"{config.path}: OK",
        f"locker {config.locker.id}" + (f" ({config.locker.name})" if config.locker.name else ""),
        f"state  {config.database_path}  key {config.key_path}",
        f"kiosk  {kiosk_url(config.kiosk.host, config.kiosk.port)}"
        + ("  demo" if config.kiosk.demo else ""),
    ]
    for bus in config.bus:
        where = "simulator" if bus.simulator else bus.port or f"pin factory {bus.pin_factory}"
        speed = f" {bus.baud} baud" if FAMILIES[bus.protocol].wire == "serial" else ""
        lines.append(f"bus    {bus.name}: {bus.protocol} on {where}{speed}")
    for board in config.boards:
        lines.append(
            f"board  {board.name} on {board.bus}: {family_of(board).describe(board, config)}"
        )
    for scanner in config.scanner:
        where = "simulator" if scanner.simulator else scanner.device
        reads = (
            f", {scanner.decoder} reading {', '.join(scanner.formats)} at {scanner.fps:g} fps"
            if scanner.type == "camera"
            else ""
        )
        lines.append(f"scan   {scanner.name}: {scanner.type} on {where}{reads}")
    sizes = Counter(c.size for c in config.compartment)
    lines.append("sizes  " + ", ".join(f"{s} x{sizes[s]}" for s in config.size_order))
    lines.append(_guessing(config))
    lines.append(
        f"{len(config.compartment)} compartments (column across, row down; * = low reach):"
    )
    lines.extend(_grid(config))
    return "\n".join(lines)


def _guessing(config: Config) -> str:
    """The wrong-code figure: what an attacker at the keypad gets in a year, at worst."""
    doors, length = len(config.compartment), config.pickup.code_length
    guesses = throttle.yearly_guesses(config.pickup.throttle)
    chance = throttle.guess_chance(doors, length, guesses)
    return (
        f"codes  {length} digits; wrong-code guesses: at most {guesses:,} a year;"
        f" chance of guessing a code with all {doors} compartments full: {chance:.2%} a year"
        f" (limit {throttle.MAX_GUESS_CHANCE:.0%})"
    )


def _grid(config: Config) -> list[str]:
    cells = {
        (c.column, c.row): f"{c.id}:{c.size}{'*' if c.low_reach else ''}"
        for c in config.compartment
    }
    columns = range(1, max(c for c, _ in cells) + 1)
    rows = range(1, max(r for _, r in cells) + 1)
    width = max(len(v) for v in cells.values()) + 1
    out = ["      " + "".join(f"{c:<{width}}" for c in columns)]
    for row in rows:
        out.append(
            f"  {row:>2}  " + "".join(f"{cells.get((c, row), '.'):<{width}}" for c in columns)
        )
    return out
