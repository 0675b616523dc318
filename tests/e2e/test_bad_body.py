"""Issue 10.2: a chunked request body that turns out malformed after its head went to the backend.

The client gets a 400 and its connection closes at once (it used to wait until the backend gave up), the
backend connection is dropped rather than pooled, and the router counts it.
"""

from __future__ import annotations

import time

import pytest
from support import Client, get, unique_host

BAD_BODIES = {
    "size overflow": b"ffffffffffffffffff5\r\nabcde\r\n0\r\n\r\n",
    "hex prefix": b"0x5\r\nabcde\r\n0\r\n\r\n",
    "bare LF in chunk line": b"5\nabcde\r\n0\r\n\r\n",
    "chunk data without CRLF": b"5\r\nabcdeXX0\r\n\r\n",
}


@pytest.fixture(scope="module")
def body_router(router_factory):
    return router_factory(endpoint_timeout="30s")


@pytest.mark.parametrize("case", list(BAD_BODIES))
def test_malformed_chunked_body_answered_400_and_closed(body_router, backend, case):
    host = unique_host("badbody")
    body_router.register(host, backend.port)
    first = get(body_router.port, host)
    assert first.status == 200
    pooled_conn = first.json()["conn"]
    before = body_router.varz()["malformed_request_bodies"]
    with Client(body_router.port, timeout=10) as c:
        started = time.monotonic()
        # the head alone first, so the router has surely forwarded it before the body arrives
        c.send(f"POST /echo HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n\r\n".encode())
        time.sleep(0.2)
        c.send(BAD_BODIES[case])
        r = c.read_response()
        assert r.status == 400
        assert r.header("Connection") == "close"
        assert c.is_closed(timeout=5)
        assert time.monotonic() - started < 5     # answered at once, not after a backend timeout
    assert body_router.varz()["malformed_request_bodies"] == before + 1
    # the backend connection that carried part of the broken request was closed, never pooled again
    after = get(body_router.port, host)
    assert after.status == 200 and after.json()["conn"] != pooled_conn
