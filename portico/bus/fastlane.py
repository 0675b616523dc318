"""The route feed's fast lane: a lean NATS subscriber for router.register / router.unregister.

Why a hand-written protocol reader: a platform re-registers every route every ~20 s and a new router (or a
NATS restart) receives all of them at once, so ingest rate decides how soon a router is complete. Through
nats-py the router ingested only ~38k router.register messages per CPU-second on the 2-core bench VM
(in-process decode + apply alone ran ~81k/s with the router's gc tuning): nats-py's pure-Python protocol
parser, its per-message `Msg` object, pending queue and per-message callback dispatch took about half the
CPU. This reader cuts MSG frames straight out of each socket read (portico.bus.frames), makes no Python object
per message beyond the payload slice, and applies each payload right there (msgspec decode + table update):
no queue, no task switch. Measured when it was written (200k registrations): router CPU ~31-46k msg per
CPU-second through nats-py -> ~79-111k through this reader (docs/scale.md has today's figures).

Scope is deliberately small. One plain-TCP connection subscribed to exactly router.register (sid 1) and
router.unregister (sid 2): both on one connection, so a register and a later unregister of the same route
are applied in the order they were published. It answers server PINGs, sends its own PINGs to notice a dead
connection, skips headers if an HMSG ever arrives, and reconnects forever on its own (rotating servers,
capped backoff). With `nats.tls_enabled` it upgrades the connection to TLS after the server's INFO, as NATS
clients do, through the event loop's own TLS transport (`loop.start_tls`): TLS costs the lane only the
decryption. Everything low-volume - router.start, router.greet replies - stays on nats-py.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import ssl
import time
from collections.abc import Callable

from portico.bus.applier import PayloadApplier, RateLimitedLog
from portico.bus.backoff import FIRST_WAIT, MAX_WAIT, reconnect_delay
from portico.bus.frames import FrameParser, ProtocolError
from portico.bus.messages import REGISTER, UNREGISTER
from portico.config.values import parse_nats_url
from portico.routes.table import RouteTable
from portico.state import RouterState
from portico.tasks import cancel_and_wait

log = logging.getLogger("portico.bus")

_RCVBUF = 4 * 1024 * 1024         # absorb a re-registration burst in the kernel while a batch is applied
_PONG = b"PONG\r\n"
_PING = b"PING\r\n"


class _LaneProtocol(asyncio.Protocol):
    """One connection's life: CONNECT + SUBs on INFO, ready on the first PONG, frames to the parser."""

    def __init__(self, lane: FastLane, server_hostname: str = "") -> None:
        self.lane = lane
        self.server_hostname = server_hostname
        self.transport: asyncio.Transport = None  # type: ignore[assignment]  # set by connection_made
        self.greeted = False
        self.ready = False
        self.outstanding_pings = 0
        self.error: str | None = None
        loop = asyncio.get_running_loop()
        self.closed = loop.create_future()      # result: the exception the connection was lost with
        self.ready_fut = loop.create_future()   # done on the handshake's PONG (or failed when lost before)
        self.ready_fut.add_done_callback(_retrieve)
        self.parser = FrameParser(lane.applier.register, lane.applier.unregister, self._control)

    def connection_made(self, transport) -> None:
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RCVBUF)
            except OSError:
                pass

    def data_received(self, data: bytes) -> None:
        applier = self.lane.applier
        applier.batch_time = applier.clock()   # one timestamp for every message of this read
        try:
            self.parser.feed(data)
        except ProtocolError as err:
            self.error = str(err)
            log.warning("NATS route feed: %s; reconnecting", err)
            self.transport.abort()
        finally:
            applier.batch_time = None

    def eof_received(self):
        return False

    def connection_lost(self, exc) -> None:
        if not self.closed.done():
            self.closed.set_result(exc)
        if not self.ready_fut.done():
            reason = self.error or (_describe(exc) if exc is not None else "connection closed by server")
            self.ready_fut.set_exception(ConnectionError(reason))
        self.lane._connection_lost(self, exc)

    def _control(self, line: bytes) -> None:
        if line == b"PING":
            self.transport.write(_PONG)
        elif line == b"PONG":
            if self.outstanding_pings > 0:
                self.outstanding_pings -= 1
            if not self.ready:
                self.ready = True
                self.ready_fut.set_result(True)
                self.lane._connection_ready(self)
        elif line.startswith(b"INFO"):
            if not self.greeted:
                self.greeted = True
                tls = self.lane.tls_context
                if tls is not None:
                    self._start_tls(tls)   # CONNECT and SUBs go out once the handshake is done
                elif b'"tls_required":true' in line.replace(b" ", b""):
                    self._fail("the NATS server requires TLS; set nats.tls_enabled (and nats.ca_certs)")
                else:
                    self._send_handshake()
        elif line.startswith(b"-ERR"):
            self.error = line[5:].decode("utf-8", "replace").strip(" '")
            log.warning("NATS route feed: server error: %s", self.error)
        elif line == b"+OK":
            pass
        else:
            raise ProtocolError(f"unexpected protocol line {line[:80]!r}")

    def _send_handshake(self) -> None:
        self.transport.write(self.lane._handshake)
        self.outstanding_pings += 1  # the PING at the end of the handshake

    def _start_tls(self, ctx: ssl.SSLContext) -> None:
        loop = asyncio.get_running_loop()
        raw = self.transport
        upgrade = loop.create_task(loop.start_tls(raw, self, ctx, server_hostname=self.server_hostname,
                                                  ssl_handshake_timeout=self.lane.connect_timeout))

        def upgraded(task: asyncio.Task) -> None:
            if task.cancelled() or task.exception() is not None:
                exc = None if task.cancelled() else task.exception()
                err = "cancelled" if exc is None else _describe(exc)
                raw.abort()
                self._fail(f"TLS handshake failed: {err}")
                return
            self.transport = task.result()
            self._send_handshake()

        upgrade.add_done_callback(upgraded)

    def _fail(self, reason: str) -> None:
        """The connection cannot be used: record why and drop it (the lane reconnects)."""
        self.error = reason
        log.warning("NATS route feed: %s", reason)
        if self.transport is not None:
            self.transport.abort()
        if not self.ready_fut.done():
            self.ready_fut.set_exception(ConnectionError(reason))
        if not self.closed.done():
            self.closed.set_result(None)

    def ping(self) -> bool:
        """Send a keep-alive PING; False when too many went unanswered (the connection is then dropped)."""
        if self.outstanding_pings >= self.lane.max_outstanding_pings:
            log.warning("NATS route feed: %d PINGs unanswered; reconnecting", self.outstanding_pings)
            self.transport.abort()
            return False
        self.outstanding_pings += 1
        self.transport.write(_PING)
        return True


class FastLane:
    """Keeps one lean connection subscribed to router.register / router.unregister and applies them.

    `await start()` returns once subscribed (confirmed by a PONG), retrying while NATS is unreachable;
    afterwards it reconnects forever by itself. `on_connected(first: bool)` / `on_disconnected()` report the
    feed's state (RouteBus turns them into state.nats_connected, the reconnect hook and router.start).
    """

    def __init__(self, urls: list[str], table: RouteTable, state: RouterState,
                 clock: Callable[[], float] = time.monotonic, *, name: str = "portico-router-routes",
                 reconnect_wait: float = FIRST_WAIT, max_reconnect_wait: float = MAX_WAIT,
                 connect_timeout: float = 2.0,
                 ping_interval: float = 20.0, max_outstanding_pings: int = 3,
                 on_connected: Callable[[bool], None] | None = None,
                 on_disconnected: Callable[[], None] | None = None,
                 tls_context: ssl.SSLContext | None = None, token: str = "") -> None:
        if not urls:
            raise ValueError("no NATS servers configured")
        self.servers = [parse_nats_url(u) for u in urls]
        self.table = table
        self.state = state
        self.clock = clock
        self.name = name
        self.reconnect_wait = reconnect_wait
        self.max_reconnect_wait = max(max_reconnect_wait, reconnect_wait)
        self.connect_timeout = connect_timeout
        self.ping_interval = ping_interval
        self.max_outstanding_pings = max_outstanding_pings
        self.on_connected = on_connected
        self.on_disconnected = on_disconnected
        self.tls_context = tls_context        # None: plain TCP
        self.token = token
        self.connected = False
        self.connected_server: str | None = None
        self._proto: _LaneProtocol | None = None
        self._task: asyncio.Task | None = None
        self._ready: asyncio.Event | None = None
        self._stopping = False
        self._handshake = b""
        self._server_index = 0
        self._ever_connected = False
        self.applier = PayloadApplier(table, state.metrics, clock)
        self._failure_log = RateLimitedLog(burst=1, window=30.0)

    # ---- lifecycle ---------------------------------------------------------------------------------------

    async def start(self) -> None:
        self._stopping = False
        self._ready = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="portico-nats-route-feed")
        ready = asyncio.ensure_future(self._ready.wait())
        done, _ = await asyncio.wait({ready, self._task}, return_when=asyncio.FIRST_COMPLETED)
        if ready not in done:
            ready.cancel()
            self._task.result()  # the run loop died: raise its error

    async def stop(self) -> None:
        self._stopping = True
        task, self._task = self._task, None
        proto, self._proto = self._proto, None
        if proto is not None and proto.transport is not None:
            proto.transport.close()
        await cancel_and_wait(task)
        self.connected = False

    # ---- connection loop -----------------------------------------------------------------------------------

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        failures = 0
        while not self._stopping:
            server = self.servers[self._server_index % len(self.servers)]
            self._server_index += 1
            host, port, user, password = server.hostname, server.port, server.user, server.password
            proto = _LaneProtocol(self, host)
            self._handshake = self._connect_frames(user, password)
            try:
                # the factory is used within this await, so it cannot see a later iteration's proto
                async with asyncio.timeout(self.connect_timeout):
                    await loop.create_connection(lambda: proto, host, port)  # noqa: B023
                self._proto = proto
                async with asyncio.timeout(self.connect_timeout):
                    await asyncio.shield(proto.ready_fut)
            except (TimeoutError, OSError, ConnectionError) as err:
                if proto.transport is not None:
                    proto.transport.abort()
                reason = proto.error or _describe(err)
                failures += 1
                if self._failure_log.allow():
                    log.warning("NATS route feed cannot connect to %s:%d: %s; retrying", host, port, reason)
                else:
                    log.debug("NATS route feed cannot connect to %s:%d: %s", host, port, reason)
                if failures % len(self.servers) == 0:  # a full round failed: back off before the next one
                    rounds = failures // len(self.servers)
                    await asyncio.sleep(reconnect_delay(rounds, self.reconnect_wait, self.max_reconnect_wait))
                continue
            failures = 0
            self._failure_log = RateLimitedLog(burst=1, window=30.0)
            # connected and subscribed: keep it alive until it drops
            exc = await self._keepalive(proto)
            self._proto = None
            if self._stopping:
                return
            reason = proto.error or (_describe(exc) if exc is not None else "connection closed")
            log.warning("NATS route feed lost its connection to %s:%d (%s); reconnecting", host, port, reason)
            await asyncio.sleep(reconnect_delay(0, self.reconnect_wait, self.max_reconnect_wait))

    async def _keepalive(self, proto: _LaneProtocol):
        while True:
            try:
                async with asyncio.timeout(self.ping_interval):
                    return await asyncio.shield(proto.closed)
            except TimeoutError:
                proto.ping()

    def _connect_frames(self, user: str, password: str) -> bytes:
        opts = {"verbose": False, "pedantic": False, "protocol": 1, "lang": "python3", "version": "portico",
                "name": self.name, "headers": False, "no_responders": False}
        if user:
            opts["user"] = user
            opts["pass"] = password
        elif self.token:
            opts["auth_token"] = self.token
        if self.tls_context is not None:
            opts["tls_required"] = True
        return (b"CONNECT " + json.dumps(opts, separators=(",", ":")).encode() + b"\r\n"
                b"SUB " + REGISTER.encode() + b" 1\r\nSUB " + UNREGISTER.encode() + b" 2\r\nPING\r\n")

    # ---- protocol callbacks ---------------------------------------------------------------------------------

    def _connection_ready(self, proto: _LaneProtocol) -> None:
        if self._stopping:
            return
        first = not self._ever_connected
        self._ever_connected = True
        self.connected = True
        host, port = proto.transport.get_extra_info("peername")[:2]
        self.connected_server = f"{host}:{port}"
        if self._ready is not None:
            self._ready.set()
        if self.on_connected is not None:
            self.on_connected(first)

    def _connection_lost(self, proto: _LaneProtocol, exc) -> None:
        if not proto.ready:
            return
        self.connected = False
        self.connected_server = None
        if not self._stopping and self.on_disconnected is not None:
            self.on_disconnected()


def _retrieve(fut: asyncio.Future) -> None:
    if not fut.cancelled():
        fut.exception()  # a failed handshake nobody awaited is not an "exception never retrieved"


def _describe(err: BaseException) -> str:
    text = str(err) or err.__class__.__name__
    return text.replace("\n", " ")


__all__ = ["FastLane"]
