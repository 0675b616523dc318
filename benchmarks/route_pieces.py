#!/usr/bin/env python3
"""Where a big table's per-request time goes: each piece of a request that touches per-route objects, timed in
process with one route and with N random routes (`python benchmarks/route_pieces.py 100000`).

Each piece runs over 300k requests to random hosts, in a fresh random order each time, so it meets cold objects
as a request on a big table does; the best of 3 passes is printed in ns per request (process CPU time). The
pieces are the pure-Python ones (the table, the pool, the endpoint, the counters); the compiled proxy calls the
same objects. See docs/scale.md for figures.
"""

from __future__ import annotations

import random
import sys
import time
import uuid
from collections.abc import Callable

from portico.observe.metrics import RouterMetrics
from portico.observe.route_traffic import MICROSECONDS, ROUTE_ONE
from portico.routes.endpoint import make_endpoint
from portico.routes.table import RouteTable
from portico.routes.uri import host_without_port

REQUESTS = 300_000


def main(routes: int) -> None:
    table = RouteTable()
    for i in range(routes):     # registrations shaped like the harness's (benchmarks/harness/scale.py)
        table.register(f"r{i}.bench.local", make_endpoint(
            "127.0.0.1", 8080, app_id=str(uuid.uuid4()), private_instance_id=str(uuid.uuid4()),
            private_instance_index="0", tags={"component": "route-emitter"}))
    hosts = [f"r{random.randrange(routes)}.bench.local".encode() for _ in range(REQUESTS)]
    traffic = RouterMetrics().route_traffic

    def normalise(values: list) -> None:     # what the router does for a Host past its cache of 4,096
        for h in values:
            host_without_port(h.decode("latin-1")).strip().lower()

    def lookup(values: list) -> None:
        for name in values:
            table.lookup(name, b"/")

    def pick(values: list) -> None:
        for pool in values:
            pool.pick(1.0)

    def cf_headers(values: list) -> None:
        for ep in values:
            _ = ep.cf_headers

    def log_encodes(values: list) -> None:   # what the observer encodes for the access log line
        for ep in values:
            ep.address_bytes, ep.app_id.encode(), ep.private_instance_index.encode(), ep.private_instance_id.encode()

    def count(values: list) -> None:         # portico.proxy.observer's per-route block
        for pool in values:
            t = pool.traffic
            if not t:
                traffic.started(pool)
            pool.traffic = t + ROUTE_ONE[5] + int(0.002 * MICROSECONDS)

    names = [host_without_port(h.decode("latin-1")).strip().lower() for h in hosts]
    pools = [table.lookup(name, b"/") for name in names]
    endpoints = [pool.pick(1.0) for pool in pools]
    count(pools)
    pieces: list[tuple[str, Callable[[list], None], list]] = [
        ("host normalised", normalise, hosts), ("table lookup", lookup, names), ("pool pick", pick, pools),
        ("X-CF header block", cf_headers, endpoints), ("access log encodes", log_encodes, endpoints),
        ("route counters", count, pools)]
    for name, piece, values in pieces:
        best = float("inf")
        for _ in range(3):
            order = list(values)
            random.shuffle(order)
            t0 = time.process_time()
            piece(order)
            best = min(best, (time.process_time() - t0) / len(order) * 1e9)
        print(f"{routes:>9,} routes  {name:20s} {best:6.0f} ns")


if __name__ == "__main__":
    for arg in sys.argv[1:] or ["1", "100000"]:
        main(int(arg))
