# cython: annotation_typing=False
"""What every connection of one router shares, built once: settings turned into plain attributes.

Compiled (context.pxd), ProxyContext is a cdef class whose attributes are typed slots, so the connections and
the exchange read `ctx.loop`, `ctx.connector` or `ctx.max_conns` as struct fields instead of dict lookups.
"""

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    # Imported for the annotations only. At run time __init__ imports what it builds: compiled, the exchange
    # and the connections cimport this module's type, so importing them at this module's top would be a cycle
    # (portico.proxy.exchange first -> exchange_state -> context -> observer -> exchange, half-initialised).
    from portico.config.settings import RouterConfig
    from portico.proxy.admission import Admission
    from portico.proxy.observer import ExchangeObserver
    from portico.proxy.response_head import ResponseHeadRules
    from portico.proxy.route_services import RouteServices
    from portico.proxy.upstream import Connector
    from portico.routes.table import RouteTable
    from portico.state import RouterState


class ProxyContext:
    """Settings, the route table, the backend connector and the observers, as the hot path reads them."""

    config: RouterConfig
    table: RouteTable
    state: RouterState
    loop: asyncio.AbstractEventLoop
    scheme: bytes
    keep_alive: bool
    connector: Connector
    max_conns: int
    local_zone: str
    max_attempts: int
    bench_seconds: float
    retry_budget: float
    endpoint_timeout: float
    max_header_bytes: int
    max_header_count: int
    max_response_headers: int
    max_response_header_bytes: int
    limit_response_heads: bool
    max_uri_bytes: int
    h2c: bool
    sticky_cookie_names: tuple
    response_rules: ResponseHeadRules
    observe: ExchangeObserver
    route_services: RouteServices
    connections: set
    admission: Admission
    tunnels: set

    def __init__(self, config: RouterConfig, table: RouteTable, state: RouterState,
                 loop: asyncio.AbstractEventLoop, *, access_log=None, tls_context_for=None,
                 scheme: bytes = b"http") -> None:
        from portico.proxy.observer import ExchangeObserver
        from portico.proxy.response_head import ResponseHeadRules
        from portico.proxy.route_services import RouteServices
        from portico.proxy.routing import RequestRouter
        from portico.proxy.sticky import StickySessions
        from portico.proxy.tracing import W3CHeaders, ZipkinHeaders
        from portico.proxy.upstream import Connector

        self.config = config
        self.table = table
        self.state = state
        self.metrics = state.metrics
        self.loop = loop
        self.scheme = scheme
        self.keep_alive = not config.disable_keep_alives
        self.connector = Connector(loop, self.metrics, dial_timeout=config.endpoint_dial_timeout,
                                   max_idle=config.max_idle_conns_per_host, keep_alive=self.keep_alive,
                                   tls_context_for=tls_context_for,
                                   tls_handshake_timeout=config.tls_handshake_timeout,
                                   h2c=config.backends.enable_h2c)
        self.max_conns = config.backends.max_conns
        # balancing_algorithm_az_preference: locally-optimistic prefers this router's zone on first attempts
        self.local_zone = config.zone if config.balancing_algorithm_az_preference == "locally-optimistic" else ""
        self.max_attempts = max(1, config.backends.max_attempts)
        self.bench_seconds = config.droplet_stale_threshold / 4
        # Retries stop once this much time has gone since the request arrived (gorouter has no bound).
        self.retry_budget = max(config.endpoint_dial_timeout * self.max_attempts, 1.0)
        self.endpoint_timeout = config.endpoint_timeout
        self.max_header_bytes = config.max_request_header_bytes
        self.max_header_count = config.max_request_header_count or sys.maxsize   # 0: no limit (gorouter)
        self.max_response_headers = config.max_response_headers
        self.max_response_header_bytes = config.max_response_header_bytes
        self.limit_response_heads = bool(self.max_response_headers or self.max_response_header_bytes)
        self.max_uri_bytes = config.max_uri_bytes
        self.h2c = config.enable_h2c     # HTTP/2 with prior knowledge on the plain port (read on first bytes only)
        self.sticky_cookie_names = tuple(config.sticky_session_cookie_names)
        negotiate = config.sticky_sessions_for_auth_negotiate
        self.sticky = StickySessions(config) if self.sticky_cookie_names or negotiate else None
        rewrite = config.http_rewrite
        self.response_rules = ResponseHeadRules(self.sticky, negotiate, rewrite.remove_headers,
                                                rewrite.add_headers_if_not_present, config.ip)
        self.zipkin = ZipkinHeaders() if config.tracing.enable_zipkin else None
        self.w3c = W3CHeaders(config.tracing.w3c_tenant_id) if config.tracing.enable_w3c else None
        self.observe = ExchangeObserver(self.metrics, access_log)
        self.route_services = RouteServices(config, table)
        self.connections: set = set()
        # set by the server that owns the listeners, before any connection is accepted
        self.admission: Admission = None  # type: ignore[assignment]
        self.tunnels: set = set()
        self.router = RequestRouter(self)

    def with_scheme(self, scheme: bytes) -> ProxyContext:
        """A view of this context for a listener of another scheme (the TLS port says https).

        Everything else is shared: the backend connector and pools, counters, and the sets of open
        connections and tunnels, so the server's timeout sweep and drain see both listeners in one place.
        """
        from portico.proxy.routing import RequestRouter

        other = ProxyContext.__new__(ProxyContext)
        for name in SHARED_FIELDS:
            setattr(other, name, getattr(self, name))
        other.scheme = scheme
        other.router = RequestRouter(other)
        return other


# Every attribute __init__ sets: with_scheme copies them all but scheme and router, which are the listener's own.
# (A compiled ProxyContext has no __dict__ to copy; tests/unit/test_context.py checks this list is complete.)
SHARED_FIELDS: tuple[str, ...] = (
    "config", "table", "state", "metrics", "loop", "keep_alive", "connector", "max_conns", "local_zone",
    "max_attempts", "bench_seconds", "retry_budget", "endpoint_timeout", "max_header_bytes", "max_header_count",
    "max_response_headers", "max_response_header_bytes", "limit_response_heads", "max_uri_bytes", "h2c",
    "sticky_cookie_names", "sticky", "response_rules", "zipkin", "w3c", "observe", "route_services",
    "connections", "admission", "tunnels",
)
