"""paho-mqtt driven from the asyncio loop: its socket watched with add_reader/add_writer.

paho's own network thread is not used (one loop owns all state, DESIGN.md
section 2). Its blocking ``connect`` (TCP, TLS handshake, WebSocket upgrade)
runs in the default executor; every socket callback it makes from there is
handed to the loop with ``call_soon_threadsafe``. A connect given up (its
deadline passed, or the driver closed) cannot be taken back from that thread,
so it is abandoned: a socket that opens afterwards is closed there and then,
before paho sends CONNECT on it, and nothing of it reaches the loop. ``loop_misc`` (keep-alive
pings, in-flight retries) runs once a second while a socket is open. This is
the pattern aiomqtt 2 uses, without its acknowledge-on-arrival.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as paho

MISC_EVERY_S = 1.0


class ConnectAbandoned(ConnectionError):
    """A socket opened after its connect was given up: closed unused."""


class LoopDriver:
    """Attaches one paho client to the running asyncio loop."""

    def __init__(self, client: paho.Client, loop: asyncio.AbstractEventLoop):
        self.client, self.loop = client, loop
        self._thread = threading.get_ident()
        self._misc: asyncio.Task[None] | None = None
        self._fd: int | None = None
        #: Guards the hand-over of a socket opened in the executor against abandonment.
        self._gate = threading.Lock()
        self._abandoned = self._handed = False
        self._connecting: asyncio.Future[Any] | None = None
        client.on_socket_open = lambda c, u, sock: self._socket_open(sock)
        client.on_socket_close = lambda c, u, sock: self._on_loop(self._closed, sock)
        client.on_socket_register_write = lambda c, u, sock: self._on_loop(self._want_write, sock)
        client.on_socket_unregister_write = lambda c, u, sock: self._on_loop(self._wrote, sock)

    async def connect(
        self, host: str, port: int, keepalive: int, within_s: float | None = None, **kwargs: Any
    ) -> None:
        """Open the socket and send CONNECT (the CONNACK arrives through ``on_connect``)
        within ``within_s`` seconds; past it, or if cancelled, the connect is abandoned
        (TimeoutError) and never sends CONNECT."""
        if within_s is not None:
            self.client.connect_timeout = max(within_s, 0.1)  # each blocking step's own
        self._connecting = self.loop.run_in_executor(
            None, lambda: self.client.connect(host, port, keepalive, **kwargs)
        )
        try:
            async with asyncio.timeout(within_s):  # not wait_for: 3.11's can lose a cancel
                await asyncio.shield(self._connecting)
        except BaseException:
            await self.close()
            raise

    def _socket_open(self, sock: Any) -> None:
        """paho's socket is open (in the executor: CONNECT goes out right after)."""
        with self._gate:
            if self._abandoned:
                sock.close()
                raise ConnectAbandoned("the connect was given up before its socket opened")
            self._handed = True
        self._on_loop(self._opened, sock)

    def _on_loop(self, action: Callable[[Any], None], sock: Any) -> None:
        if threading.get_ident() == self._thread:
            action(sock)
        else:
            self.loop.call_soon_threadsafe(action, sock)

    def _opened(self, sock: Any) -> None:
        if self._abandoned:
            return  # closed before this arrived: close() has dealt with the socket
        self._fd = sock.fileno()
        self.loop.add_reader(self._fd, self._read)
        if self._misc is None or self._misc.done():
            self._misc = self.loop.create_task(self._misc_loop())

    def _closed(self, sock: Any) -> None:
        if self._fd is not None:
            self.loop.remove_reader(self._fd)
            self.loop.remove_writer(self._fd)
            self._fd = None
        if self._misc is not None:
            self._misc.cancel()
            self._misc = None

    def _want_write(self, sock: Any) -> None:
        if self._fd is not None:
            self.loop.add_writer(self._fd, self._write)

    def _wrote(self, sock: Any) -> None:
        if self._fd is not None:
            self.loop.remove_writer(self._fd)

    def _read(self) -> None:
        self.client.loop_read()

    def _write(self) -> None:
        self.client.loop_write()

    async def _misc_loop(self) -> None:
        # A timer, not a wait on an event: keep-alive is paced by the clock alone.
        while True:
            if self.client.loop_misc() != paho.MQTT_ERR_SUCCESS:
                return
            await asyncio.sleep(MISC_EVERY_S)

    async def close(self) -> None:
        """Send DISCONNECT if the socket takes it (no will then), and close the socket.
        A connect still opening its socket is abandoned: the client is left to it."""
        with self._gate:
            self._abandoned, handed = True, self._handed
        if self._connecting is not None and not self._connecting.done():
            if not handed:
                self._connecting.add_done_callback(_consume)
                self._closed(None)
                return
            await asyncio.gather(self._connecting, return_exceptions=True)  # CONNECT queued
        with contextlib.suppress(Exception):
            if self.client.disconnect() == paho.MQTT_ERR_SUCCESS:
                self.client.loop_write()  # writes DISCONNECT and closes the socket
        if self.client.socket() is not None:
            self.client._sock_close()  # a socket that never finished connecting
        self._closed(None)


def _consume(future: asyncio.Future[Any]) -> None:
    """The outcome of an abandoned connect: nobody waits for it."""
    if not future.cancelled():
        future.exception()
