"""What ``lockerctl`` prints: each answer as text for a person, or as JSON for a script.

The daemon answers with times as Unix seconds (as it keeps them, and as sync sends
them); every time is printed here as local ISO 8601 with its UTC offset, in text and
in JSON alike: an event's ``at`` and the times in its data, a parcel's ``pickup_by``
and ``*_at``, the sync link's ``last_ok``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any


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


def timed(value: Any) -> Any:
    """``value`` with every time in it, at any depth (an event's ``at`` and the deadlines
    in its data, a parcel's ``pickup_by`` and ``*_at``), as local ISO 8601."""
    if isinstance(value, dict):
        return {k: local_time(v) if _is_time(k, v) else timed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [timed(v) for v in value]
    return value


def as_json(result: Any) -> str:
    """An answer as ``--json`` prints it: the daemon's, with its times as local ISO 8601."""
    return json.dumps(timed(result), indent=2)


def event_line(event: dict[str, Any]) -> str:
    data = json.dumps(timed(event["data"]), sort_keys=True)
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
        f" {p['state']:<19} {p['compartment_id'] or '-'}"
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
    "events": lambda result: "\n".join(event_line(e) for e in result) or "(no events)",
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
