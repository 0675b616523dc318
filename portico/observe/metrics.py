# cython: annotation_typing=False
"""Router counters: plain integers and fixed bucket arrays, cheap to bump on the hot path.

Writers do `metrics.x += 1` or `buckets[bucket_index(seconds)] += 1`; nothing here allocates per request.
Compiled (metrics.pxd), RouterMetrics is a cdef class: the counters are C integers and the sums C doubles, so
the observer's and the router's adds (which cimport its layout) are C additions, not Python int objects.
Readers (/metrics, /varz, the dashboard) call `snapshot()`, which copies everything into plain dicts and lists:
that is also the form one `--workers` process hands to another, and `merge` adds them up.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from portico.observe.buckets import BOUNDS, BUCKETS, LAST_BUCKET, bucket_index
from portico.observe.route_traffic import RouteTraffic

# Responses by status class: index status // 100, anything outside 1..5 counted at index 6 ("xxx").
CLASSES = ("xxx", "1xx", "2xx", "3xx", "4xx", "5xx", "xxx")

# Why an HTTP/2 client connection was cut off (portico.proxy.h2_guard): one counter each, `http2_cutoff_<why>`.
H2_CUTOFF_REASONS = ("rapid_reset", "continuation_flood", "hpack_bomb", "settings_flood", "ping_flood",
                     "empty_frames", "zero_window", "protocol_error", "window_update_flood")

COUNTERS = (
    "requests", "bad_requests", "bad_gateways", "unknown_routes", "empty_hosts", "no_endpoints",
    "backend_retries", "backend_connects", "backend_reuses", "websocket_upgrades", "registrations",
    "unregistrations", "malformed_messages", "pruned_endpoints", "nats_reconnects", "open_client_connections",
    "malformed_request_bodies", *(f"http2_cutoff_{reason}" for reason in H2_CUTOFF_REASONS),
)
SNAPSHOT_ROUTES = 200  # routes a snapshot carries (the busiest); /metrics exports fewer
RECENT_FAILURES = 50   # endpoint failures remembered for the dashboard


class RouterMetrics:
    """What a router has done since it started. Writers only add; readers take a snapshot."""

    __slots__ = (*COUNTERS, "by_class", "router_errors", "duration_buckets", "duration_sum",
                 "backend_buckets", "backend_sum", "route_traffic", "last_registry_update", "failures")
    # the COUNTERS, for the type checker (set to 0 in __init__)
    requests: int
    bad_requests: int
    bad_gateways: int
    unknown_routes: int
    empty_hosts: int
    no_endpoints: int
    backend_retries: int
    backend_connects: int
    backend_reuses: int
    websocket_upgrades: int
    registrations: int
    unregistrations: int
    malformed_messages: int
    pruned_endpoints: int
    nats_reconnects: int
    open_client_connections: int
    malformed_request_bodies: int

    def __init__(self) -> None:
        for name in COUNTERS:
            setattr(self, name, 0)
        self.by_class = [0] * 7
        self.router_errors: dict[str, int] = {}
        self.duration_buckets = [0] * BUCKETS
        self.duration_sum = 0.0
        self.backend_buckets = [0] * BUCKETS
        self.backend_sum = 0.0
        self.route_traffic = RouteTraffic()          # per-route counters live on each Pool (route_traffic.py)
        self.last_registry_update = 0.0              # time.monotonic() of the last (un)registration applied
        # (wall time, route, endpoint address, router error code) of the latest endpoint failures
        self.failures: deque[tuple[float, str, str, str]] = deque(maxlen=RECENT_FAILURES)

    # ---- writers (hot path) ------------------------------------------------------------------------------

    def count_status(self, status: int) -> None:
        c = status // 100
        self.by_class[c if 0 < c < 6 else 6] += 1

    def count_router_error(self, code: str, pool: Any = None, endpoint: Any = None) -> None:
        """By the X-Cf-Routererror code without its detail: `endpoint_failure (EOF)` counts as endpoint_failure.

        A failure that names an endpoint is also remembered (with its detail) for the dashboard.
        """
        short = code.partition(" ")[0]
        self.router_errors[short] = self.router_errors.get(short, 0) + 1
        if endpoint is not None and pool is not None:
            self.failures.append((time.time(), pool.key, endpoint.address, code))

    # ---- compatibility names (/varz) ---------------------------------------------------------------------

    def responses(self, cls: str) -> int:
        return sum(n for i, n in enumerate(self.by_class) if CLASSES[i] == cls)

    # ---- readers -----------------------------------------------------------------------------------------

    def snapshot(self, max_routes: int = SNAPSHOT_ROUTES) -> dict[str, Any]:
        """Everything as plain data: counters summed with other workers' by `merge`."""
        routes: dict[str, list] = {}
        for key, row in self.route_traffic.rows(max_routes):
            _add_route(routes, key, row)
        last = self.last_registry_update
        return {
            "counters": {name: getattr(self, name) for name in COUNTERS},
            "by_class": list(self.by_class),
            "router_errors": dict(self.router_errors),
            "duration": list(self.duration_buckets), "duration_sum": self.duration_sum,
            "backend": list(self.backend_buckets), "backend_sum": self.backend_sum,
            "routes": routes,
            "since_registry_update": (time.monotonic() - last) if last else None,
            "failures": [list(f) for f in self.failures],
        }

    def as_dict(self) -> dict[str, int]:
        """The flat counters, plus responses by class under gorouter's /varz names."""
        out = {name: getattr(self, name) for name in COUNTERS}
        for cls in ("2xx", "3xx", "4xx", "5xx", "xxx"):
            out[f"responses_{cls}"] = self.responses(cls)
        return out


def _add_route(routes: dict[str, list], key: str, row: list) -> None:
    """Add `row` to the route `key`'s (a new list: rows may be shared between snapshots, never changed)."""
    old = routes.get(key)
    if old is None:
        routes[key] = row
        return
    routes[key] = [old[0] + row[0], old[1] + row[1], old[2] + row[2],
                   [a + b for a, b in zip(old[3], row[3], strict=False)], old[4] or row[4]]


def merge(snapshots: list[dict[str, Any]]) -> dict[str, Any]:
    """Add up the snapshots of several workers (gauges such as open connections add up too)."""
    if len(snapshots) == 1:
        return snapshots[0]
    out = empty_snapshot()
    for snap in snapshots:
        for name, value in snap["counters"].items():
            out["counters"][name] = out["counters"].get(name, 0) + value
        out["by_class"] = [a + b for a, b in zip(out["by_class"], snap["by_class"], strict=False)]
        for code, n in snap["router_errors"].items():
            out["router_errors"][code] = out["router_errors"].get(code, 0) + n
        for name in ("duration", "backend"):
            out[name] = [a + b for a, b in zip(out[name], snap[name], strict=False)]
            out[f"{name}_sum"] += snap[f"{name}_sum"]
        for key, row in snap["routes"].items():
            _add_route(out["routes"], key, [row[0], row[1], row[2], list(row[3]), row[4]])
        ages = [a for a in (out["since_registry_update"], snap["since_registry_update"]) if a is not None]
        out["since_registry_update"] = min(ages) if ages else None
        out["failures"] = sorted(out["failures"] + snap.get("failures", []))[-RECENT_FAILURES:]
    return out


def empty_snapshot() -> dict[str, Any]:
    return {
        "counters": {name: 0 for name in COUNTERS}, "by_class": [0] * 7, "router_errors": {},
        "duration": [0] * BUCKETS, "duration_sum": 0.0, "backend": [0] * BUCKETS, "backend_sum": 0.0,
        "routes": {}, "since_registry_update": None, "failures": [],
    }


def quantile(buckets: list[int], q: float) -> float:
    """The q-quantile (0..1) of a bucket histogram, interpolated within its bucket; 0.0 when empty."""
    total = sum(buckets)
    if total == 0:
        return 0.0
    rank = q * total
    seen = 0
    for i, n in enumerate(buckets):
        if n and seen + n >= rank:
            lower = BOUNDS[i - 1] if i > 0 else 0.0
            if i >= len(BOUNDS):
                return BOUNDS[-1]
            return lower + (BOUNDS[i] - lower) * ((rank - seen) / n)
        seen += n
    return BOUNDS[-1]


def diff(new: list[int], old: list[int]) -> list[int]:
    return [max(a - b, 0) for a, b in zip(new, old, strict=False)]


# re-exported: the bucket helpers' old home, read by the observer, /metrics and tests
__all__ = ["BOUNDS", "BUCKETS", "CLASSES", "COUNTERS", "LAST_BUCKET", "RouterMetrics", "bucket_index", "diff",
           "empty_snapshot", "merge", "quantile"]
