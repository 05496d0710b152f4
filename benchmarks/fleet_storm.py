"""A fleet's reconnect storm: N lockers on one mosquitto over mutual TLS, then the broker restarts.

Each simulated locker is a coroutine holding one TLS connection (ECDSA P-256
client certificates, ``require_certificate`` on the broker) and reconnecting
by the daemon's own policy (lockerd/sync/redial.py: the first retry drawn
within the window, full jitter after, at most 4 connects a minute). The
broker is restarted once the fleet is connected; the run reports the peak
attempts a second, failed attempts, and the time until 95% and 100% are
back, per first-retry window, with the broker's and the clients' CPU and
memory. ``--down-s`` keeps the broker stopped that long (an outage, not a
restart): times are from its stop. Then one locker's event throughput over
MQTT (the real transport and the reference back office) against AWS IoT
Core's per-connection cap.

Each simulated locker does on the wire what lockerd does on every connect
(MQTT 3.1.1): CONNECT with its will on ``lockers/{id}/conn``, SUBSCRIBE to
``ack``, ``rpc/res`` and ``cmd`` in one packet, and after SUBACK its presence
``{"online": true}`` at QoS 1; it counts as back at SUBACK. Every locker has
its own ECDSA P-256 client certificate, made once into ``--cert-cache`` and
reused by later runs (with the CA and the broker's). Run:
``python benchmarks/fleet_storm.py`` (about 5 minutes with the defaults on a
2-core machine, and about 10 s more the first time, for the certificates).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import os
import random
import resource
import ssl
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lockerd.sync import topics  # noqa: E402
from lockerd.sync.backoffice import ReferenceBackOffice  # noqa: E402
from lockerd.sync.client import fitting  # noqa: E402
from lockerd.sync.mqtt import BYTES_PER_S, PUBLISHES_PER_S, MqttTransport  # noqa: E402
from lockerd.sync.officemqtt import OfficeOnBroker  # noqa: E402
from lockerd.sync.redial import Redial  # noqa: E402
from tests.broker import Mosquitto  # noqa: E402
from tests.pki import certificate, new_key, pem  # noqa: E402

CONNECT_TIMEOUT_S = 20.0
AWS_PUBLISHES_PER_S, AWS_BYTES_PER_S = 100, 512 * 1024


def _string(text: str | bytes) -> bytes:
    data = text.encode() if isinstance(text, str) else text
    return len(data).to_bytes(2, "big") + data


def connect_packet(client_id: str, keepalive: int = 1200) -> bytes:
    """CONNECT, clean session, with lockerd's will (QoS 1, not retained)."""
    will = topics.topic(client_id, topics.CONN)
    flags = 0x02 | 0x04 | 0x08  # clean session, will, will QoS 1
    body = b"\x00\x04MQTT\x04" + bytes([flags]) + keepalive.to_bytes(2, "big")
    body += _string(client_id) + _string(will) + _string(topics.encode({"online": False}))
    return b"\x10" + _varint(len(body)) + body


def subscribe_packet(client_id: str, packet_id: int = 1) -> bytes:
    """The one SUBSCRIBE lockerd sends after CONNACK (QoS 1 each)."""
    body = packet_id.to_bytes(2, "big")
    for leaf in topics.DEVICE_SUBSCRIBES:
        body += _string(topics.topic(client_id, leaf)) + b"\x01"
    return b"\x82" + _varint(len(body)) + body


def presence_packet(client_id: str, packet_id: int = 2) -> bytes:
    """lockerd's presence after SUBACK: ``{"online": true}`` on conn, QoS 1."""
    body = _string(topics.topic(client_id, topics.CONN)) + packet_id.to_bytes(2, "big")
    body += topics.encode({"online": True})
    return b"\x32" + _varint(len(body)) + body


async def read_packet(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One packet: its type byte and its body."""
    kind = (await reader.readexactly(1))[0]
    length, shift = 0, 0
    while True:
        digit = (await reader.readexactly(1))[0]
        length += (digit & 0x7F) << shift
        shift += 7
        if not digit & 0x80:
            return kind, await reader.readexactly(length)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


@dataclass
class Tally:
    """What the fleet did, with times from the moment the broker is stopped."""

    attempts: Counter[int] = field(default_factory=Counter)  # per second
    failures: Counter[str] = field(default_factory=Counter)
    connected: set[int] = field(default_factory=set)
    back_at: list[float] = field(default_factory=list)
    t0: float = 0.0
    counting: bool = False
    #: False from the broker's stop until its restarted listener is up.
    broker_up: bool = True
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def fail(self, kind: str) -> None:
        if self.counting:
            self.failures[kind if self.broker_up else f"{kind} (broker still down)"] += 1


async def one_locker(
    n: int, tls: ssl.SSLContext, port: int, redial: Redial, tally: Tally, gate: asyncio.Semaphore
) -> None:
    loop = asyncio.get_running_loop()
    first = True
    while True:
        await asyncio.sleep(max(0.0, redial.next_attempt(loop.time()) - loop.time()))
        started = loop.time()
        if tally.counting:
            tally.attempts[int(started - tally.t0)] += 1
        if first:  # the fleet's first connects are paced by the gate, not stormed
            async with gate:
                connection: tuple[asyncio.StreamReader, asyncio.StreamWriter] | str
            connection = await attempt(n, tls, port, tally)
            first = False
        else:
            connection = await attempt(n, tls, port, tally)
        refused = connection == "ConnectionRefusedError"
        redial.attempted(started, ok=not isinstance(connection, str), refused=refused)
        if isinstance(connection, str):
            continue
        await hold(n, connection, tally)
        redial.lost()


async def attempt(
    n: int, tls: ssl.SSLContext, port: int, tally: Tally
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | str:
    """The connection, or what failed."""
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(
                "127.0.0.1", port, ssl=tls, server_hostname="localhost" if tls else None
            ),
            CONNECT_TIMEOUT_S,
        )
        client_id = f"storm-{n:05}"
        writer.write(connect_packet(client_id))
        kind, connack = await asyncio.wait_for(read_packet(reader), CONNECT_TIMEOUT_S)
        if kind != 0x20 or connack[1] != 0:
            tally.fail("CONNACK refused")
            writer.close()
            return "CONNACK refused"
        writer.write(subscribe_packet(client_id))
        kind, suback = await asyncio.wait_for(read_packet(reader), CONNECT_TIMEOUT_S)
        if kind != 0x90 or any(code & 0x80 for code in suback[2:]):
            tally.fail("SUBACK refused")
            writer.close()
            return "SUBACK refused"
    except TimeoutError:
        tally.fail("timed out")
        return "timed out"
    except (OSError, asyncio.IncompleteReadError, ssl.SSLError) as exc:
        tally.fail(type(exc).__name__)
        return type(exc).__name__
    return reader, writer


async def hold(
    n: int, connection: tuple[asyncio.StreamReader, asyncio.StreamWriter], tally: Tally
) -> None:
    reader, writer = connection
    tally.connected.add(n)  # at SUBACK, as lockerd is
    if tally.counting:
        tally.back_at.append(asyncio.get_running_loop().time() - tally.t0)
    tally.changed.set()
    writer.write(presence_packet(f"storm-{n:05}"))
    with contextlib.suppress(OSError, ssl.SSLError):
        while await reader.read(4096):
            pass
    tally.connected.discard(n)
    writer.close()


class FleetPki:
    """A CA, the broker's certificate and one ECDSA P-256 certificate per locker, kept in
    ``folder`` for later runs (made again once the CA is within a day of expiry)."""

    DAYS = 30

    def __init__(self, folder: Path):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.ca_file, ca_key = folder / "ca.pem", folder / "ca.key"
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization

        if self.ca_file.exists() and ca_key.exists():
            self.cert = x509.load_pem_x509_certificate(self.ca_file.read_bytes())
            self.key = serialization.load_pem_private_key(ca_key.read_bytes(), None)
            ends = self.cert.not_valid_after_utc
            if ends - datetime.datetime.now(datetime.UTC) > datetime.timedelta(days=1):
                return
        for old in folder.glob("*.*"):
            old.unlink()
        self.key = new_key()
        self.cert = certificate("lockerd fleet storm CA", self.key, ca=True, days=self.DAYS)
        pem(self.ca_file, cert=self.cert)
        pem(ca_key, key=self.key)

    def issue(self, name: str) -> tuple[Path, Path]:
        """``name``'s certificate and key, made if not kept yet."""
        cert_file, key_file = self.folder / f"{name}.pem", self.folder / f"{name}.key"
        if not (cert_file.exists() and key_file.exists()):
            key = new_key()
            cert = certificate(name, key, self.cert, self.key, days=self.DAYS)
            pem(key_file, key=key)
            pem(cert_file, cert=cert)
        return cert_file, key_file


def contexts(pki: FleetPki, count: int) -> list[ssl.SSLContext]:
    """One client TLS context per locker, each with its own certificate."""
    pool = []
    for index in range(count):
        context = ssl.create_default_context(cafile=str(pki.ca_file))
        context.load_cert_chain(*pki.issue(f"storm-{index:05}"))
        pool.append(context)
    return pool


async def until(tally: Tally, predicate: object, within: float) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not predicate():  # type: ignore[operator]
        tally.changed.clear()
        left = deadline - asyncio.get_running_loop().time()
        if left <= 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(tally.changed.wait(), min(left, 1.0))


def cpu_of(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100.0  # utime + stime, clock ticks


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def storm(args: argparse.Namespace, window: float, folder: Path) -> dict[str, object]:
    pki = FleetPki(args.cert_cache)
    broker = Mosquitto(folder / "broker", tls=pki, quiet=True)  # type: ignore[arg-type]
    await broker.start()
    pool = contexts(pki, args.lockers)
    tally = Tally()
    gate = asyncio.Semaphore(args.ramp_concurrency)
    rng = random.Random(window)
    loop = asyncio.get_running_loop()
    ramp_start = loop.time()
    tasks = [
        asyncio.ensure_future(
            one_locker(n, pool[n], broker.port,
                       Redial(window, 2.0, 300.0, random.Random(rng.random())), tally, gate)
        )
        for n in range(args.lockers)
    ]  # fmt: skip
    await until(tally, lambda: len(tally.connected) == args.lockers, 600)
    ramp_s = loop.time() - ramp_start
    client_cpu0 = time.process_time()
    tally.broker_up, tally.t0, tally.counting = False, loop.time(), True
    await broker.stop()
    await asyncio.sleep(args.down_s)  # the outage: every attempt meanwhile is refused
    await broker.start()
    tally.broker_up = True
    down_s = loop.time() - tally.t0
    broker_cpu0 = cpu_of(broker.pid)
    await until(tally, lambda: len(tally.connected) == args.lockers, window * 3 + 300)
    recovered = loop.time() - tally.t0
    result = {
        "window_s": window,
        "down_s": down_s,
        "ramp_connects_per_s": args.lockers / ramp_s,
        "peak_attempts_per_s": max(tally.attempts.values(), default=0),
        "attempts": sum(tally.attempts.values()),
        "failed": dict(tally.failures),
        "back_95_s": sorted(tally.back_at)[int(0.95 * args.lockers) - 1],
        "back_100_s": recovered if len(tally.connected) == args.lockers else None,
        "broker_cpu_s": cpu_of(broker.pid) - broker_cpu0,
        "broker_rss_mb": rss_mb(broker.pid),
        "client_cpu_s": time.process_time() - client_cpu0,
        "client_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await broker.stop()
    return result


async def throughput(args: argparse.Namespace, folder: Path) -> dict[str, float]:
    """One locker pushing a backlog through the real transport to the reference back office."""
    broker = await Mosquitto(folder / "tp-broker", quiet=True).start()
    office = ReferenceBackOffice("token")
    face = OfficeOnBroker(office, broker.url)
    await face.start()
    redial = Redial(0.0, 1.0, 10.0)
    transport = MqttTransport(broker.url, "throughput-locker", redial=redial, timeout_s=20)
    events = [
        {"seq": n, "type": "door.closed", "at": 1.8e9 + n,
         "data": {"compartment": f"A{n % 48}", "by": "pickup", "flow": n}}
        for n in range(1, args.events + 1)
    ]  # fmt: skip
    started, publishes, sent_bytes, acked = time.perf_counter(), 0, 0, 0
    while acked < len(events):
        batch = fitting(events[acked:acked + 5000], 1, 98304)  # fmt: skip
        acked = await transport.push(batch, 1)
        publishes += 1
        sent_bytes += office.push_bytes[-1]
    elapsed = time.perf_counter() - started
    await transport.close()
    await face.stop()
    await broker.stop()
    office.close()
    per_event = sent_bytes / len(events)
    return {
        "events": len(events),
        "seconds": elapsed,
        "events_per_s": len(events) / elapsed,
        "publishes_per_s": publishes / elapsed,
        "kib_per_s": sent_bytes / elapsed / 1024,
        "bytes_per_event": per_event,
        "aws_cap_events_per_s": min(
            AWS_BYTES_PER_S / per_event, AWS_PUBLISHES_PER_S * 98304 / per_event
        ),
        "paced_cap_events_per_s": min(BYTES_PER_S / per_event, PUBLISHES_PER_S * 98304 / per_event),
    }


def cap(bytes_per_s: float, publishes_per_s: float, per_event: float) -> float:
    """Events a second a connection may carry in 96 KiB batches under both limits."""
    return min(bytes_per_s / per_event, publishes_per_s * 98304 / per_event)


def report(results: list[dict[str, object]], tp: dict[str, float] | None, lockers: int) -> None:
    print(f"fleet of {lockers} lockers, mosquitto over mutual TLS (ECDSA P-256), broker restarted")
    for r in results:
        failed: dict[str, int] = r["failed"]  # type: ignore[assignment]
        back = r["back_100_s"]
        print(
            f"  first-retry window {r['window_s']:>4g} s, broker down {r['down_s']:.1f} s:"
            f" steady ramp {r['ramp_connects_per_s']:.0f} connects/s;"
            f" after the restart peak {r['peak_attempts_per_s']} attempts/s,"
            f" {r['attempts']} attempts, failed {sum(failed.values())} {failed},"
            f" 95% back {r['back_95_s']:.1f} s,"
            f" 100% back {'never' if back is None else f'{back:.1f}'} s;"
            f" broker CPU {r['broker_cpu_s']:.1f} s, RSS {r['broker_rss_mb']:.0f} MB;"
            f" client CPU {r['client_cpu_s']:.1f} s, RSS {r['client_rss_mb']:.0f} MB"
        )
    if tp is None:
        return
    print(
        f"one locker over MQTT: {tp['events']:.0f} events in {tp['seconds']:.1f} s ="
        f" {tp['events_per_s']:.0f} events/s, {tp['publishes_per_s']:.1f} publishes/s,"
        f" {tp['kib_per_s']:.0f} KiB/s ({tp['bytes_per_event']:.0f} B/event); AWS IoT Core's"
        f" per-connection cap allows {tp['aws_cap_events_per_s']:.0f} events/s; lockerd's"
        f" own pacing {tp['paced_cap_events_per_s']:.0f} events/s"
    )


async def main(args: argparse.Namespace) -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    with tempfile.TemporaryDirectory() as folder:
        results = []
        for window in args.windows:
            sub = Path(folder) / f"w{window:g}"
            sub.mkdir()
            results.append(await storm(args, window, sub))
            print(results[-1], flush=True)
        tp = await throughput(args, Path(folder)) if args.events else None
    report(results, tp, args.lockers)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lockers", type=int, default=10_000)
    parser.add_argument("--windows", type=float, nargs="+", default=[1.0, 60.0])
    parser.add_argument(
        "--cert-cache", type=Path,
        default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
        / "lockerd" / "fleet-storm",
        help="folder the CA and one certificate per locker are made in once, and reused",
    )  # fmt: skip
    parser.add_argument("--ramp-concurrency", type=int, default=64)
    parser.add_argument(
        "--events", type=int, default=100_000, help="the throughput run's backlog (0: no run)"
    )
    parser.add_argument(
        "--down-s", type=float, default=0.0,
        help="how long the broker stays stopped before it starts again (its own restart,"
        " about 1.2 s, comes on top)",
    )  # fmt: skip
    asyncio.run(main(parser.parse_args()))
