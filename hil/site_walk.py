"""The site acceptance walk: scan the buses, then open every door for a person, and report.

    python -m hil.site_walk --config /etc/lockerd/lockerd.toml --walk [--only A1,B2] [--timeout 120]

It pulses real locks, so it runs only with ``--walk``. Stop the daemon first
(it holds the serial ports). The walk uses the real config and hardware but a
scratch state folder: the locker's own database is never touched. At each
door a person opens the door and shuts it again; the report says, per door,
whether the door sensor saw it open and shut and whether the lock reads
latched afterwards. Exit status 0 when every door passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
import tempfile
from collections.abc import Awaitable, Callable
from typing import Any

from lockerd import daemon
from lockerd.config import Config, ConfigError, load
from lockerd.desk import Desk

Print = Callable[[str], None]


async def walk(
    config: Config,
    *,
    only: list[str] | None = None,
    wait: float = 120.0,
    say: Print = print,
    on_start: Callable[[daemon.Running], Awaitable[Any]] | None = None,
) -> list[dict[str, Any]]:
    """Walk the bank; one report per door. ``on_start`` sees the running locker (tests)."""
    with tempfile.TemporaryDirectory(prefix="lockerd-walk-") as scratch:
        state = dataclasses.replace(config.state, directory=scratch, key_file="")
        running = await daemon.start(dataclasses.replace(config, state=state))
        try:
            if on_start is not None:
                await on_start(running)
            return await _walk(running, config, only, wait, say)
        finally:
            await running.close()


async def _walk(
    running: daemon.Running, config: Config, only: list[str] | None, wait: float, say: Print
) -> list[dict[str, Any]]:
    say("bus scan:")
    for board in await running.locker.reads.board_scan():
        answer = f"{board['answer_ms']} ms" if board["error"] is None else board["error"]
        say(f"  {board['board']} on {board['bus']}: {answer}")
    desk = Desk(running.locker)
    report = []
    for comp in config.compartment:
        if only and comp.id not in only:
            continue

        async def tell(text: str, comp_id: str = comp.id) -> None:
            say(f"{comp_id}: {text}")

        who = ("site-walk", "local", "site acceptance walk")
        report.append(await desk.door_cycle(comp.id, who, wait, tell))
    failed = [r["compartment"] for r in report if r["error"] or not r["closed"]]
    say(f"{len(report) - len(failed)} of {len(report)} doors passed" + (
        f"; failed: {', '.join(failed)}" if failed else ""
    ))  # fmt: skip
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hil.site_walk", description=__doc__)
    parser.add_argument("--config", required=True, help="the real bank's lockerd config")
    parser.add_argument("--walk", action="store_true", help="really pulse every lock")
    parser.add_argument("--only", help="compartments to walk, comma-separated (default: all)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds at each door")
    args = parser.parse_args(argv)
    if not args.walk:
        print("site_walk: this pulses every lock in the bank; add --walk to do it", file=sys.stderr)
        return 2
    try:
        config = load(args.config)
    except ConfigError as exc:
        print("\n".join(exc.problems), file=sys.stderr)
        return 2
    only = args.only.split(",") if args.only else None
    unknown = sorted(set(only or ()) - config.compartment_ids)
    if unknown:
        print(f"site_walk: no compartment {', '.join(unknown)} in {args.config}", file=sys.stderr)
        return 2
    report = asyncio.run(walk(config, only=only, wait=args.timeout))
    return 0 if all(r["closed"] and not r["error"] for r in report) else 1


if __name__ == "__main__":
    sys.exit(main())
