"""/dashboard: a live page for people, served by the router itself (plain HTML, CSS and a little JavaScript).

The page opens `/dashboard/events` (server-sent events) and redraws on each event. Once a second, after the
live stats tick, one JSON payload per distinct filter is built and sent to every open stream; with no page
open nothing is built at all. What a payload holds: router-wide rates and percentiles, the last minute as
sparkline points, the busiest routes (filtered by `?q=`), their endpoints with TTL left, in-flight requests,
recent failures and bench state, NATS state and the time since the last registration.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable
from importlib import resources
from typing import Any
from urllib.parse import parse_qs

import msgspec

from portico.observe.live import LiveStats
from portico.routes import RouteTable
from portico.state import RouterState
from portico.status.http import EventStream, Request, Response

TABLE_ROUTES = 30        # routes whose endpoints the page lists
TOP_ROUTES = 20          # routes in the "busiest" table
_ASSETS = {
    "/dashboard": ("dashboard.html", "text/html; charset=utf-8"),
    "/dashboard/dashboard.css": ("dashboard.css", "text/css; charset=utf-8"),
    "/dashboard/dashboard.js": ("dashboard.js", "text/javascript; charset=utf-8"),
}
_encode = msgspec.json.Encoder().encode


def _load_assets() -> dict[str, Response]:
    folder = resources.files("portico.status") / "dashboard_assets"
    return {path: Response(200, (folder / name).read_bytes(), content_type,
                           headers=(("Cache-Control", "no-cache"),))
            for path, (name, content_type) in _ASSETS.items()}


class Dashboard:
    """Serves the page and its event streams for one router's status server."""

    def __init__(self, table: RouteTable, state: RouterState, live: LiveStats,
                 snapshot: Callable[[], dict[str, Any]], workers: int = 1) -> None:
        self.table = table
        self.state = state
        self.live = live
        self.workers = workers
        self._latest = snapshot
        self._assets = _load_assets()
        self._streams: dict[EventStream, str] = {}     # open streams and their route filter
        live.listeners.add(self._tick)

    @property
    def paths(self) -> dict[str, Callable[[Request], Any]]:
        handlers: dict[str, Callable[[Request], Any]] = {path: self._asset for path in self._assets}
        handlers["/dashboard/"] = self._asset
        handlers["/dashboard/events"] = self._events
        handlers["/dashboard/state"] = self._state
        return handlers

    def close(self) -> None:
        for stream in list(self._streams):
            stream.close()
        self._streams.clear()
        self.live.listeners.discard(self._tick)

    # ---- endpoints ---------------------------------------------------------------------------------------

    def _asset(self, request: Request) -> Response:
        return self._assets[request.path.rstrip("/") or "/dashboard"]

    def _events(self, request: Request) -> EventStream:
        route_filter = _filter_of(request)
        # the first event right away, not after the next tick
        stream = EventStream(self._forget, first=self.payload(route_filter))
        self._streams[stream] = route_filter
        return stream

    def _forget(self, stream: EventStream) -> None:
        self._streams.pop(stream, None)

    def _state(self, request: Request) -> Response:
        """One payload, for scripts and `portico status` (the same JSON the page receives)."""
        return Response(200, self.payload(_filter_of(request)), "application/json")

    # ---- building --------------------------------------------------------------------------------------

    def _tick(self) -> None:
        if not self._streams:
            return
        built: dict[str, bytes] = {}
        for stream, route_filter in list(self._streams.items()):
            data = built.get(route_filter)
            if data is None:
                data = built[route_filter] = self.payload(route_filter)
            stream.send(data)

    def payload(self, route_filter: str = "") -> bytes:
        live, state, table = self.live, self.state, self.table
        snap = live.latest()
        summary = live.summary(10.0, route_filter, TOP_ROUTES)
        age = snap["since_registry_update"]
        body = {
            "router": {
                "id": state.id, "phase": state.phase, "uptime": time.time() - state.started_at,
                "workers": self.workers, "nats_connected": state.nats_connected,
                "since_registry_update": age, "routes": len(table), "endpoints": table.endpoint_count(),
                "open_connections": snap["counters"]["open_client_connections"],
                "requests": snap["counters"]["requests"],
            },
            "now": {k: v for k, v in summary.items() if k != "routes"},
            "routes": summary["routes"],
            "series": live.series(60),
            "table": self._table(route_filter, snap["failures"]),
            "failures": [{"at": f[0], "route": f[1], "address": f[2], "code": f[3]}
                         for f in reversed(snap["failures"][-20:])],
            "filter": route_filter,
        }
        return _encode(body)

    def _table(self, route_filter: str, failures: list[list]) -> list[dict[str, Any]]:
        """The busiest routes first, then others in table order, up to TABLE_ROUTES, with their endpoints."""
        now = time.monotonic()
        recent = time.time() - 300
        failed: dict[str, int] = {}
        for f in failures:
            if f[0] > recent:
                failed[f[2]] = failed.get(f[2], 0) + 1
        out = []
        for pool in self._pools(route_filter):
            endpoints = []
            for ep in pool.endpoints:
                endpoints.append({
                    "address": ep.address, "app_id": ep.app_id, "tls": ep.tls,
                    "ttl_left": None if ep.tls else max(ep.ttl - (now - ep.updated_at), 0.0),
                    "in_flight": ep.active, "benched": ep.benched_until > now,
                    "failures": failed.get(ep.address, 0),
                })
            out.append({"route": pool.key, "endpoints": endpoints})
        return out

    def _pools(self, route_filter: str) -> list[Any]:
        """Routes with traffic first (busiest first), then the rest in table order; reading stops when full."""
        traffic = self.state.metrics.route_traffic
        matching = ((requests, id(pool), pool)
                    for requests, pool in traffic.matching(lambda pool: not route_filter or route_filter in pool.key))
        chosen = [item[2] for item in heapq.nlargest(TABLE_ROUTES, matching)]
        if len(chosen) < TABLE_ROUTES:
            have = set(chosen)
            for pool in self.table.pools():
                if pool in have or not pool.members or (route_filter and route_filter not in pool.key):
                    continue
                chosen.append(pool)
                if len(chosen) >= TABLE_ROUTES:
                    break
        return chosen


def _filter_of(request: Request) -> str:
    values = parse_qs(request.query).get("q")
    return values[0].strip().lower()[:200] if values else ""
