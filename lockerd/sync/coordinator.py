"""The sync coordinator: one task that pushes the journal, pulls commands and applies them.

The locker never waits on it: flows write the journal and go on; the
coordinator reads the unsent tail from the store, pushes it in batches,
advances only on the back office's ``acked_seq``, then pulls commands by
cursor. A failed round waits a capped exponential back-off with full jitter,
cut short only by a transport's (re)connect (MQTT: its redial policy limits
those), after which the pull runs at once; refused credentials raise one
``sync.auth_failed`` alarm and then only a slow retry. See docs/sync-protocol.md.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from lockerd import qrtoken
from lockerd.clock import Clock
from lockerd.config import Config
from lockerd.domain import Event
from lockerd.errors import FlowError
from lockerd.flows import Kind
from lockerd.locker import Locker
from lockerd.store import Store
from lockerd.sync import apply, commands
from lockerd.sync.client import (
    AuthRejected,
    ProtocolError,
    SyncError,
    TooLarge,
    UnknownCursor,
    fitting,
)
from lockerd.sync.redial import PER_MINUTE
from lockerd.sync.transport import Transport, open_transport
from lockerd.worker import Runner

log = logging.getLogger(__name__)

MAX_PAGES = 20  # command pages in one round; the rest come next round
PRUNE_EVERY_S = 3600.0
#: A batch halved for being too large is doubled back after this long with none too large
#: (a proxy's or broker's limit may have gone; if not, one more 413 halves it again).
GROW_AFTER_S = 3600.0


class Backoff:
    """Capped exponential back-off with full jitter: uniform in 0..min(cap, base * 2^(n-1))."""

    def __init__(self, base: float, cap: float, rng: random.Random | None = None):
        self.base, self.cap = base, cap
        self.rng = rng or random.Random()

    def delay(self, failures: int) -> float:
        return self.rng.uniform(0, min(self.cap, self.base * 2 ** max(0, failures - 1)))


class StoredConnects:
    """The MQTT transport's connect attempts, kept in the locker's state (meta table) so
    that its per-minute cap holds across daemon restarts (a crash loop under systemd)."""

    def __init__(self, store: Store, db: Runner, clock: Clock):
        self.store, self.db, self.clock = store, db, clock

    async def ages(self) -> list[float]:
        now = self.clock.time()  # a time ahead of now (the clock set back) counts as now
        return [max(0.0, now - at) for at in await self.db(self.store.journal.recent_connects)]

    async def note(self) -> None:
        await self.db(self.store.journal.note_connect, self.clock.time(), PER_MINUTE)


class SyncCoordinator:
    def __init__(
        self,
        config: Config,
        store: Store,
        db: Runner,
        locker: Locker,
        clock: Clock,
        client: Transport | None = None,
        rng: random.Random | None = None,
    ):
        self.config, self.sync = config, config.sync
        self.store, self.db, self.locker, self.clock = store, db, locker, clock
        self._kick = asyncio.Event()
        #: Set by the transport when it has (re)connected: a round starts at once.
        self._reconnect = asyncio.Event()
        self.client = client or open_transport(
            config,
            wake=self._kick.set,
            reconnected=self.reconnected,
            ledger=StoredConnects(store, db, clock),
        )
        self.backoff = Backoff(self.sync.backoff_base_s, self.sync.backoff_max_s, rng)
        self.keys = [qrtoken.public_key(k) for k in self.sync.command_keys]
        #: Events in one push: ``sync.batch``, halved at each 413 (a proxy's body limit),
        #: doubled back after GROW_AFTER_S with none.
        self.batch = self.sync.batch
        #: When the batch was last cut, or grown back short of ``sync.batch`` (None: full).
        self._cut_at: float | None = None
        self.failures = 0
        self.auth_failed = False
        self.over_budget = False
        self.last_error = ""
        self.last_ok: float | None = None
        self.rounds = 0
        self._started = clock.monotonic()
        self._next_heartbeat = clock.monotonic()
        self._next_prune = clock.monotonic()

    # -- running ---------------------------------------------------------------

    def kick_from_thread(self, loop: asyncio.AbstractEventLoop) -> Callable[[Any], None]:
        """A store listener that starts a round soon after new events are committed."""

        def kick(events: Any) -> None:
            loop.call_soon_threadsafe(self._kick.set)

        return kick

    def reconnected(self) -> None:
        """The transport has (re)connected: run a round now, back-off or not (what
        happened while away is pulled by cursor)."""
        self._reconnect.set()
        self._kick.set()

    async def run(self) -> None:
        """Sync until cancelled; never raises for a network or back-office fault."""
        while True:
            self._kick.clear()
            self._reconnect.clear()
            delay = await self.round()
            await self._wait(delay, wake_on_kick=self.failures == 0)

    async def round(self) -> float:
        """One round; the delay before the next."""
        self.rounds += 1
        try:
            await self.housekeeping()
            await self.sync_once()
        except AuthRejected as exc:
            self.failures += 1
            self.last_error = str(exc)
            if not self.auth_failed:
                self.auth_failed = True
                log.error("sync: the back office refused this locker's credentials: %s", exc)
                await self.db(
                    self.store.journal.record, Event.SYNC_AUTH_FAILED, {"error": str(exc)}
                )
            return self.sync.backoff_max_s
        except SyncError as exc:
            self.failures += 1
            self.last_error = str(exc)
            level = logging.ERROR if isinstance(exc, ProtocolError) else logging.WARNING
            log.log(level, "sync round failed (%d in a row): %s", self.failures, exc)
            return self.backoff.delay(self.failures)
        except Exception as exc:  # a fault here must not end sync for good: log it, back off
            self.failures += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.exception("sync round failed unexpectedly (%d in a row)", self.failures)
            return self.backoff.delay(self.failures)
        if self.auth_failed:
            log.info("sync: the back office accepts this locker's credentials again")
        self.failures, self.auth_failed, self.last_error = 0, False, ""
        self.last_ok = self.clock.time()
        return self.sync.interval_s

    async def _wait(self, delay: float, wake_on_kick: bool) -> None:
        sleeper = asyncio.ensure_future(self.clock.sleep(delay))
        waits: set[asyncio.Future[Any]] = {sleeper, asyncio.ensure_future(self._reconnect.wait())}
        if wake_on_kick:
            waits.add(asyncio.ensure_future(self._kick.wait()))
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waits:
                waiter.cancel()
        if not sleeper.done() and not self._reconnect.is_set():
            await self.clock.sleep(1.0)  # let a burst of events gather into one batch

    async def close(self) -> None:
        await self.client.close()

    def status(self) -> dict[str, Any]:
        return {
            "url": self.sync.url,
            "ok": self.failures == 0 and self.last_ok is not None,
            "auth_failed": self.auth_failed,
            "failures": self.failures,
            "last_error": self.last_error,
            "last_ok": self.last_ok,
            "rounds": self.rounds,
        }

    # -- one round ---------------------------------------------------------------

    async def sync_once(self) -> None:
        """Push every unsent event, then pull and apply the commands waiting. A push that
        fails still lets the pull run (a revoke must not wait on event intake); the round
        then fails with the push's error. Refused credentials end the round at once."""
        try:
            await self.push_all()
        except AuthRejected:
            raise
        except SyncError as exc:
            await self.pull_all()
            raise exc
        await self.pull_all()

    async def push_all(self) -> None:
        self._grow_back()
        while True:
            events = await self.db(self.store.journal.unsent, self.batch)
            if not events:
                return
            first_seq = await self.db(self.store.journal.held_from)
            events = fitting(events, first_seq, self.sync.batch_bytes)
            try:
                acked = await self.client.push(events, first_seq)
            except TooLarge:
                if len(events) == 1:
                    raise
                self.batch = max(1, len(events) // 2)
                self._cut_at = self.clock.monotonic()
                log.warning(
                    "sync: a push of %d events was too large; now %d", len(events), self.batch
                )
                continue
            await self._acknowledged(acked, events, first_seq)

    def _grow_back(self) -> None:
        """Double a cut batch (up to ``sync.batch``) once GROW_AFTER_S have passed since
        it was cut or last grown."""
        now = self.clock.monotonic()
        if self._cut_at is None or now - self._cut_at < GROW_AFTER_S:
            return
        self.batch = min(self.sync.batch, self.batch * 2)
        self._cut_at = None if self.batch == self.sync.batch else now
        log.info(
            "sync: no push too large for %.0f s; %d events a push now", GROW_AFTER_S, self.batch
        )

    async def _acknowledged(
        self, acked: int, events: Sequence[Mapping[str, Any]], first_seq: int
    ) -> None:
        """Move the mark to the back office's ``acked_seq`` (back too: the events from there
        go again at once); ProtocolError when it stored nothing new, answered past what
        was sent, or will not adopt the locker from ``first_seq``."""
        before, _ = await self.db(self.store.journal.sync_position)
        if acked > events[-1]["seq"]:
            raise ProtocolError(f"acked_seq {acked} is past the last event sent")
        if acked < before:
            log.warning("sync: the back office went back from %d to %d; resending", before, acked)
        await self.db(self.store.journal.acknowledge, acked)
        if acked < first_seq - 1:
            raise ProtocolError(
                f"the back office holds events up to {acked}, and this locker holds them only"
                f" from {first_seq}: it must adopt from first_seq (docs/sync-protocol.md)"
            )
        if acked == before:
            raise ProtocolError(f"the back office stored none of events {before + 1}..")

    async def pull_all(self) -> None:
        _, cursor = await self.db(self.store.journal.sync_position)
        for _ in range(MAX_PAGES):
            try:
                raw_commands, next_cursor = await self.client.pull(cursor)
            except UnknownCursor:
                if not cursor:
                    raise
                log.warning("sync: the back office does not know cursor %r; from the start", cursor)
                await self.db(self.store.journal.save_cursor, "")
                cursor = ""
                continue
            for raw in raw_commands:
                await self.apply(raw)
            if next_cursor != cursor:
                await self.db(self.store.journal.save_cursor, next_cursor)
            if not raw_commands or next_cursor == cursor:
                return
            cursor = next_cursor

    async def apply(self, raw: Any) -> str:
        """Check and apply one command once; its outcome."""
        command_id = commands.command_id(raw)
        try:
            command = commands.parse(raw)
        except commands.Invalid as exc:
            if command_id is None:
                log.error("sync: a command without a usable id was refused: %s", exc)
                return "rejected"
            kind = str(raw.get("type"))[:64]
            return await self._reject(command_id, kind, f"invalid: {exc}")
        if await self.db(self.store.inbox.seen, command.id):
            return "duplicate"
        if command.expires_at <= self.clock.time():
            return await self._reject(command.id, command.type, "expired before it arrived")
        if command.type == "compartment.open":
            return await self._remote_open(command)
        comp = command.data.get("compartment")
        if command.type == "compartment.enable" and comp in self.config.compartment_ids:
            try:
                await self.locker.require_shut_and_latched(comp)
            except FlowError as exc:
                return await self._reject(command.id, command.type, exc.message)
        outcome = await self.db(apply.apply_command, self.store, command)
        if outcome == "applied" and command.type == "courier.revoke":
            self.locker.end_courier_sessions(command.data["id"])
        return outcome

    async def _remote_open(self, command: commands.Command) -> str:
        if not self.keys:
            return await self._reject(command.id, command.type, "remote opens are not enabled here")
        if not commands.signed_by(self.keys, self.config.locker.id, command):
            log.warning("sync: remote open %s has a signature no key made", command.id)
            return await self._reject(command.id, command.type, "the signature does not verify")
        outcome, reservation = await self.db(apply.reserve_remote_open, self.store, command)
        if reservation is not None:
            await self.locker.open_reserved(Kind.REMOTE, reservation)
        return str(outcome)

    async def _reject(self, command_id: str, kind: str, reason: str) -> str:
        recorded = await self.db(self.store.inbox.reject, command_id, kind, reason)
        return "rejected" if recorded else "duplicate"

    # -- housekeeping -----------------------------------------------------------------

    async def housekeeping(self) -> None:
        """Heartbeat when due, prune old acknowledged events, watch the disk budget."""
        now = self.clock.monotonic()
        if now >= self._next_heartbeat:
            self._next_heartbeat = now + self.sync.heartbeat_s
            await self.db(self.store.journal.record, Event.HEARTBEAT, await self.health())
        if now >= self._next_prune:
            self._next_prune = now + PRUNE_EVERY_S
            cutoff = self.clock.time() - self.sync.keep_acked_days * 86400
            pruned = await self.db(self.store.journal.prune_acked, cutoff)
            if pruned:
                log.info("sync: pruned %d acknowledged events", pruned)
        await self._check_budget()

    async def _check_budget(self) -> None:
        size = await self.db(self.store.journal.database_bytes)
        budget = self.sync.disk_budget_mb * 1024 * 1024
        if size > budget and not self.over_budget:
            self.over_budget = True
            unsent = await self.db(self.store.journal.unsent_count)
            log.error("database is %.1f MB, over its %.0f MB budget", size / 1e6, budget / 1e6)
            data = {"bytes": size, "budget": int(budget), "unsent": unsent}
            await self.db(self.store.journal.record, Event.STORAGE_OVER_BUDGET, data)
        elif size < 0.9 * budget:
            self.over_budget = False

    async def health(self) -> dict[str, Any]:
        rows = await self.db(self.store.compartments.all)
        return {
            "uptime_s": round(self.clock.monotonic() - self._started),
            "compartments": dict(Counter(str(r.state) for r in rows)),
            "boards": {name: b["online"] for name, b in self.locker.reads.boards().items()},
            "unsent": await self.db(self.store.journal.unsent_count),
            "sync_failures": self.failures,
            "open_seq": await self.db(self.store.intents.last_open_seq),
        }  # and the audit anchor, which the store adds as it writes the heartbeat
