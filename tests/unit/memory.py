"""The proxy's protocol objects driven in memory: no sockets, no processes, a request in well under a millisecond.

The client side is a real `ClientConnection` and the backend side real `UpstreamConnection`s, both parsing
with httptools as in production; only the transports are in-memory (as uvicorn's protocol tests do). What a
test "receives" is exactly the bytes the proxy wrote. The real-process tests (tests/e2e) cover what needs
real sockets: TLS, timeouts, HAProxy, NATS.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from portico.config.settings import RouterConfig
from portico.proxy.admission import Admission
from portico.proxy.context import ProxyContext
from portico.proxy.downstream import ClientConnection
from portico.proxy.upstream import Connector, DialError, UpstreamConnection
from portico.routes.endpoint import Endpoint, make_endpoint
from portico.routes.table import RouteTable
from portico.state import RouterState


class MemoryTransport(asyncio.Transport):
    """Collects what the protocol writes; closing it tells the protocol, on the next loop turn, as asyncio does."""

    def __init__(self, loop: asyncio.AbstractEventLoop, peer: tuple[str, int]) -> None:
        super().__init__()
        self.loop = loop
        self.protocol: asyncio.BaseProtocol | None = None
        self.data = bytearray()
        self.closed = False
        self.aborted = False
        self.reading = True
        self.high_water: int | None = None    # set: pause_writing past it, as a real transport's buffer does
        self.writing_paused = False
        self.extra: dict[str, Any] = {"peername": peer, "socket": None, "sockname": ("127.0.0.1", 8081)}

    def attach(self, protocol: asyncio.BaseProtocol) -> None:
        self.protocol = protocol
        protocol.connection_made(self)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        assert not self.closed, "write after close"
        self.data += data
        if self.high_water is not None and len(self.data) > self.high_water and not self.writing_paused:
            self.writing_paused = True
            self.protocol.pause_writing()   # type: ignore[union-attr]

    def drain(self) -> bytes:
        """The peer read everything written so far: what it got, and resume_writing if writing was paused."""
        out = self.take()
        if self.writing_paused:
            self.writing_paused = False
            self.protocol.resume_writing()   # type: ignore[union-attr]
        return out

    def take(self) -> bytes:
        """What was written since the last take."""
        out = bytes(self.data)
        self.data.clear()
        return out

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self.protocol is not None:
                self.loop.call_soon(self.protocol.connection_lost, None)

    def abort(self) -> None:
        self.aborted = True
        self.close()

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def is_reading(self) -> bool:
        return self.reading

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.extra.get(name, default)

    def get_write_buffer_size(self) -> int:
        return 0

    def can_write_eof(self) -> bool:
        return False


class MemoryConnector(Connector):
    """Dials in memory: each dial makes a real UpstreamConnection on a MemoryTransport, or fails as refused."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.dialed: list[UpstreamConnection] = []
        self.refused: set[str] = set()      # addresses whose dial fails with "connection refused"

    def dial(self, endpoint: Endpoint, done: Callable[[Any, DialError | None], None],
             upgrade: bool = False) -> asyncio.Future:
        self.metrics.backend_connects += 1
        fut: asyncio.Future = self.loop.create_future()
        if endpoint.address in self.refused:
            err = DialError(f"dial tcp {endpoint.address}: connect: connection refused")
            self.loop.call_soon(done, None, err)
            return fut
        conn = UpstreamConnection(self, endpoint.address, tls=endpoint.tls, pool_key=self.pool_key(endpoint))
        MemoryTransport(self.loop, (endpoint.host, endpoint.port)).attach(conn)
        self.dialed.append(conn)
        self.loop.call_soon(done, conn, None)
        return fut

    def backend(self, n: int = -1) -> MemoryTransport:
        transport = self.dialed[n].transport
        assert isinstance(transport, MemoryTransport)
        return transport


class MemoryProxy:
    """A router's proxy side without listeners: a route table, a context, clients made on demand."""

    def __init__(self, loop: asyncio.AbstractEventLoop, config: RouterConfig | None = None,
                 access_log: Any = None) -> None:
        self.loop = loop
        self.config = config or RouterConfig()
        self.table = RouteTable()
        self.state = RouterState()
        self.ctx = ProxyContext(self.config, self.table, self.state, loop, access_log=access_log)
        c = self.config
        self.connector = self.ctx.connector = MemoryConnector(
            loop, self.state.metrics, dial_timeout=c.endpoint_dial_timeout, max_idle=c.max_idle_conns_per_host,
            keep_alive=self.ctx.keep_alive, tls_handshake_timeout=c.tls_handshake_timeout)
        self.ctx.admission = Admission(loop, 1000)

    def route(self, uri: str, host: str = "10.0.0.5", port: int = 9000, **fields: Any) -> Endpoint:
        return self.table.register(uri, make_endpoint(host, port, **fields))

    def client(self, peer: tuple[str, int] = ("10.1.1.1", 50000)) -> tuple[ClientConnection, MemoryTransport]:
        conn = ClientConnection(self.ctx)
        transport = MemoryTransport(self.loop, peer)
        transport.attach(conn)
        return conn, transport


async def turn(n: int = 3) -> None:
    """Let callbacks scheduled with call_soon (dial results, connection_lost) run."""
    for _ in range(n):
        await asyncio.sleep(0)
