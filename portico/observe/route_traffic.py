# cython: annotation_typing=False
"""Per-route traffic counters: a fixed 48-byte RouteCounters on the route's Pool, counted in place.

A route's requests, 5xx answers, summed duration and latency histogram live in one RouteCounters object held by
its Pool (`Pool.traffic`, None until the route's first request), not in a row of a dict keyed by pool: a request
that reached a route has already touched its pool, so counting touches one more object. Compiled
(route_traffic.pxd) the object is 48 bytes with C fields only (so the garbage collector never tracks it): the
summed duration in microseconds (64 bits), the 5xx answers (16 bits) and one byte per latency bucket. It is
made once, at the route's first request, and then only written: no allocation per request (a packed int
replaced on every request cost 64-96 B a route by the slowest bucket seen, and a new int per request whose
churn left pymalloc pools half full). A bucket or the 5xx count that would overflow is first moved, with the
others, into the route's entry in `RouteTraffic.spilled`: one packed int (below) per busy route, touched
once per 255 requests of a bucket at most.

The packed int's fields, lowest bits first (a field that is not used costs no bytes above the highest one used):
- DURATION_BITS: the sum of request durations in microseconds (72 bits: longer than anyone's uptime);
- FIELD_BITS: the 5xx answers;
- BUCKETS fields of FIELD_BITS: the latency histogram (buckets.BOUNDS); the requests are their sum.
Readers see a route's counters as that packed int (`RouteTraffic.traffic_of`): the spilled part plus the object's.

Readers never walk the table: `RouteTraffic` remembers the pools that saw their first request, and picks
the busiest among them for /metrics, /varz and the dashboard.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from portico.observe.buckets import BUCKETS

try:
    import cython
except ImportError:   # no Cython installed: certainly the pure module
    from types import SimpleNamespace
    cython = SimpleNamespace(compiled=False)

if TYPE_CHECKING:
    from portico.routes.pool import Pool

DURATION_BITS = 72
FIELD_BITS = 40
ERRORS_SHIFT = DURATION_BITS
BUCKETS_SHIFT = DURATION_BITS + FIELD_BITS
_FIELD_MASK = (1 << FIELD_BITS) - 1
_DURATION_MASK = (1 << DURATION_BITS) - 1
# 2**40 is 1 modulo 2**40 - 1, so the packed buckets taken modulo that are the sum of the buckets (the
# requests) as long as it is below it: one C-level operation to rank routes by traffic
_SUM_MODULUS = _FIELD_MASK

ROUTE_ONE: tuple[int, ...] = tuple(1 << (BUCKETS_SHIFT + FIELD_BITS * i) for i in range(BUCKETS))
ROUTE_ERROR_ONE: tuple[int, ...] = tuple(one + (1 << ERRORS_SHIFT) for one in ROUTE_ONE)
MICROSECONDS = 1_000_000.0

SMALL_MAX = 255          # a bucket's count in a RouteCounters (one byte) before it spills
SMALL_SLOTS = 22         # RouteCounters.small's length in route_traffic.pxd (a C array has no bounds check)
if BUCKETS != SMALL_SLOTS:
    raise ImportError(f"route_traffic.pxd keeps {SMALL_SLOTS} latency buckets a route, buckets.py has {BUCKETS}: "
                      "change RouteCounters.small and SMALL_SLOTS with buckets.BOUNDS")
ERRORS_MAX = 65_535     # the 5xx count in a RouteCounters (16 bits) before it spills

RESCAN_ABOVE_ROUTES = 2_000  # routes with traffic above which the busiest are re-chosen only every rescan_seconds
RESCAN_SECONDS = 10.0        # ... up to 100,000 routes with traffic; past that, 10 s more per 100,000
RESCAN_ROUTES_PER_10S = 100_000


def add_request(traffic: int, bucket: int, seconds: float, error: bool) -> int:
    """The packed `traffic` with one more request (the packed form readers see; see RouteCounters for counting)."""
    return traffic + (ROUTE_ERROR_ONE if error else ROUTE_ONE)[bucket] + int(seconds * MICROSECONDS)


def requests_of(traffic: int) -> int:
    """The requests a packed value counts (the sum of its histogram)."""
    h = traffic >> BUCKETS_SHIFT
    total = 0
    while h:
        total += h & _FIELD_MASK
        h >>= FIELD_BITS
    return total


def _rank(traffic: int) -> int:
    """The requests, exact below 2**40 - 1 of them (past that only the ranking can be off)."""
    return (traffic >> BUCKETS_SHIFT) % _SUM_MODULUS


def errors_of(traffic: int) -> int:
    return (traffic >> ERRORS_SHIFT) & _FIELD_MASK


def duration_sum_of(traffic: int) -> float:
    """The summed durations, in seconds."""
    return (traffic & _DURATION_MASK) / MICROSECONDS


def buckets_of(traffic: int) -> list[int]:
    """The histogram as a list of BUCKETS counts."""
    h = traffic >> BUCKETS_SHIFT
    return [(h >> (FIELD_BITS * i)) & _FIELD_MASK for i in range(BUCKETS)]


class RouteCounters:
    """One route's counters since its first request, written in place (see the module docstring).

    Compiled, a cdef class of C fields only (route_traffic.pxd): 48 B, never tracked by the garbage collector,
    and no methods the hot path calls through a vtable (that would be a pointer more per object): the
    module's functions read and write it. Pure Python, the same fields in __slots__, `small` a bytearray.
    """

    __slots__ = ("duration_us", "errors", "small")

    def __init__(self) -> None:
        self.duration_us = 0          # summed durations, microseconds
        self.errors = 0               # 5xx answers not yet spilled (<= ERRORS_MAX)
        if not cython.compiled:       # compiled: a C array of BUCKETS bytes, zeroed with the object
            self.small = bytearray(BUCKETS)   # requests per latency bucket not yet spilled (<= SMALL_MAX each)


def count_request(route_traffic: RouteTraffic, pool: Pool, bucket: int, micros: int, error: bool) -> None:
    """One request of `micros` microseconds to `pool` (the proxy's observer calls this once per request).

    The route's first request makes its RouteCounters and has RouteTraffic remember the pool; every other
    one adds to the object's fields, unless the bucket (or the 5xx count) is full: then the counts move
    into the route's spilled int first."""
    counters = pool.traffic
    if counters is None:
        counters = RouteCounters()
        pool.traffic = counters
        route_traffic.pools.append(pool)
    if counters.small[bucket] == SMALL_MAX or (error and counters.errors == ERRORS_MAX):
        route_traffic.spill(counters)
    counters.small[bucket] += 1
    counters.duration_us += micros
    if error:
        counters.errors += 1


def packed_of(counters: RouteCounters) -> int:
    """What `counters` holds (not what it spilled) as a packed int."""
    traffic = counters.duration_us + (counters.errors << ERRORS_SHIFT)
    for i in range(BUCKETS):
        n = counters.small[i]
        if n:
            traffic += n << (BUCKETS_SHIFT + FIELD_BITS * i)
    return traffic


def _spill(spilled: dict[RouteCounters, int], counters: RouteCounters) -> None:
    spilled[counters] = spilled.get(counters, 0) + packed_of(counters) - counters.duration_us
    counters.errors = 0
    for i in range(BUCKETS):
        counters.small[i] = 0


def _small_requests(counters: RouteCounters) -> int:
    total = 0
    for i in range(BUCKETS):
        total += counters.small[i]
    return total


class RouteTraffic:
    """The pools that saw traffic, their spilled counts, and the choice of the busiest among them.

    Counters live on each Pool for as long as the pool holds endpoints: a route re-registered while it still
    has an endpoint (or within the table's keep-empty time, which keeps the same pool) keeps counting. A pool
    found empty here has left the table: its series ends and its counters are dropped, so a route registered
    again later starts from zero (a counter reset, which Prometheus' rate() expects), as it did before.
    """

    __slots__ = ("_chosen", "_chosen_at", "_chosen_for", "_cursor", "_rows", "pools", "spilled")

    def __init__(self) -> None:
        self.pools: list[Pool] = []                  # every pool whose counters were made (its first request)
        self.spilled: dict[RouteCounters, int] = {}  # a busy route's counts moved out of its full RouteCounters
        self._chosen: list[Pool] | None = None       # the busiest of the routes looked at so far
        self._chosen_at = 0.0                        # when routes were last looked at
        self._chosen_for = 0
        self._cursor = 0                             # where in `pools` the next slice starts
        self._rows: dict[Pool, tuple[int, list]] = {}   # the last rows() call's rows, by pool, with their counts

    def count(self, pool: Pool, bucket: int, seconds: float, error: bool) -> None:
        """One request to `pool` (what portico.proxy.observer does through count_request)."""
        count_request(self, pool, bucket, int(seconds * MICROSECONDS), error)

    def spill(self, counters: RouteCounters) -> None:
        """Move the histogram and 5xx count of `counters` (one of them full) into its spilled int."""
        _spill(self.spilled, counters)

    def traffic_of(self, pool: Pool) -> int:
        """All of a route's counters as one packed int (0 before its first request)."""
        counters = pool.traffic
        if counters is None:
            return 0
        return self.spilled.get(counters, 0) + packed_of(counters)

    def requests(self, pool: Pool) -> int:
        """A route's requests (exact below 2**40 - 1 of them; past that only a ranking can be off)."""
        counters = pool.traffic
        if counters is None:
            return 0
        spilled = self.spilled.get(counters, 0)
        return _small_requests(counters) + (_rank(spilled) if spilled else 0)

    def row_of(self, pool: Pool) -> list:
        """The snapshot row of a route: [requests, errors, duration sum, buckets, app id]."""
        return _row(self.traffic_of(pool), pool)

    def rows(self, max_routes: int) -> list[tuple[str, list]]:
        """(route key, snapshot row) of the busiest routes, busiest first.

        A route whose counters and app have not moved since the last call gets the same row object again: the
        status server keeps a minute of snapshots (observe/live.py), up to 200 rows each (~400 B a row), and most
        of a big table's busiest routes see no request in a given second. Rows are never changed once made.
        """
        last = self._rows
        made: dict[Pool, tuple[int, list]] = {}
        out = []
        for pool in self.busiest(max_routes):
            traffic = self.traffic_of(pool)
            kept = last.get(pool)
            if kept is not None and kept[0] == traffic and kept[1][4] == _app_of(pool):
                row = kept[1]
            else:
                row = _row(traffic, pool)
            made[pool] = (traffic, row)
            out.append((pool.key, row))
        self._rows = made
        return out

    def __len__(self) -> int:
        return len(self.pools)

    def busiest(self, max_routes: int) -> list[Pool]:
        """The busiest routes, busiest first.

        Up to RESCAN_ABOVE_ROUTES routes with traffic, every call looks at all of them. Past that a whole scan
        (~15-40 ms per 100k routes, on the event loop, and the status server asks every second) would stall
        the loop, so the routes are looked at a slice at a time: each call takes as many as the time since the
        last one is owed at one full pass per `rescan_seconds` (10 s, and 10 s more per 100k routes past the
        first 100k), and the busiest of that slice and of the last choice are kept. The work per second is what
        a whole scan every `rescan_seconds` cost, spread evenly (~10k routes a second); the chosen routes are
        re-ranked by their live counters on every call, and a newly busy route shows up within one pass."""
        now = time.monotonic()
        chosen = self._chosen
        total = len(self.pools)
        owed = total if chosen is None else int(total * (now - self._chosen_at) / rescan_seconds(total))
        rank = self.requests
        if total <= RESCAN_ABOVE_ROUTES or self._chosen_for != max_routes or owed >= total:
            self.forget_removed()
            top = heapq.nlargest(max_routes, self.pools, key=rank)
            self._chosen, self._chosen_at, self._chosen_for, self._cursor = top, now, max_routes, 0
            return top
        assert chosen is not None
        if owed:
            looked = self._next_slice(owed)
            self._chosen_at = now
            candidates = dict.fromkeys([*chosen, *looked])
            chosen = self._chosen = heapq.nlargest(max_routes, (p for p in candidates if p.members), key=rank)
        return sorted((p for p in chosen if p.members), key=rank, reverse=True)

    def _next_slice(self, count: int) -> list[Pool]:
        """The next `count` pools from the cursor on (wrapping round), those left empty dropped as they pass."""
        pools = self.pools
        start = self._cursor if self._cursor < len(pools) else 0
        end = min(len(pools), start + count)
        part = self._kept(start, end)
        self._cursor = start + len(part)
        if end - start < count and self._cursor >= len(self.pools):   # the pass ends here: go on from the start
            more = self._kept(0, min(count - (end - start), start))
            self._cursor = len(more)
            part += more
        return part

    def _kept(self, start: int, end: int) -> list[Pool]:
        """pools[start:end] without the pools left empty, which leave the list (their series end, see
        forget_removed)."""
        part = self.pools[start:end]
        kept = [p for p in part if p.members]
        if len(kept) != len(part):
            for pool in part:
                if not pool.members:
                    self._drop(pool)
            self.pools[start:end] = kept
        return kept

    def _drop(self, pool: Pool) -> None:
        counters = pool.traffic
        if counters is not None:
            self.spilled.pop(counters, None)
            pool.traffic = None

    def matching(self, keep: Callable[[Pool], bool]) -> Iterator[tuple[int, Pool]]:
        """(requests, pool) of the routes with traffic that still have endpoints and that `keep` accepts."""
        for pool in self.pools:
            if pool.members and keep(pool):
                yield self.requests(pool), pool

    def forget_removed(self) -> None:
        """A pool left empty has been taken out of the table: its series ends with it."""
        pools = self.pools
        if all(p.members for p in pools):
            return
        kept = []
        for pool in pools:
            if pool.members:
                kept.append(pool)
            else:
                self._drop(pool)
        self.pools = kept


def _app_of(pool: Pool) -> str:
    members = pool.members
    if isinstance(members, tuple):
        return members[0].app_id if members else ""
    return members.app_id


def _row(traffic: int, pool: Pool) -> list:
    buckets = buckets_of(traffic)
    return [sum(buckets), errors_of(traffic), duration_sum_of(traffic), buckets, _app_of(pool)]


def rescan_seconds(routes_with_traffic: int) -> float:
    """How long a choice of the busiest routes stands: longer for more routes, so the scan's cost per second
    stays flat (a 1M-route scan every 10 s held the event loop ~0.3-0.5 s each time)."""
    return RESCAN_SECONDS * max(1.0, routes_with_traffic / RESCAN_ROUTES_PER_10S)
