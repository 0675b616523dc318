"""Per-route traffic stats stay small: every route that ever saw a request keeps one RouteStats for good.

At 100k routes the benchmark's RSS per route went from ~920 B to ~1,340 B when RouteStats carried a list of
BUCKETS counters (~390 B per route in all); the packed histogram brings it to ~210 B. The bound here is loose
enough for allocator differences between Python versions and still fails on a per-route list or dict.
"""

from __future__ import annotations

import tracemalloc

from portico.observe.metrics import BUCKETS, ROUTE_BUCKET_ONE, RouterMetrics, bucket_index
from portico.routes.endpoint import Endpoint
from portico.routes.pool import Pool

ROUTES = 20_000
MAX_BYTES_PER_ROUTE = 300


def _pool(i: int) -> Pool:
    pool = Pool(f"r{i}.bench.local")
    pool.put(Endpoint("127.0.0.1", 8080))
    return pool


def test_a_route_with_traffic_costs_a_bounded_number_of_bytes() -> None:
    pools = [_pool(i) for i in range(ROUTES)]
    metrics = RouterMetrics()
    bucket = bucket_index(0.0015)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for pool in pools:       # as portico.proxy.observer counts one request
            route = metrics.route_stats(pool, "app-guid")
            route.requests += 1
            route.histogram += ROUTE_BUCKET_ONE[bucket]
            route.duration_sum += 0.0015
        per_route = (tracemalloc.get_traced_memory()[0] - before) / ROUTES
    finally:
        tracemalloc.stop()
    assert per_route < MAX_BYTES_PER_ROUTE, f"{per_route:.0f} B per route with traffic"


def test_packed_histogram_reads_back_as_bucket_counts() -> None:
    metrics = RouterMetrics()
    pool = _pool(0)
    route = metrics.route_stats(pool, "app")
    for seconds, times in ((0.00005, 3), (0.0015, 2), (500.0, 1)):
        for _ in range(times):
            route.requests += 1
            route.count(bucket_index(seconds))
    want = [0] * BUCKETS
    want[bucket_index(0.00005)] = 3
    want[bucket_index(0.0015)] = 2
    want[BUCKETS - 1] = 1
    assert route.buckets == want
    row = metrics.snapshot()["routes"][pool.key]
    assert row[0] == 6 and row[3] == want


def test_many_routes_busiest_rechosen_on_a_timer_and_rows_stay_live(monkeypatch) -> None:
    """Above RESCAN_ABOVE_ROUTES the busiest routes are re-chosen every RESCAN_SECONDS, not on every snapshot;
    the chosen routes' counters still move, and a removed route's row goes at once."""
    import portico.observe.metrics as metrics_module

    clock = [1000.0]
    monkeypatch.setattr(metrics_module.time, "monotonic", lambda: clock[0])
    metrics = RouterMetrics()
    pools = [_pool(i) for i in range(metrics_module.RESCAN_ABOVE_ROUTES + 10)]
    for i, pool in enumerate(pools):
        metrics.route_stats(pool, "").requests = i
    first = metrics.snapshot(max_routes=3)["routes"]
    assert list(first) == [p.key for p in pools[-1:-4:-1]]
    metrics.route_stats(pools[0], "").requests = 10**6       # newly busiest: not yet re-chosen
    metrics.route_stats(pools[-1], "").requests += 5
    pools[-2].remove("127.0.0.1:8080")                        # removed from the table
    second = metrics.snapshot(max_routes=3)["routes"]
    assert list(second) == [pools[-1].key, pools[-3].key]
    assert second[pools[-1].key][0] == len(pools) - 1 + 5
    clock[0] += metrics_module.RESCAN_SECONDS + 1
    third = metrics.snapshot(max_routes=3)["routes"]
    assert list(third) == [pools[0].key, pools[-1].key, pools[-3].key]
