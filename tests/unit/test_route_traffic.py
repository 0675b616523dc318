"""Per-route traffic counters kept on the Pool, counted in place (portico.observe.route_traffic).

A route that saw traffic used to cost a RouteStats row in a dict keyed by pool (~210-250 B, and a dict lookup
per request that missed the CPU caches on a big table). The bound here is loose enough for allocator
differences between Python versions and still fails on any per-route row object or dict entry.
"""

from __future__ import annotations

import tracemalloc

import portico.observe.route_traffic as route_traffic
from portico._compiled import selection
from portico.observe.metrics import BUCKETS, RouterMetrics, bucket_index
from portico.observe.route_traffic import RouteTraffic, add_request, buckets_of, duration_sum_of, errors_of, requests_of
from portico.routes.endpoint import Endpoint, make_endpoint
from portico.routes.pool import Pool, new_pool
from portico.routes.table import RouteTable

ROUTES = 20_000
# Compiled, a route's counters are one 48-B RouteCounters (C fields) plus its slot in RouteTraffic's list: ~57 B
# measured, whatever latency buckets its requests fell in (the packed int they replace was 64-96 B by the slowest
# bucket, and a new one per request). Pure Python has no C layout: a __slots__ object and a bytearray, ~175 B.
MAX_BYTES_PER_ROUTE = 64 if selection().compiled else 190


def _pool(i: int, app: str = "") -> Pool:
    pool = Pool(f"r{i}.bench.local")
    pool.put(make_endpoint("127.0.0.1", 8080, app_id=app))
    return pool


# a route's requests under load: most fast, a few slow (buckets 0..10), one in twenty a 5xx
SPREAD = [(0.00005 * 2 ** (i % 12), i % 20 == 0) for i in range(40)]


def test_a_route_with_traffic_costs_a_bounded_number_of_bytes_and_counting_allocates_nothing() -> None:
    pools = [_pool(i) for i in range(ROUTES)]
    metrics = RouterMetrics()
    traffic = metrics.route_traffic
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for pool in pools:
            traffic.count(pool, bucket_index(0.0015), 0.0015, False)
        first = tracemalloc.get_traced_memory()[0]
        for pool in pools:
            for seconds, error in SPREAD:
                traffic.count(pool, bucket_index(seconds), seconds, error)
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    per_route = (after - before) / ROUTES
    assert per_route < MAX_BYTES_PER_ROUTE, f"{per_route:.0f} B per route with traffic"
    assert after - first < 1024, f"{after - first} B allocated by requests after each route's first"
    assert traffic.requests(pools[7]) == 1 + len(SPREAD)


def test_counts_past_a_field_s_width_spill_and_read_back_as_the_packed_reference() -> None:
    """A bucket holds 255 requests and the 5xx count 65,535 in the object: past that they move to the route's
    spilled int. Whatever the mix, the route reads back exactly as the packed int counted request by request."""
    traffic = RouteTraffic()
    pool = _pool(0)
    reference = 0
    plan = [(0.00003, False)] * 700 + [(0.0003, True)] * 300 + [(200.0, False)] * 3 + [(0.0015, False)] * 256
    plan += [(0.05, True)] * 66_000
    for seconds, error in plan:
        bucket = bucket_index(seconds)
        traffic.count(pool, bucket, seconds, error)
        reference = add_request(reference, bucket, seconds, error)
    assert traffic.traffic_of(pool) == reference
    assert traffic.requests(pool) == len(plan) == requests_of(reference)
    assert errors_of(reference) == 66_300 and buckets_of(reference)[BUCKETS - 1] == 3   # the last bucket too
    assert traffic.row_of(pool)[:2] == [len(plan), 66_300]
    assert pool.traffic in traffic.spilled
    pool.remove("127.0.0.1:8080")                          # the route leaves: its spilled int goes with it
    traffic.forget_removed()
    assert pool.traffic is None and not traffic.spilled and traffic.traffic_of(pool) == 0


def test_packed_counters_read_back() -> None:
    traffic = 0
    want = [0] * BUCKETS
    for seconds, times, error in ((0.00005, 3, False), (0.0015, 2, True), (500.0, 1, False), (0.25, 4, True)):
        for _ in range(times):
            traffic = add_request(traffic, bucket_index(seconds), seconds, error)
        want[bucket_index(seconds)] += times
    assert buckets_of(traffic) == want
    assert requests_of(traffic) == 10
    assert errors_of(traffic) == 6
    assert abs(duration_sum_of(traffic) - (3 * 0.00005 + 2 * 0.0015 + 500.0 + 4 * 0.25)) < 1e-5


def test_fields_do_not_carry_into_each_other_near_their_limits() -> None:
    """A route with 10^11 requests in one bucket and years of summed duration still reads back exactly."""
    huge_duration_us = 10 ** 20                      # ~3 million years of summed request time
    traffic = huge_duration_us + (10 ** 11 << route_traffic.ERRORS_SHIFT) + (10 ** 11 << route_traffic.BUCKETS_SHIFT)
    traffic = add_request(traffic, 0, 0.0, True)
    assert duration_sum_of(traffic) == huge_duration_us / 1e6
    assert errors_of(traffic) == 10 ** 11 + 1
    assert buckets_of(traffic)[:2] == [10 ** 11 + 1, 0]


def test_snapshot_rows_carry_the_same_figures() -> None:
    metrics = RouterMetrics()
    pool = _pool(0, app="app-guid")
    for seconds, status in ((0.001, 200), (0.002, 503), (0.004, 200)):
        metrics.route_traffic.count(pool, bucket_index(seconds), seconds, status >= 500)
    row = metrics.snapshot()["routes"][pool.key]
    assert row[0] == 3 and row[1] == 1 and abs(row[2] - 0.007) < 1e-6 and sum(row[3]) == 3
    assert row[4] == "app-guid"


def test_counters_survive_a_reregistration_and_reset_when_the_route_left_the_table() -> None:
    """Counters belong to the route while it is in the table: a re-registration (same or new instance, the
    pool keeps an endpoint) keeps them; once its last endpoint is gone the series ends, and a route
    registered again later starts from zero."""
    table = RouteTable()
    metrics = RouterMetrics()
    table.register("app.example.com", Endpoint("10.0.0.1", 8080))
    pool = table.lookup("app.example.com")
    assert pool is not None
    for _ in range(5):
        metrics.route_traffic.count(pool, 3, 0.001, False)
    table.register("app.example.com", Endpoint("10.0.0.1", 8080))          # refreshed
    table.register("app.example.com", Endpoint("10.0.0.2", 8080))          # a new instance first ...
    table.unregister("app.example.com", "10.0.0.1:8080")                    # ... then the old one goes
    assert table.lookup("app.example.com") is pool
    assert metrics.snapshot()["routes"]["app.example.com"][0] == 5

    table.unregister("app.example.com", "10.0.0.2:8080")                    # the route leaves the table
    assert "app.example.com" not in metrics.snapshot()["routes"]
    table.register("app.example.com", Endpoint("10.0.0.3", 8080))
    again = table.lookup("app.example.com")
    assert again is not None
    metrics.route_traffic.count(again, 3, 0.001, False)
    assert metrics.snapshot()["routes"]["app.example.com"][0] == 1
    assert len(metrics.route_traffic) == 1


def test_a_route_kept_empty_and_registered_again_in_time_counts_on() -> None:
    """With keep_empty_for the table keeps the same pool while it is empty; if it is registered again before
    a reader looked, its counters go on."""
    table = RouteTable(keep_empty_for=60.0)
    metrics = RouterMetrics()
    table.register("kept.example.com", Endpoint("10.0.0.1", 8080))
    pool = table.lookup("kept.example.com")
    assert pool is not None
    metrics.route_traffic.count(pool, 3, 0.001, False)
    table.unregister("kept.example.com", "10.0.0.1:8080")
    table.register("kept.example.com", Endpoint("10.0.0.9", 8080))
    assert table.lookup("kept.example.com") is pool
    metrics.route_traffic.count(pool, 3, 0.001, False)
    assert metrics.snapshot()["routes"]["kept.example.com"][0] == 2


def test_many_routes_busiest_rechosen_on_a_timer_and_rows_stay_live(monkeypatch) -> None:
    """Above RESCAN_ABOVE_ROUTES the busiest routes are re-chosen every RESCAN_SECONDS, not on every snapshot;
    the chosen routes' counters still move, and a removed route's row goes at once."""
    clock = [1000.0]
    monkeypatch.setattr(route_traffic.time, "monotonic", lambda: clock[0])
    metrics = RouterMetrics()
    traffic: RouteTraffic = metrics.route_traffic
    pools = [_pool(i) for i in range(route_traffic.RESCAN_ABOVE_ROUTES + 10)]

    def requests(pool: Pool, n: int) -> None:
        for _ in range(n):
            traffic.count(pool, 2, 0.0003, False)

    for i, pool in enumerate(pools):
        requests(pool, 1 + i % 7)
    for extra, pool in enumerate(pools[-3:]):
        requests(pool, 100 + 10 * extra)
    first = metrics.snapshot(max_routes=3)["routes"]
    assert list(first) == [p.key for p in pools[-1:-4:-1]]
    requests(pools[0], 1000)                                  # newly busiest: not yet re-chosen
    requests(pools[-1], 5)
    pools[-2].remove("127.0.0.1:8080")                        # removed from the table
    second = metrics.snapshot(max_routes=3)["routes"]
    assert list(second) == [pools[-1].key, pools[-3].key]
    assert second[pools[-1].key][0] == requests_of(traffic.traffic_of(pools[-1])) == traffic.requests(pools[-1])
    clock[0] += route_traffic.RESCAN_SECONDS + 1
    third = metrics.snapshot(max_routes=3)["routes"]
    assert list(third) == [pools[0].key, pools[-1].key, pools[-3].key]
    assert pools[-2].traffic is None and pools[-2] not in traffic.pools


def test_many_routes_are_looked_at_a_slice_per_call_and_every_one_within_a_pass(monkeypatch) -> None:
    """Past RESCAN_ABOVE_ROUTES no call scans every route: each looks at the share the time since the last call
    is owed (one pass per rescan_seconds), from where the last one stopped, wrapping round; routes left empty
    leave the list as their slice passes."""
    clock = [1000.0]
    monkeypatch.setattr(route_traffic.time, "monotonic", lambda: clock[0])
    traffic = RouteTraffic()
    n = 2 * route_traffic.RESCAN_ABOVE_ROUTES
    pools = [_pool(i) for i in range(n)]
    for pool in pools:
        traffic.count(pool, 2, 0.0003, False)
    assert traffic.busiest(2) != []                      # the first choice scans everything
    tenth = route_traffic.RESCAN_SECONDS / 10            # a tenth of a pass: n / 10 routes
    early, late = pools[n // 20], pools[n // 2]          # in the first tenth, and half way
    for _ in range(5):
        traffic.count(early, 2, 0.0003, False)
        traffic.count(late, 2, 0.0003, False)
    pools[n // 40].remove("127.0.0.1:8080")              # left the table, in the first tenth too
    clock[0] += tenth
    assert traffic.busiest(2)[0] is early                # looked at; `late` not yet
    assert late not in traffic.busiest(2)
    assert pools[n // 40].traffic is None and pools[n // 40] not in traffic.pools
    for _ in range(5):                                   # past half a pass in all: `late` is reached
        clock[0] += tenth
        traffic.busiest(2)
    assert traffic.busiest(2) == [early, late]
    for _ in range(20):                                  # round and round: still those two, nothing lost
        clock[0] += tenth
        assert traffic.busiest(2) == [early, late]
    assert len(traffic) == n - 1


def test_a_one_endpoint_pool_picks_as_the_general_path_does() -> None:
    """The one-endpoint fast path of Pool.pick answers as the loop did: benched or not, unless tried or full,
    under both algorithms."""
    for algorithm in ("round-robin", "least-connection"):
        pool = new_pool("one.example.com", algorithm=algorithm)
        ep = pool.put(Endpoint("10.0.0.1", 80))
        assert pool.pick(10.0) is ep
        ep.benched_until = 20.0
        assert pool.pick(10.0) is ep                      # benched, but the only one: tried again
        assert pool.pick(10.0, exclude=[ep]) is None      # already tried for this request
        ep.active = 3
        assert pool.pick(10.0, max_conns=3) is None       # full
        assert pool.pick(10.0, max_conns=4) is ep
        second = pool.put(Endpoint("10.0.0.2", 80))
        ep.benched_until = 0.0
        ep.active = second.active = 0
        picked = {pool.pick(10.0) for _ in range(2)}
        assert picked == {ep, second} if algorithm == "round-robin" else picked <= {ep, second}


def test_the_rescan_interval_grows_with_the_routes_with_traffic() -> None:
    """A scan's cost grows with the routes that saw traffic; the interval grows with it past 100k routes."""
    assert route_traffic.rescan_seconds(5_000) == route_traffic.RESCAN_SECONDS
    assert route_traffic.rescan_seconds(100_000) == route_traffic.RESCAN_SECONDS
    assert route_traffic.rescan_seconds(1_000_000) == 10 * route_traffic.RESCAN_SECONDS


def test_a_route_s_snapshot_row_is_shared_while_its_counters_stand_still() -> None:
    """The status server keeps a minute of snapshots: a route that saw no request since the last one hands the
    same row again (no copy per second); one that did, or whose app changed, gets a new row."""
    metrics = RouterMetrics()
    quiet, busy = _pool(0, app="app-a"), _pool(1, app="app-b")
    for pool in (quiet, busy):
        metrics.route_traffic.count(pool, 3, 0.001, False)
    first = metrics.snapshot()["routes"]
    metrics.route_traffic.count(busy, 3, 0.001, True)
    second = metrics.snapshot()["routes"]
    assert second[quiet.key] is first[quiet.key] and second[quiet.key][:2] == [1, 0]
    assert second[busy.key] is not first[busy.key]
    assert first[busy.key][:2] == [1, 0] and second[busy.key][:2] == [2, 1]      # the old row kept its figures
    busy.put(make_endpoint("127.0.0.1", 8080, app_id="app-c"))                        # the route's app changed
    third = metrics.snapshot()["routes"]
    assert third[busy.key][4] == "app-c" and third[busy.key][:2] == [2, 1] and third[quiet.key] is first[quiet.key]
