"""/metrics: RouterMetrics and table sizes in Prometheus text format.

A custom Collector reads the plain counters at scrape time, so the hot path keeps doing `metrics.x += 1` and
never touches prometheus-client objects. Each StatusServer has its own registry (not the global one), so
several routers in one process (tests, `portico up`) do not collide.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from portico.routes import RouteTable
from portico.state import RouterState

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_GAUGES = frozenset({"open_client_connections"})


class RouterCollector:
    """Yields one metric family per RouterMetrics counter plus routes, endpoints, health and NATS state."""

    def __init__(self, table: RouteTable, state: RouterState) -> None:
        self._table = table
        self._state = state

    def collect(self):
        state, table = self._state, self._table
        for name, value in state.metrics.as_dict().items():
            if name in _GAUGES:
                yield GaugeMetricFamily(f"portico_{name}", name.replace("_", " "), value=value)
            else:
                yield CounterMetricFamily(f"portico_{name}", name.replace("_", " "), value=value)
        yield GaugeMetricFamily("portico_routes", "routes in the table", value=len(table))
        yield GaugeMetricFamily("portico_endpoints", "endpoints in the table", value=table.endpoint_count())
        yield GaugeMetricFamily("portico_healthy", "1 when the router takes traffic", value=int(state.healthy))
        yield GaugeMetricFamily("portico_nats_connected", "1 when connected to NATS",
                                value=int(state.nats_connected))
        yield GaugeMetricFamily("portico_uptime_seconds", "seconds since start",
                                value=time.time() - state.started_at)


def make_registry(table: RouteTable, state: RouterState) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RouterCollector(table, state))
    return registry


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
