"""The request router's shortcuts keep its answers: the HTTP version presumed from llhttp's keep-alive verdict
(asked only when a Connection header could have changed it), the exchange made without its constructor, the
X-Request-Start line made once per millisecond."""

from __future__ import annotations

import pytest

from portico.proxy.client_base import ClientBase
from portico.proxy.exchange import Exchange
from portico.proxy.exchange_state import DEFAULTS
from portico.proxy.routing import _new_exchange
from tests.unit.memory import MemoryProxy, turn

pytestmark = pytest.mark.unit
HOST = b"app.example"
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

# (request line version, extra header lines) -> (status line the client gets, connection kept open,
# whether the backend saw the request)
CASES = [
    (b"HTTP/1.1", b"", b"HTTP/1.1 200 OK", True, True),
    (b"HTTP/1.1", b"Connection: keep-alive\r\n", b"HTTP/1.1 200 OK", True, True),
    (b"HTTP/1.1", b"Connection: close\r\n", b"HTTP/1.1 200 OK", False, True),
    (b"HTTP/1.1", b"Proxy-Connection: keep-alive\r\n", b"HTTP/1.1 200 OK", True, True),
    (b"HTTP/1.1", b"Connection: Upgrade\r\nUpgrade: foo\r\n", b"HTTP/1.1 200 OK", True, True),
    (b"HTTP/1.0", b"", b"HTTP/1.0 200 OK", False, True),
    (b"HTTP/1.0", b"Connection: keep-alive\r\n", b"HTTP/1.0 200 OK", False, True),   # 1.0: never kept
    (b"HTTP/1.0", b"Proxy-Connection: Keep-Alive\r\n", b"HTTP/1.0 200 OK", False, True),
    (b"HTTP/1.0", b"Connection: close\r\n", b"HTTP/1.0 200 OK", False, True),
    (b"HTTP/2.0", b"", b"HTTP/1.0 505 HTTP Version Not Supported", False, False),
    (b"HTTP/2.0", b"Connection: keep-alive\r\n", b"HTTP/1.0 505 HTTP Version Not Supported", False, False),
    # two Host headers are a 400 for 1.x, but the version is judged first
    (b"HTTP/2.0", b"Host: other\r\nConnection: keep-alive\r\n", b"HTTP/1.0 505 HTTP Version Not Supported",
     False, False),
    (b"HTTP/1.0", b"Host: other\r\nConnection: keep-alive\r\n", b"HTTP/1.0 400 Bad Request", False, False),
    (b"HTTP/1.1", b"Host: other\r\n", b"HTTP/1.1 400 Bad Request", False, False),
]


@pytest.mark.parametrize(("version", "extra", "status_line", "kept", "forwarded"), CASES)
async def test_the_version_and_keep_alive_are_those_the_request_line_and_connection_say(
        version: bytes, extra: bytes, status_line: bytes, kept: bool, forwarded: bool) -> None:
    proxy = MemoryProxy(__import__("asyncio").get_running_loop())
    proxy.route(HOST.decode())
    conn, client = proxy.client()
    conn.data_received(b"GET / " + version + b"\r\nHost: " + HOST + b"\r\n" + extra + b"\r\n")
    await turn()
    if forwarded:
        backend = proxy.connector.backend()
        sent = backend.take()
        assert sent.startswith(b"GET / HTTP/1.1\r\n"), sent
        assert b"keep-alive" not in sent.lower() and b"proxy-connection" not in sent.lower()
        proxy.connector.dialed[-1].data_received(OK)
        await turn()
    else:
        assert not proxy.connector.dialed
    got = client.take()
    assert got.startswith(status_line + b"\r\n"), got
    assert client.closed is not kept
    assert conn.http11 is (version == b"HTTP/1.1")


async def test_a_kept_connection_serves_the_next_request_after_a_presumed_one() -> None:
    proxy = MemoryProxy(__import__("asyncio").get_running_loop())
    proxy.route(HOST.decode())
    conn, client = proxy.client()
    for version, kept in ((b"HTTP/1.1", True), (b"HTTP/1.0", False)):
        conn.data_received(b"GET / " + version + b"\r\nHost: " + HOST + b"\r\n\r\n")
        await turn()
        proxy.connector.dialed[-1].data_received(OK)
        await turn()
        assert client.take().startswith(version + b" 200 OK\r\n")
        assert client.closed is not kept


def test_the_router_makes_an_exchange_as_its_constructor_does() -> None:
    class Client(ClientBase):
        ctx = None    # a typed ProxyContext slot when compiled: None or the real thing

    client = Client()
    for method in (b"GET", b"HEAD", b"POST"):
        made, built = _new_exchange(client, method, b"/x?y"), Exchange(client, method, b"/x?y")  # type: ignore[arg-type]
        for name in (*DEFAULTS, "client", "ctx", "method", "uri", "is_head"):
            assert getattr(made, name) == getattr(built, name), name
            assert type(getattr(made, name)) is type(getattr(built, name)), name


async def test_x_request_start_is_the_request_s_millisecond() -> None:
    import re
    import time

    proxy = MemoryProxy(__import__("asyncio").get_running_loop())
    proxy.route(HOST.decode())
    seen = []
    for _ in range(30):
        conn, _client = proxy.client()
        before = int(time.time() * 1000)
        conn.data_received(b"GET / HTTP/1.1\r\nHost: " + HOST + b"\r\n\r\n")
        after = int(time.time() * 1000)
        await turn()
        sent = proxy.connector.backend().take()
        (ms,) = re.findall(rb"\r\nX-Request-Start: (\d+)\r\n", sent)
        assert before <= int(ms) <= after and ms == b"%d" % int(ms)
        seen.append(int(ms))
    assert seen == sorted(seen)
