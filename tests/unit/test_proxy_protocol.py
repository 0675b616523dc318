"""The request path in memory: real ClientConnection/UpstreamConnection/Exchange objects, in-memory transports.

Each test runs in milliseconds; tests/e2e checks the same behaviours (and the socket-level ones) end to end.
"""

from __future__ import annotations

import asyncio
import re

import pytest

from portico.config.settings import RouterConfig
from tests.unit.memory import MemoryProxy, turn

pytestmark = pytest.mark.unit

HOST = "app.example.com"


def parse_responses(data: bytes) -> list[tuple[int, dict[str, str], bytes]]:
    """(status, lower-cased headers, body) of every complete response in `data` (Content-Length or chunked)."""
    out = []
    while data:
        head, sep, rest = data.partition(b"\r\n\r\n")
        assert sep, data
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                size_line, _, rest = rest.partition(b"\r\n")
                size = int(size_line.split(b";")[0], 16)
                body, rest = body + rest[:size], rest[size + 2:]
                if size == 0:
                    break
        else:
            n = int(headers.get("content-length", "0"))
            body, rest = rest[:n], rest[n:]
        out.append((status, headers, body))
        data = rest
    return out


def request_headers(raw: bytes) -> dict[str, str]:
    head = raw.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")[1:]
    return {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in head)}


async def test_request_reaches_the_backend_and_the_answer_comes_back():
    proxy = MemoryProxy(asyncio.get_running_loop())
    proxy.route(HOST, app_id="guid-1", private_instance_id="inst-1", private_instance_index="2")
    conn, client = proxy.client()
    conn.data_received(f"GET /hello?x=1 HTTP/1.1\r\nHost: {HOST}\r\nX-Forwarded-For: 10.9.9.9\r\n\r\n".encode())
    await turn()
    backend = proxy.connector.backend()
    sent = backend.take()
    assert sent.startswith(b"GET /hello?x=1 HTTP/1.1\r\n")
    seen = request_headers(sent)
    assert seen["host"] == HOST
    assert seen["x-forwarded-for"] == "10.9.9.9, 10.1.1.1"
    assert seen["x-forwarded-proto"] == "http"
    assert (seen["x-cf-applicationid"], seen["x-cf-instanceid"], seen["x-cf-instanceindex"]) == \
        ("guid-1", "inst-1", "2")
    assert re.fullmatch(r"[0-9a-f-]{36}", seen["x-vcap-request-id"])
    proxy.connector.dialed[0].data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-App: yes\r\n\r\nhello")
    [(status, headers, body)] = parse_responses(client.take())
    assert (status, body, headers["x-app"]) == (200, b"hello", "yes")
    assert headers["x-vcap-request-id"] == seen["x-vcap-request-id"]
    assert proxy.state.metrics.requests == 1 and not client.closed


async def test_keep_alive_reuses_the_backend_connection():
    proxy = MemoryProxy(asyncio.get_running_loop())
    proxy.route(HOST)
    conn, client = proxy.client()
    for i in range(3):
        conn.data_received(f"GET /{i} HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
        await turn()
        assert proxy.connector.backend().take().startswith(f"GET /{i} ".encode())
        proxy.connector.dialed[0].data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n" + str(i).encode())
        assert parse_responses(client.take())[0][2] == str(i).encode()
    assert len(proxy.connector.dialed) == 1
    assert proxy.state.metrics.backend_reuses == 2


async def test_unknown_route_is_404_with_gorouter_error_header():
    proxy = MemoryProxy(asyncio.get_running_loop())
    conn, client = proxy.client()
    conn.data_received(b"GET / HTTP/1.1\r\nHost: nope.example.com:8080\r\n\r\n")
    await turn()
    [(status, headers, body)] = parse_responses(client.take())
    assert status == 404 and headers["x-cf-routererror"] == "unknown_route"
    assert body == b"404 Not Found: Requested route ('nope.example.com:8080') does not exist.\n"   # r.Host
    assert proxy.connector.dialed == []


@pytest.mark.parametrize("host_line", ["", "Host: \r\n"])
async def test_missing_or_empty_host_is_400(host_line):
    proxy = MemoryProxy(asyncio.get_running_loop())
    conn, client = proxy.client()
    conn.data_received(f"GET / HTTP/1.1\r\n{host_line}\r\n".encode())
    await turn()
    [(status, headers, body)] = parse_responses(client.take())
    assert status == 400 and headers["x-cf-routererror"] == "empty_host"
    assert body == b"400 Bad Request: Request had empty Host header\n"


@pytest.mark.parametrize("raw,status", [
    (b"POST /s HTTP/1.1\r\nHost: %s\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    (b"POST /s HTTP/1.1\r\nHost: %s\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde", 400),
    (b"GET / HTTP/1.1\r\nHost: %s\r\nX-Folded: a\r\n  b\r\n\r\n", 400),
    (b"GET / HTTP/2.0\r\nHost: %s\r\n\r\n", 505),
    (b"GET / HTTP/1.2\r\nHost: %s\r\n\r\n", 400),
    (b"GET /" + b"u" * 10000 + b" HTTP/1.1\r\nHost: %s\r\n\r\n", 414),
])
async def test_malformed_requests_get_their_4xx_and_the_connection_closes(raw, status):
    proxy = MemoryProxy(asyncio.get_running_loop())
    proxy.route(HOST)
    conn, client = proxy.client()
    conn.data_received(raw.replace(b"%s", HOST.encode()))
    await turn()
    responses = parse_responses(client.take())
    assert [r[0] for r in responses] == [status]
    assert client.closed
    assert all(not b.take() for b in (proxy.connector.backend(i) for i in range(len(proxy.connector.dialed))))


async def test_too_many_headers_is_431():
    proxy = MemoryProxy(asyncio.get_running_loop())
    proxy.route(HOST)
    conn, client = proxy.client()
    extra = "".join(f"X-H{i}: v\r\n" for i in range(150))
    conn.data_received(f"GET / HTTP/1.1\r\nHost: {HOST}\r\n{extra}\r\n".encode())
    await turn()
    [(status, headers, _)] = parse_responses(client.take())
    assert status == 431 and headers["x-cf-routererror"] == "max-request-size-exceeded"


async def test_pipelined_requests_are_answered_in_order():
    proxy = MemoryProxy(asyncio.get_running_loop())
    proxy.route(HOST)
    conn, client = proxy.client()
    conn.data_received(f"GET /a HTTP/1.1\r\nHost: {HOST}\r\n\r\nGET /b HTTP/1.1\r\nHost: nope.example.com\r\n\r\n"
                       .encode())
    await turn()
    assert client.take() == b""   # /b's 404 waits for /a's answer
    proxy.connector.dialed[0].data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na")
    await turn()
    assert [(s, b) for s, _, b in parse_responses(client.take())][:1] == [(200, b"a")]


async def test_chunked_response_is_streamed_through():
    proxy = MemoryProxy(asyncio.get_running_loop())
    proxy.route(HOST)
    conn, client = proxy.client()
    conn.data_received(f"GET / HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
    await turn()
    upstream = proxy.connector.dialed[0]
    upstream.data_received(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
    first = client.take()
    assert first.endswith(b"abc\r\n")    # the first chunk is out before the response ends
    upstream.data_received(b"2\r\nde\r\n0\r\n\r\n")
    [(status, _, body)] = parse_responses(first + client.take())
    assert (status, body) == (200, b"abcde")


async def test_refused_backend_is_502_with_the_dial_error():
    proxy = MemoryProxy(asyncio.get_running_loop())
    ep = proxy.route(HOST)
    proxy.connector.refused.add(ep.address)
    conn, client = proxy.client()
    conn.data_received(f"GET / HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
    await turn(10)
    [(status, headers, _)] = parse_responses(client.take())
    assert status == 502
    assert headers["x-cf-routererror"] == "endpoint_failure (dial tcp 10.0.0.5:9000: connect: connection refused)"
    assert proxy.state.metrics.bad_gateways == 1


async def test_backend_closing_mid_response_aborts_the_client():
    proxy = MemoryProxy(asyncio.get_running_loop())
    proxy.route(HOST)
    conn, client = proxy.client()
    conn.data_received(f"GET / HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
    await turn()
    upstream = proxy.connector.dialed[0]
    upstream.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
    upstream.transport.close()
    await turn()
    assert client.take().endswith(b"abc") and client.closed


async def test_head_response_has_no_body_and_the_connection_stays_usable():
    proxy = MemoryProxy(asyncio.get_running_loop())
    proxy.route(HOST)
    conn, client = proxy.client()
    conn.data_received(f"HEAD / HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
    await turn()
    upstream = proxy.connector.dialed[0]
    upstream.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 42\r\n\r\n")
    out = client.take()
    assert out.startswith(b"HTTP/1.1 200") and out.endswith(b"\r\n\r\n") and b"Content-Length: 42" in out
    conn.data_received(f"GET /next HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
    await turn()
    sent = proxy.connector.backend().take()
    assert sent.startswith(b"HEAD / HTTP/1.1\r\n") and b"GET /next HTTP/1.1\r\n" in sent
    assert len(proxy.connector.dialed) == 1


async def test_http10_client_gets_an_http10_status_line_and_a_close():
    proxy = MemoryProxy(asyncio.get_running_loop(), RouterConfig())
    proxy.route(HOST)
    conn, client = proxy.client()
    conn.data_received(f"GET /ten HTTP/1.0\r\nHost: {HOST}\r\n\r\n".encode())
    await turn()
    assert proxy.connector.backend().take().startswith(b"GET /ten HTTP/1.1\r\n")
    proxy.connector.dialed[0].data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    await turn()
    out = client.take()
    assert out.startswith(b"HTTP/1.0 200") and out.endswith(b"ok")
    assert client.closed


async def test_each_request_writes_one_access_log_line_through_the_proxy(tmp_path):
    from portico.observe.access_log import AccessLog

    log = AccessLog(str(tmp_path / "access.log"))
    proxy = MemoryProxy(asyncio.get_running_loop(), access_log=log)
    proxy.route(HOST, app_id="guid-1", private_instance_id="inst-1", private_instance_index="0")
    conn, _client = proxy.client()
    conn.data_received(f"GET /p?q=1 HTTP/1.1\r\nHost: {HOST}\r\nUser-Agent: ua\r\n\r\n".encode())
    await turn()
    proxy.connector.dialed[0].data_received(b"HTTP/1.1 201 Created\r\nContent-Length: 3\r\n\r\nabc")
    conn.data_received(b"GET / HTTP/1.1\r\nHost: nope.example.com\r\n\r\n")
    await turn()
    log.close()
    first, second = (tmp_path / "access.log").read_text().splitlines()
    assert first.startswith(f'{HOST} - [') and '"GET /p?q=1 HTTP/1.1" 201 0 3 "-" "ua" "10.1.1.1:50000" ' \
        '"10.0.0.5:9000"' in first
    assert 'app_id:"guid-1" app_index:"0" instance_id:"inst-1" x_cf_routererror:"-"' in first
    assert '"GET / HTTP/1.1" 404 ' in second and second.endswith('x_cf_routererror:"unknown_route"')
