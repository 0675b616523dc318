"""A backend connection goes back to the idle pool reading, even when it was paused for a slow client.

Reading from the backend pauses while the client's write buffer is full. If the response ends in bytes already
read (TLS records decrypted together, or an HTTP/2 client whose window is shut while the HTTP/1.1 backend's
last bytes arrive), the connection is released while still paused, and the client side may resume it only
later or never: the next request sent on it would get no answer until endpoint_timeout.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.unit.memory import MemoryProxy, turn

pytestmark = pytest.mark.unit

REQUEST = b"GET / HTTP/1.1\r\nHost: app.example.com\r\n\r\n"


async def test_a_connection_paused_for_a_slow_client_is_pooled_reading() -> None:
    proxy = MemoryProxy(asyncio.get_running_loop())
    proxy.route("app.example.com")
    client, client_out = proxy.client()
    client.data_received(REQUEST)
    await turn()
    backend = proxy.connector.backend()
    assert backend.take().startswith(b"GET / HTTP/1.1\r\n")
    conn = backend.protocol
    conn.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello")
    client.pause_writing()              # the client's buffer is full: reading from the backend pauses
    assert not backend.is_reading()
    conn.data_received(b"world")        # the response's end, read before the pause took effect
    assert client_out.take().endswith(b"\r\n\r\nhelloworld")
    assert conn in proxy.connector.idle[conn.pool_key]    # pooled ...
    assert backend.is_reading()                           # ... and reading
    client.resume_writing()             # the client drains later: nothing left to resume

    client.data_received(REQUEST)       # the next request reuses the connection and gets its answer
    await turn()
    assert len(proxy.connector.dialed) == 1
    assert backend.take().startswith(b"GET / HTTP/1.1\r\n")
    conn.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    assert client_out.take().endswith(b"\r\n\r\nok")
    assert backend.is_reading()
