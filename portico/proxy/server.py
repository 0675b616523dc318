"""The proxy's listeners, its once-a-second timeout sweep, and draining.

Timeouts are checked by one sweep over open connections each second instead of a timer per request: a timer
per request would cost an allocation and a heap operation on the hot path.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING, cast

from portico.config.settings import RouterConfig
from portico.proxy.admission import Admission, Listener, default_limit, listen, raise_fd_limit
from portico.proxy.context import ProxyContext
from portico.proxy.downstream import ClientConnection
from portico.proxy.proxy_protocol import ProxiedClientConnection
from portico.routes.table import RouteTable
from portico.state import RouterState

if TYPE_CHECKING:
    from portico.proxy.cert_dir import CertDirectoryWatcher

log = logging.getLogger("portico.proxy")

SWEEP_INTERVAL = 1.0


class ProxyServer:
    """Listens on the proxy port (and the TLS port when enabled) and owns every client connection."""

    def __init__(self, config: RouterConfig, table: RouteTable, state: RouterState, *, access_log=None,
                 reuse_port: bool = False) -> None:
        self.config = config
        self.table = table
        self.state = state
        self.access_log = access_log
        self.reuse_port = reuse_port
        self.ctx: ProxyContext = None  # type: ignore[assignment]  # set by start()
        self.listeners: list[Listener] = []
        self.internal_servers: list[asyncio.AbstractServer] = []
        self.admission: Admission | None = None
        self._sweeper: asyncio.TimerHandle | None = None
        self.cert_dir: CertDirectoryWatcher | None = None  # when tls_cert_dir is set

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        config = self.config
        from portico.proxy.tls import SniCertificates, backend_context_factory

        ctx = self.ctx = ProxyContext(config, self.table, self.state, loop, access_log=self.access_log,
                                      tls_context_for=backend_context_factory(config))
        fd_limit = raise_fd_limit()
        admission = self.admission = ctx.admission = Admission(
            loop, config.max_client_connections or default_limit(fd_limit))
        # enable_proxy: a PROXY protocol header may come first (decided here, so plain routers pay nothing)
        plain = ProxiedClientConnection if config.enable_proxy else ClientConnection
        if not config.disable_http:
            self.listeners += await listen(loop, lambda: plain(ctx), config.listen_host, config.port,
                                           reuse_port=self.reuse_port)
        if config.enable_ssl:
            tls_ctx = ctx.with_scheme(b"https")
            certificates = SniCertificates(config)
            if config.tls_cert_dir:
                from portico.proxy.cert_dir import CertDirectoryWatcher

                self.cert_dir = CertDirectoryWatcher(Path(config.tls_cert_dir),
                                                     certificates.replace_directory_certs, loop)
                self.cert_dir.start()
            if config.enable_http2:
                from portico.proxy.h2_front import TlsClientConnection

                tls_protocol: type[ClientConnection] = TlsClientConnection  # ALPN h2 -> HTTP/2 at the handshake
            else:
                tls_protocol = ClientConnection
            tls_listeners = await listen(loop, lambda: tls_protocol(tls_ctx), config.listen_host,
                                         config.ssl_port, ssl=certificates.default, reuse_port=self.reuse_port,
                                         handshake_timeout=config.request_header_timeout or None)
            if config.enable_proxy:
                # the PROXY header precedes the TLS handshake: these listeners read it off the socket first
                from portico.proxy.proxy_tls import ProxiedTlsListener

                proxied: list[Listener] = []
                for listener in tls_listeners:
                    listener.pause()
                    proxied.append(ProxiedTlsListener(listener, config.request_header_timeout or 60.0))
                    await proxied[-1].serve()
                tls_listeners = proxied
            self.listeners += tls_listeners
        admission.listeners = self.listeners
        if config.route_services_hairpinning and config.route_services_secret:
            # gorouter's internal route services server: route service requests for routes of this router
            # come back in here rather than out through the load balancer. Never paused by the connection
            # limit: requests already admitted wait on it.
            internal = ctx.with_scheme(b"https")
            self.internal_servers.append(await loop.create_server(
                lambda: cast(asyncio.Protocol, ClientConnection(internal)), "127.0.0.1",
                config.route_services_internal_server_port,
                backlog=1024, reuse_port=self.reuse_port or None, reuse_address=True))
        self._schedule_sweep()
        log.info("proxy listening on %s%s", "" if config.disable_http else f"{config.listen_host}:{config.port} ",
                 f"TLS on :{config.ssl_port}" if config.enable_ssl else "")

    @property
    def port(self) -> int:
        return self.listeners[0].port

    # ---- timeouts --------------------------------------------------------------------------------------------

    def _schedule_sweep(self) -> None:
        self._sweeper = self.ctx.loop.call_later(SWEEP_INTERVAL, self._sweep)

    def _sweep(self) -> None:
        now = self.ctx.loop.time()
        idle_limit = self.config.frontend_idle_timeout
        head_limit = self.config.request_header_timeout
        for conn in list(self.ctx.connections):  # plain and TLS listeners, HTTP/1.1 and HTTP/2, share one set
            conn.sweep(now, idle_limit, head_limit)
        self._schedule_sweep()

    # ---- stopping --------------------------------------------------------------------------------------------

    def stop_accepting(self) -> None:
        if self.admission is not None:
            self.admission.stop()
        for listener in self.listeners:
            listener.pause()
        for server in self.internal_servers:
            server.close()

    def in_flight(self) -> int:
        ctx = self.ctx
        return sum(c.in_flight() for c in ctx.connections) + len(ctx.tunnels)

    async def drain(self, timeout: float) -> bool:
        """Stop accepting, let in-flight requests and tunnels finish (up to `timeout`), close idle ones."""
        self.stop_accepting()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for conn in list(self.ctx.connections):
                conn.close_if_idle()     # an HTTP/2 connection sends GOAWAY and closes once its streams end
            if self.in_flight() == 0:
                return True
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(0.05)

    def close(self) -> None:
        if self.cert_dir is not None:
            self.cert_dir.stop()
        if self._sweeper is not None:
            self._sweeper.cancel()
        self.stop_accepting()
        for listener in self.listeners:
            listener.close()
        if self.ctx is None:  # stopped before it started (SIGTERM while waiting for NATS)
            return
        for conn in list(self.ctx.connections):
            if conn.transport is not None:
                conn.transport.abort()
        self.ctx.connector.close_all()
