"""A per-worker bound on open client connections (`max_client_connections`), so file descriptors never run out.

Past the bound the worker stops accepting: its listening sockets stay bound and listening, so new connections
wait in the kernel's backlog instead of being refused or reset, and the event loop simply stops taking them.
That is done by serving each listening socket through a duplicate of it: pausing closes the loop's server
(and the duplicate), resuming serves a fresh duplicate. Accepting resumes once the count is 5 % below the
bound, so a worker at its limit does not flap between the two on every close.

Slow clients cannot hold their places for long: a connection must send its first request head within
`request_header_timeout` (the proxy's sweep closes it otherwise), so slowloris connections are shed and the
backlog moves on.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import socket
import ssl as ssl_module
from collections.abc import Callable
from typing import Any

log = logging.getLogger("portico.proxy")

_RESERVED_FDS = 64   # listeners, NATS, etcd, logs, status server


def raise_fd_limit() -> int:
    """Raise the soft open-files limit to the hard one (as Go programs like gorouter do); the soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = max(soft, 1 << 20)
    if soft != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


def default_limit(fd_limit: int) -> int:
    """Each client connection may hold a backend connection too: half the descriptors, less a reserve."""
    return max(64, (fd_limit - _RESERVED_FDS) // 2)


class Listener:
    """One listening socket whose accepting can be paused and resumed without closing it."""

    def __init__(self, loop: asyncio.AbstractEventLoop, factory: Callable[[], asyncio.Protocol],
                 sock: socket.socket, ssl: ssl_module.SSLContext | None,
                 handshake_timeout: float | None = None) -> None:
        self.loop = loop
        self.factory = factory
        self.sock = sock
        self.ssl = ssl
        self.handshake_timeout = handshake_timeout if ssl is not None else None
        self.server: asyncio.AbstractServer | None = None
        self.closed = False

    @property
    def port(self) -> int:
        return self.sock.getsockname()[1]

    async def serve(self) -> None:
        if self.server is None and not self.closed:
            self.server = await self.loop.create_server(self.factory, sock=self.sock.dup(), ssl=self.ssl,
                                                        backlog=4096, ssl_handshake_timeout=self.handshake_timeout)

    def pause(self) -> None:
        server, self.server = self.server, None
        if server is not None:
            server.close()   # the duplicate; the socket itself keeps listening

    def close(self) -> None:
        self.closed = True
        self.pause()
        self.sock.close()


async def listen(loop: asyncio.AbstractEventLoop, factory: Callable[[], Any], host: str, port: int,
                 *, ssl: ssl_module.SSLContext | None = None, reuse_port: bool = False,
                 backlog: int = 4096, handshake_timeout: float | None = None) -> list[Listener]:
    """Bind and listen on every address `host` resolves to (as asyncio's create_server does), and accept.

    `factory` makes a protocol: an asyncio.Protocol or any object with its methods (ClientConnection is one by
    its methods only). `handshake_timeout` bounds a TLS handshake: a connection is counted (and its request
    head timed) only once its handshake is done, so a client stalling the handshake is shed by this instead."""
    listeners: list[Listener] = []
    seen = set()
    try:
        for family, kind, proto, _, address in socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM,
                                                                  flags=socket.AI_PASSIVE):
            if (family, address) in seen:
                continue
            seen.add((family, address))
            sock = socket.socket(family, kind, proto)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if reuse_port:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                if family == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                sock.bind(address)
                sock.listen(backlog)
                sock.setblocking(False)
            except OSError:
                sock.close()
                raise
            listener = Listener(loop, factory, sock, ssl, handshake_timeout)
            listeners.append(listener)
            await listener.serve()
    except OSError:
        for listener in listeners:
            listener.close()
        raise
    return listeners


class Admission:
    """Counts this worker's open client connections and pauses its listeners at `limit`."""

    def __init__(self, loop: asyncio.AbstractEventLoop, limit: int) -> None:
        self.loop = loop
        self.limit = limit
        self.resume_below = max(1, limit - max(1, limit // 20))
        self.open = 0
        self.listeners: list[Listener] = []
        self.paused = False
        self.pauses = 0            # times the limit was reached
        self.stopped = False       # draining or stopped: never resume
        self._resuming: asyncio.Task | None = None

    def opened(self) -> None:
        self.open += 1
        if self.open >= self.limit and not self.paused and not self.stopped:
            self.paused = True
            self.pauses += 1
            for listener in self.listeners:
                listener.pause()
            log.warning("%d client connections open (max_client_connections): not accepting until fewer "
                        "than %d", self.open, self.resume_below)

    def closed(self) -> None:
        self.open -= 1
        if self.paused and self.open < self.resume_below and not self.stopped and self._resuming is None:
            self._resuming = self.loop.create_task(self._resume())

    async def _resume(self) -> None:
        try:
            for listener in self.listeners:
                if not self.stopped:
                    await listener.serve()
            if not self.stopped:
                self.paused = False
                log.info("accepting client connections again (%d open)", self.open)
        except OSError as exc:
            log.error("could not resume accepting connections: %s", exc)
        finally:
            self._resuming = None

    def stop(self) -> None:
        """Stop accepting for good (draining, stopping)."""
        self.stopped = True
        for listener in self.listeners:
            listener.pause()
