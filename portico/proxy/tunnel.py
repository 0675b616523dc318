"""A two-way byte tunnel after a 101 Switching Protocols (WebSockets and other upgrades).

Bytes are copied as they arrive in both directions, with backpressure: when one side's write buffer is full,
reading from the other side pauses. That is the client's Flow (portico.proxy.flow), the same object that carried
the exchange's backpressure: the backend stays attached to it for the tunnel's life, and both connections'
pause_writing/resume_writing report to it. Closing either side closes the other. endpoint_timeout does not apply;
the idle sweep leaves tunnels alone, and drain gives them until drain_timeout.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from portico.proxy.context import ProxyContext


class Tunnel:
    __slots__ = ("backend", "client", "closed", "ctx", "exchange")

    def __init__(self, ctx: ProxyContext, client, backend, exchange) -> None:
        self.ctx = ctx
        self.client = client
        self.backend = backend
        self.exchange = exchange
        self.closed = False

    def start(self, backend_rest: bytes) -> None:
        ctx = self.ctx
        ctx.metrics.websocket_upgrades += 1
        ctx.tunnels.add(self)
        self.client.tunnel = self
        self.backend.tunnel = self
        self.client.active = None
        if backend_rest:
            self.client.write(backend_rest)
        ctx.observe.exchange_done(self.exchange, aborted=False)
        self.exchange.finished = True

    def from_client(self, data: bytes) -> None:
        self.backend.write(data)

    def from_backend(self, data: bytes) -> None:
        self.client.write(data)

    def client_closed(self) -> None:
        self._close()

    def backend_closed(self) -> None:
        self._close()

    def _close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.ctx.tunnels.discard(self)
        self.client.flow.detach(self.backend)
        self.backend.tunnel = None
        self.backend.close()
        self.client.close()
