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


def test_malformed_body_after_the_response_started_aborts_the_client(body_router):
    """A backend that answers before reading the body: the broken body then cannot get a 400, so the client
    connection is aborted and never sees the end of a chunked response it could take as complete."""
    import asyncio

    from support import loop_thread

    async def early_answer(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nearly\r\n")
        await writer.drain()
        await reader.read()          # until the router drops the connection
        writer.close()

    async def start():
        return await asyncio.start_server(early_answer, "127.0.0.1", 0)

    lt = loop_thread()
    server = lt.run(start())
    try:
        port = server.sockets[0].getsockname()[1]
        host = unique_host("early")
        body_router.register(host, port)
        with Client(body_router.port, timeout=10) as c:
            c.send(f"POST /x HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n\r\n".encode())
            seen = b""
            while b"early" not in seen:
                seen += c.sock.recv(65536)
            c.send(b"0x5\r\nhello\r\n0\r\n\r\n")
            rest = b""
            closed = False
            c.sock.settimeout(5)
            try:
                while chunk := c.sock.recv(65536):
                    rest += chunk
                closed = True
            except ConnectionResetError:
                closed = True
            except TimeoutError:
                pass
        assert closed                                # aborted at once, not left waiting
        assert b"0\r\n\r\n" not in seen + rest     # never completed
        assert b"400" not in rest                   # no error status in the middle of a body
    finally:
        lt.run(_close(server))


async def _close(server):
    server.close()
