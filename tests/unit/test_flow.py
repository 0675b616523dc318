"""Backpressure through the client's Flow (portico/proxy/flow.py), with the real protocol objects in memory.

Each test drives a real ClientConnection and real UpstreamConnections whose transports have a high-water mark
(tests/unit/memory.py): writing past it calls the protocol's pause_writing, `drain()` its resume_writing, as a
socket's buffer does. Three of these failed before the Flow: a client paused for a backend that left stayed
paused for good, a connection still full of the last body went back to the pool, and the backend of the next
pipelined request read freely into a client that could not take more.
"""

from __future__ import annotations

import asyncio

import pytest

from portico.proxy.flow import PIPELINE, WRITE_FULL
from tests.unit.memory import MemoryProxy, MemoryTransport, turn

pytestmark = pytest.mark.unit

HOST = b"app.example.com"


def get(path: bytes = b"/") -> bytes:
    return b"GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (path, HOST)


def proxy_with_route() -> MemoryProxy:
    proxy = MemoryProxy(asyncio.get_running_loop())
    proxy.route(HOST.decode())
    return proxy


async def test_a_backend_that_answers_before_taking_the_body_gives_the_client_back() -> None:
    """The backend stops reading a large upload and answers: the client reads again (the rest of the body is
    dropped) and its next request is served. Before, the pause taken for the backend's full buffer was never
    given back, and the client connection hung."""
    proxy = proxy_with_route()
    client, client_out = proxy.client()
    client.data_received(b"POST /up HTTP/1.1\r\nHost: %s\r\nContent-Length: 300000\r\n\r\n" % HOST)
    backend = proxy.connector.backend()
    backend.high_water = 64 * 1024
    await turn()
    conn = backend.protocol
    client.data_received(b"x" * 100_000)       # more than the backend's buffer takes
    assert conn.write_full and not client_out.is_reading()
    assert client.flow.stopped() == (WRITE_FULL, 0)

    conn.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")   # answered early
    assert client_out.take().endswith(b"\r\n\r\nok")
    assert client_out.is_reading(), "the client must read again once the backend that paused it has left"
    assert client.flow.stopped() == (0, 0) and conn.flow is None
    backend.drain()                              # the old backend drains later: it changes nothing
    assert client_out.is_reading()

    client.data_received(b"x" * 200_000)        # the body's rest, read and dropped
    client.data_received(get(b"/next"))
    await turn()
    assert len(proxy.connector.dialed) == 2      # the first connection was not reusable (body cut short)
    assert proxy.connector.backend().take().startswith(b"GET /next HTTP/1.1\r\n")


async def test_a_connection_still_full_of_the_last_body_is_not_pooled() -> None:
    """The backend answers keep-alive while the request body still sits in our write buffer: the connection is
    closed, not pooled (Go's transport does the same), and the client reads again at once."""
    proxy = proxy_with_route()
    client, client_out = proxy.client()
    body = b"y" * 5000
    client.data_received(b"POST /up HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n\r\n%s" % (HOST, len(body), body))
    backend = proxy.connector.backend()
    backend.high_water = 1000
    await turn()
    conn = backend.protocol
    assert conn.write_full and not client_out.is_reading()   # the pending body went out past the mark

    conn.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    assert client_out.take().endswith(b"\r\n\r\nok")
    assert client_out.is_reading()
    assert backend.closed and conn.pool_key not in proxy.connector.idle

    client.data_received(get())                  # served over a new connection
    await turn()
    assert len(proxy.connector.dialed) == 2


async def test_the_next_backend_starts_paused_while_the_client_cannot_take_more() -> None:
    """Pipelined requests: the first response fills the client's buffer and ends in the same read. The second
    request's backend is attached while the client still cannot take more, so it starts paused and reads
    once the client drains. Before, it read the second response into the full buffer without bound."""
    proxy = proxy_with_route()
    client, client_out = proxy.client()
    client_out.high_water = 1000
    client.data_received(get(b"/one") + get(b"/two"))
    await turn()
    first = proxy.connector.backend()
    assert first.take().startswith(b"GET /one ")
    first.protocol.data_received(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 3000\r\n\r\n"
                                 + b"a" * 3000)
    await turn()
    assert len(proxy.connector.dialed) == 2      # the first connection was not kept: the second is dialed
    backend = proxy.connector.backend()
    conn = backend.protocol
    assert backend.take().startswith(b"GET /two ")
    assert conn.flow is client.flow
    assert not backend.is_reading(), "the client is still full: its next backend must not read"

    assert client_out.drain().endswith(b"a" * 3000)
    assert backend.is_reading()
    conn.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\ntwo")
    assert client_out.take().endswith(b"\r\n\r\ntwo")


async def test_a_backend_draining_after_it_left_does_not_resume_another_client() -> None:
    """Through the protocol callbacks alone. Before, the connection below went back to the pool still full of the
    first client's body (that client stayed paused), served a second client paused for its own reason (too many
    pipelined requests), and its drain resumed that second client early."""
    proxy = proxy_with_route()
    first, first_out = proxy.client()
    body = b"y" * 5000
    first.data_received(b"POST /up HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n\r\n%s" % (HOST, len(body), body))
    backend = proxy.connector.backend()
    backend.high_water = 1000
    await turn()
    backend.protocol.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    assert first_out.is_reading()

    second, second_out = proxy.client(("10.1.1.2", 50001))
    second.data_received(get() * 66)             # past the pipeline bound: the second client is paused
    await turn()
    assert not second_out.is_reading()
    backend.drain()                              # the first connection's buffer drains only now
    assert not second_out.is_reading(), "a backend's drain resumed a client it does not serve"


async def test_a_late_resume_from_a_backend_that_left_does_not_resume_another_client() -> None:
    proxy = proxy_with_route()
    first, first_out = proxy.client()
    second, second_out = proxy.client(("10.1.1.2", 50001))
    first.data_received(get())
    await turn()
    backend = proxy.connector.backend()
    upstream = backend.protocol
    upstream.pause_writing()                     # its buffer is full: the first client waits
    assert not first_out.is_reading()
    first.flow.detach(upstream)                  # it leaves the first client ...
    assert first_out.is_reading()
    second.flow.stop_client(PIPELINE)            # ... and serves another one, paused for its own reason
    second.flow.attach(upstream)
    upstream.resume_writing()                    # the drain of the old pause: not the second client's
    assert not second_out.is_reading()
    second.flow.go_client(PIPELINE)
    assert second_out.is_reading()


async def test_two_reasons_to_stop_reading_the_client_never_resume_each_other() -> None:
    proxy = proxy_with_route()
    client, client_out = proxy.client()
    client.data_received(get())
    await turn()
    upstream = proxy.connector.backend().protocol
    flow = client.flow
    flow.stop_client(PIPELINE)
    upstream.pause_writing()
    flow.go_client(PIPELINE)
    flow.go_client(PIPELINE)                     # given back twice: still a no-op
    assert not client_out.is_reading()
    upstream.resume_writing()
    assert client_out.is_reading() and flow.stopped() == (0, 0)


async def test_a_websocket_tunnel_keeps_backpressure_both_ways() -> None:
    proxy = proxy_with_route()
    client, client_out = proxy.client()
    client.data_received(b"GET /ws HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n" % HOST)
    await turn()
    backend: MemoryTransport = proxy.connector.backend()
    upstream = backend.protocol
    upstream.data_received(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
    assert client.tunnel is not None and upstream.flow is client.flow
    client_out.take()
    backend.take()

    client_out.high_water = backend.high_water = 100
    upstream.data_received(b"d" * 500)           # the client's buffer fills: the backend is not read
    assert not backend.is_reading() and client_out.is_reading()
    client.data_received(b"u" * 500)             # the backend's buffer fills: the client is not read
    assert not client_out.is_reading()
    assert client_out.drain() == b"d" * 500
    assert backend.is_reading() and not client_out.is_reading()
    assert backend.drain() == b"u" * 500
    assert client_out.is_reading()

    client.connection_lost(None)                 # closing one side closes the other and lets go of the flow
    assert backend.closed and upstream.flow is None
