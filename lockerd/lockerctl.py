"""``lockerctl``: the technician's command, over the daemon's control socket.

Exit status: 0 done; 1 the daemon refused (the reason is printed); 2 bad
arguments; 3 the daemon is not running (or its socket is elsewhere, or it closed
the connection before its answer was complete); 4 the caller may not use
lockerctl; 5 ``audit --verify`` found the chain broken. Ctrl-C ends it by SIGINT.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sys
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, NoReturn

DEFAULT_SOCKET = "/run/lockerd/control.sock"
EXIT_REFUSED, EXIT_USAGE, EXIT_NOT_RUNNING, EXIT_NOT_ALLOWED, EXIT_BROKEN = 1, 2, 3, 4, 5


class NotRunning(Exception):
    pass


class NotAllowed(Exception):
    pass


class BadSocket(Exception):
    pass


#: What a technician can do about a refusal, in lockerctl's own words.
HINTS = {"reason_required": ": give one with --reason"}


def request(path: str, command: str, args: dict[str, Any], reason: str = "") -> Iterator[Any]:
    """Send one request; yield each answer line (one, or many for ``events --follow``)."""
    # Where the caller is (SSH or local) the daemon finds out itself, from this process.
    body = {"command": command, "args": args, "reason": reason}
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except (FileNotFoundError, ConnectionRefusedError) as exc:
        sock.close()
        raise NotRunning(f"lockerd is not running (no answer on {path}: {exc.strerror})") from exc
    except PermissionError as exc:
        sock.close()
        raise NotAllowed(f"cannot reach {path}: {exc.strerror}") from exc
    except OSError as exc:  # no path a socket can have (too long, say): --socket is wrong
        sock.close()
        raise BadSocket(f"cannot use {path} as the control socket: {exc.strerror or exc}") from exc
    with sock, sock.makefile("rwb") as stream:
        stream.write(json.dumps(body).encode() + b"\n")
        stream.flush()
        for line in stream:
            yield json.loads(line)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lockerctl",
        description="Service the locker through lockerd's control socket: its status,"
        " doors, parcels, events, sync, config, audit log and hardware checks. Times are"
        " printed in local time, as ISO 8601 with the UTC offset.",
        epilog="Exit status: 0 done, 1 refused, 2 bad arguments, 3 lockerd not running,"
        " 4 not allowed, 5 audit chain broken.",
    )
    parser.add_argument(
        "--socket",
        default=os.environ.get("LOCKERD_SOCKET", DEFAULT_SOCKET),
        help=f"the daemon's control socket (default: $LOCKERD_SOCKET or {DEFAULT_SOCKET})",
    )
    parser.add_argument("--json", action="store_true", help="print the answer as JSON")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # --json is accepted after the command too (lockerctl status --json).
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="print the answer as JSON"
    )
    add = commands.add_parser

    def command(name: str, text: str) -> argparse.ArgumentParser:
        return add(name, help=text, parents=[common])

    _add_door_commands(command)
    _add_parcels(command("parcels", "parcels: list, show, extend, mark returned"), common)
    _add_outbound(command("outbound", "parcels sent or returned here: list, show, removed"), common)
    command("diag", "bus scan (each board's answer time and counters) and sensor sanity")
    cycle = command("cycle-test", "open each door in turn; a person opens and shuts it")
    cycle.add_argument(
        "ids", nargs="+", metavar="ID", help="the compartments, in the order to walk them"
    )
    cycle.add_argument("--reason", required=True, help="why (kept in the audit log)")
    cycle.add_argument(
        "--timeout", type=int, default=120, metavar="S",
        help="seconds to wait at each door (5 to 3600, default 120)",
    )  # fmt: skip
    command("config", "the effective config, secrets masked (TOML; JSON with --json)")
    audit = command("audit", "the audit log")
    audit.add_argument(
        "--verify", action="store_true", help="check the keyed chain and its anchor in the journal"
    )
    audit.add_argument(
        "--limit", type=int, default=50, metavar="N", help="the last N entries (default 50)"
    )
    return parser


def _add_door_commands(command: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """status, open, disable, enable, found, empty, events and sync."""
    command("status", "the bank as its grid, and a table of every compartment")
    for name, text in [
        ("open", "open a compartment's door (it then needs a check)"),
        ("disable", "take a compartment out of service"),
        ("enable", "put a checked compartment back in service (door shut, lock latched)"),
        ("found", "the parcel of a deposit cut short by a stop is in the compartment"),
        ("empty", "the compartment of a deposit cut short by a stop is empty"),
    ]:
        action = command(name, text)
        action.add_argument("id", help="the compartment, as on its door (A1, B3...)")
        action.add_argument("--reason", required=True, help="why (kept in the audit log)")
    events = command("events", "recent journal events")
    events.add_argument(
        "--after", type=int, metavar="SEQ", help="events after this sequence number"
    )
    events.add_argument(
        "--limit", type=int, metavar="N", help="how many (default 50; with --follow, stop after N)"
    )
    events.add_argument(
        "--follow", action="store_true", help="print new ones as they happen (from --after on)"
    )
    sync = command("sync", "the back-office link's status")
    sync.add_argument(
        "--push", action="store_true", help="sync now (exit status 1 if it did not succeed)"
    )


PARCEL = "its barcode, or its id as parcels list prints it"


def _add_parcels(parcels: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    parcel_actions = parcels.add_subparsers(dest="action", metavar="ACTION")
    listing = parcel_actions.add_parser(
        "list", parents=[common], help="every parcel (or those in one state)"
    )
    listing.add_argument(
        "--state", help="expected, stored, expired, collected, returned or cancelled"
    )
    show = parcel_actions.add_parser("show", parents=[common], help="one parcel")
    show.add_argument("barcode", metavar="PARCEL", help=PARCEL)
    extend = parcel_actions.add_parser(
        "extend",
        parents=[common],
        help="a new pickup deadline, H hours from now (an expired parcel is stored again)",
    )
    extend.add_argument("barcode", metavar="PARCEL", help=PARCEL)
    extend.add_argument(
        "--hours", type=float, required=True, metavar="H", help="hours from now (up to 2160)"
    )
    extend.add_argument("--reason", required=True, help="why (kept in the audit log)")
    returned = parcel_actions.add_parser(
        "returned", parents=[common], help="the parcel was taken out by hand"
    )
    returned.add_argument("barcode", metavar="PARCEL", help=PARCEL)
    returned.add_argument("--reason", required=True, help="why (kept in the audit log)")


def _add_outbound(outbound: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    actions = outbound.add_subparsers(dest="action", metavar="ACTION")
    listing = actions.add_parser("list", parents=[common], help="every one (or those in one state)")
    listing.add_argument(
        "--state", help="depositing, awaiting_collection, collected, cancelled or removed"
    )
    show = actions.add_parser("show", parents=[common], help="one")
    show.add_argument("id", type=int, metavar="ID", help="its number, as outbound list prints it")
    removed = actions.add_parser("removed", parents=[common], help="it was taken out by hand")
    removed.add_argument(
        "id", type=int, metavar="ID", help="its number, as outbound list prints it"
    )
    removed.add_argument("--reason", required=True, help="why (kept in the audit log)")


def _args(ns: argparse.Namespace) -> dict[str, Any]:
    if ns.command in ("open", "disable", "enable", "found", "empty"):
        return {"id": ns.id}
    if ns.command == "events":
        given = {"after": ns.after, "limit": ns.limit}
        return {"follow": ns.follow} | {k: v for k, v in given.items() if v is not None}
    if ns.command == "sync":
        return {"push": ns.push}
    if ns.command in ("parcels", "outbound"):
        args = {"action": ns.action or "list"}
        for key in ("state", "barcode", "hours", "id"):
            if getattr(ns, key, None) is not None:
                args[key] = getattr(ns, key)
        return args
    if ns.command == "cycle-test":
        return {"ids": ns.ids, "timeout": ns.timeout}
    if ns.command == "audit":
        return {"verify": ns.verify, "limit": ns.limit}
    return {}


#: What lockerctl says when the daemon ends a connection before its answer is complete.
GONE = "lockerd closed the connection before it answered (did it stop?)"


def main(argv: list[str] | None = None) -> int:
    ns = _parser().parse_args(argv)
    try:
        return _exchange(ns)
    except NotRunning as exc:
        print(f"lockerctl: {exc}", file=sys.stderr)
        return EXIT_NOT_RUNNING
    except NotAllowed as exc:
        print(f"lockerctl: {exc}", file=sys.stderr)
        return EXIT_NOT_ALLOWED
    except BadSocket as exc:
        print(f"lockerctl: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:  # Ctrl-C: no traceback, and no "done" either
        _end_by(signal.SIGINT)


def _exchange(ns: argparse.Namespace) -> int:
    """Ask, print the answer (or each streamed line); the exit status."""
    followed = 0
    try:
        for answer in request(ns.socket, ns.command, _args(ns), getattr(ns, "reason", "")):
            if "ok" not in answer or "progress" in answer:  # a followed event, a step
                _say(_streamed(answer, ns.json))
                followed += "progress" not in answer
                continue
            if not answer["ok"]:
                return _refused(answer["error"])
            return _answered(ns, answer["result"])
    except ConnectionResetError:
        pass
    if ns.command == "events" and ns.follow and ns.limit is not None and followed >= ns.limit:
        return 0  # the daemon ends a followed stream once --limit events are written
    raise NotRunning(GONE)


def _say(text: str) -> None:
    """Print ``text``; where nobody reads it any more (``lockerctl status | head -1``),
    end as the other command-line tools do: silently, by SIGPIPE."""
    try:
        print(text, flush=True)
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        _end_by(signal.SIGPIPE)


def _end_by(signum: signal.Signals) -> NoReturn:
    """End by ``signum``, as other tools do (the shell reports 128 + its number).
    Python turns SIGPIPE and SIGINT into exceptions; the shell expects death by the
    signal (a loop of lockerctl calls stops on Ctrl-C)."""
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)
    sys.exit(128 + signum)  # not reached


def _streamed(answer: dict[str, Any], as_json: bool) -> str:
    if "progress" in answer:  # a step of a cycle test
        return json.dumps(answer) if as_json else str(answer["progress"])
    return json.dumps(_timed(answer)) if as_json else _event_line(answer)


#: The daemon's refusals of an argument's value (a bad argument: exit status 2).
BAD_ARGUMENT = {"invalid_field", "missing_field"}


def _refused(error: dict[str, Any]) -> int:
    hint = HINTS.get(error["code"], "")
    print(f"lockerctl: {error['message']}{hint} ({error['code']})", file=sys.stderr)
    if error["code"] in BAD_ARGUMENT:
        return EXIT_USAGE
    return EXIT_NOT_ALLOWED if error["code"] == "not_allowed" else EXIT_REFUSED


def _answered(ns: argparse.Namespace, result: Any) -> int:
    if ns.json:
        _say(as_json(result))
    else:
        _say(render(ns.command, result))
    if ns.command == "audit" and ns.verify and result["problems"]:
        return EXIT_BROKEN
    if ns.command == "cycle-test" and any(not door["closed"] for door in result):
        return EXIT_REFUSED
    if ns.command == "sync" and ns.push and not result["ok"]:  # "sync now" did not
        print(f"lockerctl: the sync did not succeed: {result['last_error']}", file=sys.stderr)
        return EXIT_REFUSED
    return 0


def local_time(at: float) -> str:
    """``at`` (seconds since the epoch) as local ISO 8601 time: 2026-12-01T11:08:27+01:00."""
    return datetime.fromtimestamp(at).astimezone().isoformat(timespec="seconds")


#: The names of time fields, besides those ending in one of :data:`TIME_ENDINGS`.
TIME_KEYS = {"at", "until", "last_ok", "exp"}
TIME_ENDINGS = ("_at", "_by", "_until", "_expires")


def _is_time(key: str, value: Any) -> bool:
    """Whether ``value`` under ``key`` is a time (Unix seconds, as the daemon keeps it)."""
    named = key in TIME_KEYS or key.endswith(TIME_ENDINGS)
    return named and isinstance(value, int | float) and not isinstance(value, bool)


def _timed(value: Any) -> Any:
    """``value`` with every time in it, at any depth (an event's ``at`` and the deadlines
    in its data, a parcel's ``pickup_by`` and ``*_at``), as local ISO 8601."""
    if isinstance(value, dict):
        return {k: local_time(v) if _is_time(k, v) else _timed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_timed(v) for v in value]
    return value


def as_json(result: Any) -> str:
    """An answer as ``--json`` prints it: the daemon's, with its times as local ISO 8601."""
    return json.dumps(_timed(result), indent=2)


def _event_line(event: dict[str, Any]) -> str:
    data = json.dumps(_timed(event["data"]), sort_keys=True)
    return f"#{event['seq']} {local_time(event['at'])} {event['type']} {data}"


def render(command: str, result: Any) -> str:
    if command == "audit" and isinstance(result, dict):
        verdict = "intact" if not result["problems"] else "BROKEN"
        lines = [f"audit log {verdict}: {result['entries']} entries, head {result['head']}"]
        return "\n".join(lines + [f"  {p}" for p in result["problems"]])
    if command in ("parcels", "outbound") and not isinstance(result, list):
        return record_text(result)
    text = TEXTS.get(command)
    return text(result) if text is not None else json.dumps(result, indent=2)


def _audit_text(entries: list[dict[str, Any]]) -> str:
    lines = [
        f"#{e['seq']} {local_time(e['at'])} {e['actor']} ({e['origin']}) {e['action']}"
        f" {e['target']}: {e['reason']}"
        for e in entries
    ]
    return "\n".join(lines) or "(no entries)"


def _cycle_text(report: list[dict[str, Any]]) -> str:
    return "\n".join(
        f"{d['compartment']}: opened {'yes' if d['opened'] else 'NO'},"
        f" shut {'yes' if d['closed'] else 'NO'}, latched {_yes(d['latched'])}"
        + (f" ({d['error']})" if d["error"] else "")
        for d in report
    )


def record_text(record: dict[str, Any]) -> str:
    """One parcel (or outbound parcel), a field a line, its times local; ``-`` for none."""
    width = max(len(key) for key in record)
    return "\n".join(
        f"{key:<{width}} {_field(key, value)}".rstrip() for key, value in record.items()
    )


def _field(key: str, value: Any) -> str:
    if value is None:
        return "-"
    return local_time(value) if _is_time(key, value) else str(value)


def _parcels_text(parcels: list[dict[str, Any]]) -> str:
    """A parcel a line: id, barcode, state, compartment, pickup deadline (local time)."""
    lines = [
        f"{p['id']:>5} {p['barcode']:<24} {p['state']:<10} {p['compartment_id'] or '-':<5}"
        f" {_field('pickup_by', p['pickup_by'])}".rstrip()
        for p in parcels
    ]
    return "\n".join(lines) or "(no parcels)"


def _outbound_text(parcels: list[dict[str, Any]]) -> str:
    lines = [
        f"{p['id']:>5} {p['kind']:<6} {p['reference']:<24} {p['carrier'] or '-':<8}"
        f" {p['state']:<19} {p['compartment_id'] or '-':<5}"
        for p in parcels
    ]
    return "\n".join(lines) or "(no outbound parcels)"


def sync_text(sync: dict[str, Any]) -> str:
    if sync.get("off"):
        return f"sync: off ({sync['off']})"
    last = local_time(sync["last_ok"]) if sync["last_ok"] else "never"
    return (
        f"sync with {sync['url']}: {_health(sync)}; last success {last};"
        f" {sync['failures']} failures in a row; {sync['unsent']} events unsent"
    )


def _health(sync: dict[str, Any]) -> str:
    """The link in a word: ok, failing (and why), or not synced yet (no round has ended)."""
    if sync["ok"]:
        return "ok"
    if not sync["failures"] and not sync["last_error"]:
        return "not synced yet"
    return f"failing ({sync['last_error']})"


def config_text(config: dict[str, Any], prefix: str = "") -> str:
    """The config as its file is written: TOML tables, then arrays of tables."""
    scalars = {k: v for k, v in config.items() if not _is_table(v)}
    lines = [f"{key} = {json.dumps(value)}" for key, value in scalars.items()]
    for key, value in config.items():
        if isinstance(value, dict):
            lines += ["", f"[{prefix}{key}]", config_text(value, f"{prefix}{key}.")]
        elif _is_table(value):
            for item in value:
                lines += ["", f"[[{prefix}{key}]]", config_text(item, f"{prefix}{key}.")]
    return "\n".join(lines).strip("\n")


def _is_table(value: Any) -> bool:
    return isinstance(value, dict) or (
        isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)
    )


def _yes(value: bool | None) -> str:
    return "n/a (no lock feedback)" if value is None else ("yes" if value else "NO")


def diag_text(result: dict[str, Any]) -> str:
    lines = []
    for b in result["boards"]:
        answer = (
            f"answered in {b['answer_ms']} ms" if b["error"] is None else f"NO ANSWER: {b['error']}"
        )
        where = f"{b['bus']} address {b['address']}" if b["address"] is not None else b["bus"]
        lines.append(
            f"{b['board']} on {where}: {answer}; {b['reads']} reads, {b['failures']} failures"
        )
        if b.get("energize_confirmed") is False:
            lines.append(
                f"{b['board']}: did NOT confirm energize time {b['energize_ms']} ms"
                " (set_energize_time): it pulses for its own setting; check it with the"
                " vendor tool"
            )
        elif b.get("energize_confirmed"):
            lines.append(f"{b['board']}: energize time {b['energize_ms']} ms confirmed")
    lines += [f"sensor: {doubt}" for doubt in result["sensors"]] or ["sensors: every door agrees"]
    return "\n".join(lines)


SHORT = {"free": "free", "reserved": "RSV", "open": "OPEN", "occupied": "full",
         "out_of_service": "OUT", "needs_check": "CHECK"}  # fmt: skip


def _held(comp: dict[str, Any]) -> str:
    """What a compartment holds: an inbound parcel's barcode, or an outbound parcel as
    ``send SHIP0001 (DHL)``; ``-`` for nothing."""
    out = comp.get("outbound")
    if out:
        return f"{out['kind']} {out['reference']} ({out['carrier']})"
    return str(comp["parcel"] or "-")


def status_text(status: dict[str, Any]) -> str:
    """The bank drawn as seen from the front, then one line per compartment and per board."""
    comps = status["compartments"]
    cells = {
        (c["column"], c["row"]): f"{c['id']} {SHORT.get(c['state'], c['state'])}" for c in comps
    }
    width = max(len(v) for v in cells.values()) + 2
    columns = range(1, max(c for c, _ in cells) + 1)
    rows = range(1, max(r for _, r in cells) + 1)
    lines = [f"locker {status['locker']['id']} {status['locker']['name']}".rstrip(), ""]
    for row in rows:
        lines.append("".join(f"[{cells.get((col, row), ''):^{width}}]" for col in columns))
    alarms = status.get("alarms") or []
    if alarms:
        lines.append("")
    for alarm in alarms:
        lines.append(f"ALARM board {alarm['board']}: check {alarm['key']}: {alarm['detail']}")
    lines += [
        "",
        f"{'id':<5} {'size':<4} {'state':<15} {'door':<8} {'lock':<9} {'parcel':<20} reason",
    ]
    for c in comps:
        lines.append(
            f"{c['id']:<5} {c['size']:<4} {c['state']:<15} {c['door']:<8} {c['lock'] or '-':<9}"
            f" {_held(c):<20} {c['reason'] or ''}".rstrip()
        )
    lines.append("")
    for name, board in status["boards"].items():
        state = "online" if board["online"] else "SILENT"
        lines.append(f"board {name}: {state}, {board['reads']} reads, {board['failures']} failures")
    sync = status["sync"]
    if sync is None:
        lines.append("sync: off")
    else:
        lines.append(f"sync: {_health(sync)}; {status['unsent']} events unsent")
    return "\n".join(lines)


#: Each command's answer as text (the rest print as JSON).
TEXTS: dict[str, Callable[[Any], str]] = {
    "status": status_text,
    "events": lambda result: "\n".join(_event_line(e) for e in result) or "(no events)",
    "audit": _audit_text,
    "sync": sync_text,
    "config": config_text,
    "outbound": _outbound_text,
    "diag": diag_text,
    "cycle-test": _cycle_text,
    "parcels": _parcels_text,
    "open": lambda r: f"{r['compartment']}: {r['state']} (attempt {r['attempt']})",
    "disable": lambda r: f"{r['compartment']}: {r['state']}",
    "enable": lambda r: f"{r['compartment']}: {r['state']}",
    "found": lambda r: f"{r['compartment']}: {r['parcel']} is in; enable it once shut",
    "empty": lambda r: f"{r['compartment']}: {r['parcel']} is not in; enable it once shut",
}


if __name__ == "__main__":
    sys.exit(main())
