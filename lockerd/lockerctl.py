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
from typing import Any, NoReturn

from lockerd.ctltext import as_json, event_line, render, timed
from lockerd.ctltext import diag_text as diag_text  # re-exported (tests/test_cu16_link.py)

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
    _add_checks(command)
    return parser


def _add_checks(command: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """cycle-test, config and audit: what a technician checks."""
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
        "--limit", type=int, metavar="N", help="the last N entries (default 50; not with --verify)"
    )


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


PARCEL = "its barcode, or its id as parcels list prints it (a number that is both: refused)"
BARCODE = "its barcode (never read as an id: give an id as --id N)"
BY_ID = "its id, as parcels list prints it"


def _add_parcels(parcels: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    parcel_actions = parcels.add_subparsers(dest="action", metavar="ACTION")
    listing = parcel_actions.add_parser(
        "list", parents=[common], help="every parcel (or those in one state)"
    )
    listing.add_argument(
        "--state", help="expected, stored, expired, collected, returned or cancelled"
    )
    show = parcel_actions.add_parser("show", parents=[common], help="one parcel")
    named = show.add_mutually_exclusive_group(required=True)
    named.add_argument("name", nargs="?", metavar="PARCEL", help=PARCEL)
    named.add_argument("--barcode", metavar="BARCODE", help="its barcode (never an id)")
    named.add_argument("--id", type=int, metavar="N", help=BY_ID)
    extend = parcel_actions.add_parser(
        "extend",
        parents=[common],
        help="a new pickup deadline, H hours from now (an expired parcel is stored again)",
    )
    _changed(extend)
    extend.add_argument(
        "--hours", type=float, required=True, metavar="H", help="hours from now (up to 2160)"
    )
    extend.add_argument("--reason", required=True, help="why (kept in the audit log)")
    returned = parcel_actions.add_parser(
        "returned", parents=[common], help="the parcel was taken out by hand"
    )
    _changed(returned)
    returned.add_argument("--reason", required=True, help="why (kept in the audit log)")


def _changed(action: argparse.ArgumentParser) -> None:
    """A parcel a command changes: by its barcode, or by an id given as --id N."""
    named = action.add_mutually_exclusive_group(required=True)
    named.add_argument("barcode", nargs="?", metavar="BARCODE", help=BARCODE)
    named.add_argument("--id", type=int, metavar="N", help=BY_ID)


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
        for key in ("state", "name", "barcode", "hours", "id"):
            if getattr(ns, key, None) is not None:
                args[key] = getattr(ns, key)
        return args
    if ns.command == "cycle-test":
        return {"ids": ns.ids, "timeout": ns.timeout}
    if ns.command == "audit":
        return {"verify": ns.verify} | ({} if ns.limit is None else {"limit": ns.limit})
    return {}


#: What lockerctl says when the daemon ends a connection before its answer is complete.
GONE = "lockerd closed the connection before it answered (did it stop?)"


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    ns = parser.parse_args(argv)
    if ns.command == "audit" and ns.verify and ns.limit is not None:
        parser.error("audit: --limit does not go with --verify (it checks the whole log)")
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
    return json.dumps(timed(answer)) if as_json else event_line(answer)


#: The daemon's refusals of an argument's value (a bad argument: exit status 2).
BAD_ARGUMENT = {"invalid_field", "missing_field", "ambiguous_parcel"}


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


if __name__ == "__main__":
    sys.exit(main())
