"""Run the daemon: open the store and the hardware, start the locker and the kiosk API."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lockerd import __version__, hardware, scanning
from lockerd.bank import Bank
from lockerd.clock import Clock, SystemClock
from lockerd.config import Config
from lockerd.locker import Locker
from lockerd.notify import Notifier, Watchdog
from lockerd.store import Store
from lockerd.store._files import StateLock
from lockerd.worker import Runner, Worker

if TYPE_CHECKING:  # the sync client (aiohttp.client, or paho) is imported only with sync configured
    from lockerd.sync.coordinator import SyncCoordinator

log = logging.getLogger(__name__)


def assemble(
    config: Config, store: Store, hw: hardware.Hardware, clock: Clock, db: Runner
) -> Locker:
    """Wire the bank and the locker service over an open store and hardware."""

    async def authorize(comp_id: str, intent_id: int) -> bool:
        return await db(store.intents.is_pending, comp_id, intent_id)

    bank = Bank(config, hw.drivers, hw.workers, clock, authorize)
    return Locker(config, store, db, bank, clock)


@dataclass
class Running:
    """Everything a started daemon holds, in the order it is released."""

    locker: Locker
    hardware: hardware.Hardware
    store: Store
    db: Worker
    pollers: list[asyncio.Task[None]]
    scans: scanning.ScanHub
    scanners: scanning.Scanners
    lock: StateLock
    sync: SyncCoordinator | None = None
    sync_task: asyncio.Task[None] | None = None

    async def close(self) -> None:
        if self.sync_task is not None:
            self.sync_task.cancel()
            await asyncio.gather(self.sync_task, return_exceptions=True)
        if self.sync is not None:
            await self.sync.close()
        self.scanners.close()
        for task in self.pollers:
            task.cancel()
        await asyncio.gather(*self.pollers, return_exceptions=True)
        await self.locker.stop()
        await self.locker.bank.close()
        self.hardware.close()
        await self.db(self.store.close)
        self.db.shutdown()
        self.lock.release()


async def start(config: Config, clock: Clock | None = None) -> Running:
    """Open state and hardware and start watching doors; raise with the reason if anything fails."""
    clock = clock or SystemClock()
    lock, db, store, hw = await _open(config, clock)
    locker = assemble(config, store, hw, clock, db)
    await locker.start()
    loop = asyncio.get_running_loop()
    pollers = [loop.create_task(locker.bank.run_poller(bus.name)) for bus in config.bus]
    scans = scanning.ScanHub(clock, locker.publish)
    scans.attach(loop)
    running = Running(locker, hw, store, db, pollers, scans, scanning.Scanners(), lock)
    try:
        running.scanners = await loop.run_in_executor(
            None, scanning.build, config, scans.from_thread
        )
    except BaseException:
        await running.close()
        raise
    if config.sync.url:
        from lockerd.sync.coordinator import SyncCoordinator

        running.sync = SyncCoordinator(config, store, db, locker, clock)
        store.subscribe(running.sync.kick_from_thread(loop))
        running.sync_task = loop.create_task(running.sync.run())
    log.info(
        "lockerd %s: locker %s, %d compartments, schema %d, backends %s",
        __version__,
        config.locker.id,
        len(config.compartment),
        store.db.schema_version,
        hw.backends(),
    )
    return running


async def _open(config: Config, clock: Clock) -> tuple[StateLock, Worker, Store, hardware.Hardware]:
    """Lock the state folder, open the store on its thread and the hardware; on a failure,
    close what was opened and raise."""
    # Before anything opens the database: a second daemon stops here, having written nothing.
    lock = StateLock.acquire(config.database_path.parent)
    db = Worker("store")
    try:
        store = await db(Store.open, config, clock)
    except BaseException:
        db.shutdown()
        lock.release()
        raise
    try:
        await db(store.compartments.sync_layout)
        if config.kiosk.demo:
            await db(store.seed_demo, config.demo)
        hw = await asyncio.get_running_loop().run_in_executor(None, hardware.build, config)
    except BaseException:
        await db(store.close)
        db.shutdown()
        lock.release()
        raise
    return lock, db, store, hw


async def serve(config: Config, announce: Callable[[str], None] = print) -> None:
    """Run until SIGTERM or SIGINT."""
    from lockerd.commands import handlers
    from lockerd.control import ControlServer
    from lockerd.kiosk.server import KioskServer  # aiohttp.web only when serving

    notifier = Notifier()
    running = await start(config)
    server = KioskServer(config, running.locker, running.hardware, running.scans, running.scanners)
    control = ControlServer(config, running.locker, handlers(config, running.locker, running.sync))
    watchdog: asyncio.Task[None] | None = None
    try:
        url = await server.start()
        await control.start()
        # Ready once config, store and buses are open; a silent board is reported, not waited for.
        notifier.send(ready=1, status=status_line(running.locker, url))
        announce(f"lockerd {__version__} ready: kiosk at {url}")
        if notifier.watchdog_interval is not None:
            watchdog = asyncio.ensure_future(
                feed_watchdog(notifier, running.locker, url, notifier.watchdog_interval)
            )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        log.info("stopping")
        notifier.send(stopping=1, status="stopping")
    finally:
        if watchdog is not None:
            watchdog.cancel()
        await control.stop()
        await server.stop()
        await running.close()


def status_line(locker: Locker, url: str) -> str:
    """What ``systemctl status`` shows: ready, or degraded with the silent boards named."""
    silent = sorted(name for name, board in locker.bank.boards.items() if not board.online)
    if silent:
        return f"degraded: board {', '.join(silent)} silent; kiosk at {url}"
    return f"ready: {len(locker.bank.boards)} boards answering; kiosk at {url}"


async def feed_watchdog(notifier: Notifier, locker: Locker, url: str, interval: float) -> None:
    """From the main loop: ping while the pollers progress, and keep STATUS current."""
    watchdog = Watchdog(notifier, lambda: locker.bank.polls)
    status = status_line(locker, url)
    while True:
        await locker.clock.sleep(interval)
        watchdog.check()
        now = status_line(locker, url)
        if now != status:
            status = now
            notifier.send(status=status)
