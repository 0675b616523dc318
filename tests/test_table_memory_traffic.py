"""What a route's first request adds to the router's memory, through the real proxy path in memory.

Registrations as the route feed applies them, then one request to each route through a real ClientConnection
and UpstreamConnection (tests/unit/memory.py: in-memory transports, no sockets), tracemalloc counting what stays
allocated afterwards. The Host name cache is filled first by other routes (it is bounded), so what is left is
what every further route costs: its traffic counters (RouteCounters) and its slot in RouteTraffic's list. A per-route
row, dict entry or cached header block kept per route would each push it past the bound.
"""

from __future__ import annotations

import asyncio
import gc
import json
import tracemalloc

from portico._compiled import selection
from portico.bus.applier import PayloadApplier
from portico.proxy.host_names import HOST_CACHE_SIZE
from tests.unit.memory import MemoryProxy, turn

ROUTES = 8_000
# measured (Python 3.11): compiled ~67 B a route (its 48-B RouteCounters, C fields, and the list slot), the same
# for any latency bucket (the packed int it replaced was 48-96 B by the slowest); pure Python ~156 B (a __slots__
# object and a bytearray: no C layout)
MAX_BYTES_AFTER_TRAFFIC = 75 if selection().compiled else 180
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def payload(i: int) -> bytes:
    return json.dumps({"host": "10.0.0.1", "port": 9100, "uris": [f"r{i}.scale.local"],
                       "app": f"{i:08d}-0000-4000-8000-000000000000",
                       "private_instance_id": f"{i:08d}-1111-4000-8000-000000000000",
                       "private_instance_index": "0", "tags": {"component": "route-emitter"}}).encode()


async def test_bytes_a_first_request_leaves_per_route() -> None:
    loop = asyncio.get_running_loop()
    proxy = MemoryProxy(loop)
    apply = PayloadApplier(proxy.table, proxy.state.metrics, clock=lambda: 5.0)
    first = HOST_CACHE_SIZE + 8                     # routes 0..first-1 fill the bounded host name cache
    for i in range(first + ROUTES):
        apply.register(payload(i))
    _conn, client = proxy.client()

    async def request(i: int) -> None:
        client.protocol.data_received(f"GET / HTTP/1.1\r\nHost: r{i}.scale.local\r\n\r\n".encode())  # type: ignore[union-attr]
        await turn()
        backend = proxy.connector.dialed[-1]
        assert backend.transport.take().startswith(b"GET / HTTP/1.1")   # type: ignore[union-attr]
        backend.data_received(RESPONSE)
        await turn()
        assert client.take().startswith(b"HTTP/1.1 200 OK")

    for i in range(first):
        await request(i)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(first, first + ROUTES):
            await request(i)
        gc.collect()
        per_route = (tracemalloc.get_traced_memory()[0] - before) / ROUTES
    finally:
        tracemalloc.stop()
    assert len(proxy.connector.dialed) == 1                     # one kept backend connection served them all
    assert len(proxy.state.metrics.route_traffic) == first + ROUTES
    print(f"{per_route:.0f} B per route after its first request")
    assert per_route <= MAX_BYTES_AFTER_TRAFFIC, f"{per_route:.0f} B per route after its first request"
