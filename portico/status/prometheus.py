"""/metrics: the router's counters in Prometheus' text format, with labels and histograms.

A custom Collector turns a metrics snapshot (all workers added up) into metric families at scrape time, so
the hot path keeps bumping plain integers and never touches prometheus-client objects. Each StatusServer has
its own registry (not the global one), so several routers in one process (tests, `portico up`) do not collide.
Per-route series are bounded: only the `top_routes` busiest routes get them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)

from portico._compiled import selection
from portico.observe.metrics import BOUNDS, CLASSES, H2_CUTOFF_REASONS

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
TOP_ROUTES = 20

# Flat counters: snapshot name -> (metric name without _total, help).
_COUNTERS = {
    "requests": ("portico_requests", "Requests received (router-wide, health checks included)."),
    "bad_requests": ("portico_bad_requests", "Requests refused as malformed (400, 414, 431...)."),
    "malformed_request_bodies": ("portico_malformed_request_bodies",
                                 "Requests whose body broke its framing after the head was forwarded."),
    "bad_gateways": ("portico_bad_gateways", "Requests answered 502 because no endpoint handled them."),
    "backend_retries": ("portico_backend_retries", "Attempts made again on another endpoint or connection."),
    "backend_connects": ("portico_backend_connects", "New connections opened to backends."),
    "backend_reuses": ("portico_backend_reuses", "Requests sent on a pooled backend connection."),
    "websocket_upgrades": ("portico_websocket_upgrades", "Requests that became a tunnel (101)."),
    "registrations": ("portico_registrations", "router.register messages applied."),
    "unregistrations": ("portico_unregistrations", "router.unregister messages applied."),
    "malformed_messages": ("portico_malformed_messages", "NATS route messages dropped as malformed."),
    "pruned_endpoints": ("portico_pruned_endpoints", "Endpoints removed because their TTL ran out."),
    "nats_reconnects": ("portico_nats_reconnects", "Times the NATS connection came back."),
}


def _histogram(name: str, doc: str, labels: list[str] | None = None) -> HistogramMetricFamily:
    return HistogramMetricFamily(name, doc, labels=labels or [])


def _cumulative(buckets: list[int]) -> list[tuple[str, float]]:
    out: list[tuple[str, float]] = []
    total = 0
    for bound, n in zip((*(repr(b) for b in BOUNDS), "+Inf"), buckets, strict=False):
        total += n
        out.append((bound, total))
    return out


class RouterCollector:
    """Yields the metric families of one snapshot (taken from `snapshot()` at each scrape)."""

    def __init__(self, snapshot: Callable[[], dict[str, Any]], gauges: Callable[[], dict[str, float]],
                 top_routes: int = TOP_ROUTES) -> None:
        self._snapshot = snapshot
        self._gauges = gauges
        self.top_routes = top_routes

    def collect(self) -> Iterator[Metric]:
        snap = self._snapshot()
        counters = snap["counters"]
        by_code = CounterMetricFamily("portico_http_requests", "Responses sent, by status class.",
                                      labels=["code"])
        for i, cls in enumerate(CLASSES[1:6], start=1):
            by_code.add_metric([cls], snap["by_class"][i])
        by_code.add_metric(["xxx"], snap["by_class"][0] + snap["by_class"][6])
        yield by_code
        errors = CounterMetricFamily("portico_router_errors",
                                     "Responses the router made itself, by X-Cf-Routererror code.",
                                     labels=["code"])
        for code, n in sorted(snap["router_errors"].items()):
            errors.add_metric([code], n)
        yield errors
        for key, (name, doc) in _COUNTERS.items():
            yield CounterMetricFamily(name, doc, value=counters.get(key, 0))
        cutoffs = CounterMetricFamily("portico_http2_cutoffs",
                                      "HTTP/2 client connections cut off (GOAWAY, closed), by reason.",
                                      labels=["reason"])
        for reason in H2_CUTOFF_REASONS:
            cutoffs.add_metric([reason], counters.get(f"http2_cutoff_{reason}", 0))
        yield cutoffs
        duration = _histogram("portico_http_request_duration_seconds",
                              "Time from the request head to the end of the response.")
        duration.add_metric([], _cumulative(snap["duration"]), snap["duration_sum"])
        yield duration
        backend = _histogram("portico_backend_latency_seconds",
                             "Time from sending a request to a backend to its response head.")
        backend.add_metric([], _cumulative(snap["backend"]), snap["backend_sum"])
        yield backend
        yield from self._routes(snap["routes"])
        yield GaugeMetricFamily("portico_open_connections", "Client connections open now.",
                                value=counters.get("open_client_connections", 0))
        age = snap.get("since_registry_update")
        yield GaugeMetricFamily("portico_seconds_since_registry_update",
                                "Seconds since a registration or unregistration was applied (-1: never).",
                                value=-1.0 if age is None else age)
        chosen = selection()
        yield InfoMetricFamily("portico_implementation", "Compiled (Cython) or pure-Python hot path.",
                               value={"implementation": chosen.implementation,
                                      "compiled_modules": str(len(chosen.compiled))})
        for name, value in self._gauges().items():
            yield GaugeMetricFamily(name, _GAUGE_HELP.get(name, name), value=value)

    def _routes(self, routes: dict[str, list]) -> Iterator[Metric]:
        busiest = sorted(routes.items(), key=lambda item: (-item[1][0], item[0]))[:self.top_routes]
        requests = CounterMetricFamily("portico_route_requests",
                                       f"Requests per route (the {self.top_routes} busiest routes).",
                                       labels=["route"])
        errors = CounterMetricFamily("portico_route_errors", "5xx responses per route (the busiest routes).",
                                     labels=["route"])
        duration = _histogram("portico_route_request_duration_seconds",
                              "Request duration per route (the busiest routes).", ["route"])
        for key, row in busiest:
            requests.add_metric([key], row[0])
            errors.add_metric([key], row[1])
            duration.add_metric([key], _cumulative(row[3]), row[2])
        yield requests
        yield errors
        yield duration


_GAUGE_HELP = {
    "portico_routes": "Routes in the table.",
    "portico_endpoints": "Endpoints in the table.",
    "portico_healthy": "1 when the router takes traffic.",
    "portico_nats_connected": "1 when connected to NATS.",
    "portico_uptime_seconds": "Seconds since the router started.",
    "portico_workers": "Router processes sharing the proxy port.",
}


def make_registry(collector: RouterCollector) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
