"""The status server: /health, /healthz, /varz, /metrics and /routes, in both of gorouter's port layouts.

Current layout (status.routes_port set): status.port serves /health and /metrics without auth and /healthz,
/varz behind basic auth; 127.0.0.1:routes_port serves /routes behind basic auth.
Older layout (routes_port None): status.port serves all of them, /routes included.

Auth decision: when status.user is empty no credentials are configured, and the authenticated endpoints answer
without asking for any (a router started with no status credentials is a local/dev setup; demanding empty
credentials would only break `curl host:8082/routes`). With a user set, a missing or wrong Authorization header
gets 401 with `WWW-Authenticate: Basic realm="Portico"`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from portico.config.settings import RouterConfig
from portico.observe.live import LiveStats
from portico.observe.metrics import merge
from portico.observe.worker_stats import read_snapshots
from portico.routes import RouteTable
from portico.state import RouterState
from portico.status import prometheus
from portico.status.dashboard import Dashboard
from portico.status.http import Request, Response, StatusProtocol, StreamedResponse
from portico.status.routes_json import RoutesJson
from portico.status.varz import varz

_JSON = "application/json"
_UNAUTHORIZED = Response(401, b"401 Unauthorized\n", headers=(("WWW-Authenticate", 'Basic realm="Portico"'),))
_NOT_FOUND = Response(404, b"404 Not Found\n")
_NOT_ALLOWED = Response(405, b"405 Method Not Allowed\n", headers=(("Allow", "GET, HEAD"),))


def _ignoring_request(handler: Callable[[], Any]) -> Callable[[Request], Any]:
    return lambda _request: handler()


class StatusServer:
    """Serves the status endpoints for one router; reads the table and state, never writes them."""

    def __init__(self, config: RouterConfig, table: RouteTable, state: RouterState, *,
                 stats_dir: Path | None = None, workers: int = 1) -> None:
        self.config = config
        self.table = table
        self.state = state
        self.stats_dir = stats_dir    # --workers: where the other workers leave their counters
        self.workers = workers
        status = config.status
        self._user = status.user.encode()
        self._password = status.password.encode()
        self.live = LiveStats(self.snapshot)
        self._registry = prometheus.make_registry(
            prometheus.RouterCollector(self.snapshot, self.gauges, config.metrics.per_route_top))
        self._routes_json = RoutesJson(table)
        self._servers: list[asyncio.Server] = []
        self._connections: set[StatusProtocol] = set()
        self.dashboard = Dashboard(table, state, self.live, self.snapshot, workers)
        older = status.routes_port is None
        plain: dict[str, Callable[[], Any]] = {
            "/health": self._health, "/healthz": self._healthz, "/varz": self._varz, "/metrics": self._metrics,
        }
        self._main_paths: dict[str, Callable[[Request], Any]] = {p: _ignoring_request(h) for p, h in plain.items()}
        # /routes and the dashboard live together: on the routes port, or on status.port in the older layout
        routes_side: dict[str, Callable[[Request], Any]] = {"/routes": _ignoring_request(self._routes),
                                                            **self.dashboard.paths}
        if older:
            self._main_paths.update(routes_side)
        self._routes_paths = routes_side
        self._authenticated = frozenset({"/healthz", "/varz", *routes_side})

    # ---- lifecycle ---------------------------------------------------------------------------------------

    async def start(self) -> None:
        self.live.start()
        loop = asyncio.get_running_loop()
        status = self.config.status
        main = lambda: StatusProtocol(self._dispatcher(self._main_paths), self._connections)  # noqa: E731
        self._servers.append(await loop.create_server(main, status.host, status.port, reuse_address=True))
        if status.routes_port is not None:
            routes = lambda: StatusProtocol(self._dispatcher(self._routes_paths), self._connections)  # noqa: E731
            self._servers.append(
                await loop.create_server(routes, "127.0.0.1", status.routes_port, reuse_address=True))

    async def stop(self) -> None:
        self.dashboard.close()
        await self.live.stop()
        servers, self._servers = self._servers, []
        for server in servers:
            server.close()
        for conn in list(self._connections):
            conn.close()
        for server in servers:
            await server.wait_closed()

    @property
    def ports(self) -> list[int]:
        """The ports actually bound (useful when configured with port 0)."""
        return [s.sockets[0].getsockname()[1] for s in self._servers if s.sockets]

    # ---- what the endpoints read ---------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """This router's counters, every worker's added in."""
        own = self.state.metrics.snapshot()
        if self.stats_dir is None:
            return own
        return merge([own, *read_snapshots(self.stats_dir, skip_index=0)])

    def gauges(self) -> dict[str, float]:
        state = self.state
        return {
            "portico_routes": len(self.table),
            "portico_endpoints": self.table.endpoint_count(),
            "portico_healthy": int(state.healthy),
            "portico_nats_connected": int(state.nats_connected),
            "portico_uptime_seconds": time.time() - state.started_at,
            "portico_workers": self.workers,
        }

    # ---- dispatch ----------------------------------------------------------------------------------------

    def _dispatcher(self, paths: dict):
        def handle(request: Request) -> Response:
            endpoint = paths.get(request.path)
            if endpoint is None:
                return _NOT_FOUND
            if request.method not in ("GET", "HEAD"):
                return _NOT_ALLOWED
            if request.path in self._authenticated and not self._authorized(request):
                return _UNAUTHORIZED
            return endpoint(request)
        return handle

    def _authorized(self, request: Request) -> bool:
        if not self._user:
            return True
        header = request.headers.get("authorization", "")
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        user, sep, password = decoded.partition(b":")
        # Both compared every time, so timing tells nothing about which half was wrong.
        ok_user = hmac.compare_digest(user, self._user)
        ok_password = hmac.compare_digest(password, self._password)
        return bool(sep) and ok_user and ok_password

    # ---- endpoints ---------------------------------------------------------------------------------------

    def _health(self) -> Response:
        if self.state.healthy:
            return Response(200, b"ok\n")
        return Response(503, b"503 Service Unavailable\n")

    def _healthz(self) -> Response:
        return Response(200, b"ok")

    def _routes(self) -> Response | StreamedResponse:
        """gorouter's /routes JSON: a small table's cached per generation, a large one's streamed in pieces."""
        body = self._routes_json.cached()
        if body is not None:
            return Response(200, body, _JSON)
        return StreamedResponse(200, self._routes_json.pieces(), _JSON)

    def _varz(self) -> Response:
        body = varz(index=self.config.index, host=f"{self.config.ip}:{self.config.status.port}",
                    state=self.state, table=self.table, live=self.live, snapshot=self.snapshot())
        return Response(200, msgspec.json.encode(body), _JSON)

    def _metrics(self) -> Response:
        return Response(200, prometheus.render(self._registry), prometheus.CONTENT_TYPE)
