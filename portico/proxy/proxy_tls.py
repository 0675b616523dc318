"""`enable_proxy` on the TLS port: the PROXY protocol header comes before the TLS handshake.

asyncio cannot start TLS on bytes it has already read, so this listener accepts sockets itself and reads the
header straight from each socket: it peeks, consumes exactly the header's bytes (never a byte of the TLS
ClientHello), then hands the socket to asyncio's TLS with the client address the header gave. As on the plain
port, a connection without a header is served as it is, and a malformed one is closed.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from typing import Any

from portico.proxy.admission import Listener
from portico.proxy.proxy_protocol import NEED_MORE, ProxyHeaderError, parse

log = logging.getLogger("portico.proxy")

_PEEK = 536            # more than any v1 line; a v2 header longer than this is read in steps


class ProxiedTlsListener(Listener):
    """A Listener (pausable by admission control) that reads PROXY headers before the handshake."""

    def __init__(self, listener: Listener, header_timeout: float) -> None:
        super().__init__(listener.loop, listener.factory, listener.sock, listener.ssl, listener.handshake_timeout)
        self.header_timeout = header_timeout
        self.reading = False
        self.waiting: set[_HeaderReader] = set()

    async def serve(self) -> None:
        if not self.reading and not self.closed:
            self.loop.add_reader(self.sock.fileno(), self._accept)
            self.reading = True

    def pause(self) -> None:
        if self.reading:
            self.loop.remove_reader(self.sock.fileno())
            self.reading = False

    def close(self) -> None:
        self.closed = True
        self.pause()
        for reader in list(self.waiting):
            reader.drop()
        self.sock.close()

    def _accept(self) -> None:
        for _ in range(64):
            try:
                conn, _ = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.warning("accept on the TLS port failed: %s", exc)
                return
            conn.setblocking(False)
            _HeaderReader(self, conn).start()


class _HeaderReader:
    """One accepted socket until its PROXY header (or its absence) is known."""

    def __init__(self, listener: ProxiedTlsListener, conn: socket.socket) -> None:
        self.listener = listener
        self.loop = listener.loop
        self.conn = conn
        self.consumed = b""
        self.timer: asyncio.TimerHandle | None = None

    def start(self) -> None:
        self.listener.waiting.add(self)
        self.loop.add_reader(self.conn.fileno(), self._readable)
        if self.listener.header_timeout:
            self.timer = self.loop.call_later(self.listener.header_timeout, self.drop)

    def _stop_watching(self) -> None:
        self.listener.waiting.discard(self)
        self.loop.remove_reader(self.conn.fileno())
        if self.timer is not None:
            self.timer.cancel()

    def drop(self) -> None:
        self._stop_watching()
        self.conn.close()

    def _readable(self) -> None:
        try:
            peeked = self.conn.recv(_PEEK, socket.MSG_PEEK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.drop()
            return
        if not peeked:
            self.drop()
            return
        data = self.consumed + peeked
        try:
            found = parse(data)
        except ProxyHeaderError as exc:
            log.info("closing a TLS-port connection: %s", exc)
            self.drop()
            return
        if found is NEED_MORE:
            # Everything seen so far is header: take it, and wait for the rest.
            self.consumed += self.conn.recv(len(peeked))
            return
        length, address = found
        if length > len(self.consumed):
            self.conn.recv(length - len(self.consumed))   # exactly the rest of the header
        self._stop_watching()
        self.loop.create_task(self._start_tls(address))

    async def _start_tls(self, address: tuple[str, int] | None) -> None:
        listener = self.listener
        try:
            await self.loop.connect_accepted_socket(lambda: _addressed(listener.factory(), address), self.conn,
                                                    ssl=listener.ssl,
                                                    ssl_handshake_timeout=listener.handshake_timeout)
        except (TimeoutError, OSError, ssl.SSLError, ConnectionError):
            self.conn.close()


def _addressed(protocol: Any, address: tuple[str, int] | None) -> Any:
    """The client connection, told the PROXY header's address as soon as it is made."""
    if address is None:
        return protocol
    made = protocol.connection_made

    def connection_made(transport: Any) -> None:
        made(transport)
        protocol.set_client_address(*address)

    protocol.connection_made = connection_made
    return protocol
