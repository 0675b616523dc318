"""StatusServer over real 127.0.0.1 sockets: health by phase, auth, /routes shape, both layouts, keep-alive."""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
import socket
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from portico.config.settings import RouterConfig, StatusSettings
from portico.routes import Endpoint, RouteTable, make_endpoint
from portico.stack.processes import free_port
from portico.state import RouterState
from portico.status import StatusServer

AUTH = {"Authorization": "Basic " + base64.b64encode(b"admin:admin123").decode()}
WRONG = {"Authorization": "Basic " + base64.b64encode(b"admin:nope").decode()}


def make_table() -> RouteTable:
    table = RouteTable()
    table.register("test.a.com", Endpoint("10.90.2.103", 9100, ttl=0))
    table.register("b.com/api", make_endpoint("10.0.0.2", 8080, tls=True, app_id="app-1", tags={"component": "x"},
                                         private_instance_id="inst-1"))
    table.register("b.com/api", Endpoint("10.0.0.3", 8080))
    return table


class Running:
    def __init__(self, server: StatusServer, port: int, routes_port: int | None, table, state) -> None:
        self.server, self.port, self.routes_port, self.table, self.state = server, port, routes_port, table, state


async def start(*, older: bool = False, user: str = "admin", password: str = "admin123") -> Running:
    port = free_port()
    routes_port = None if older else free_port()
    config = RouterConfig(status=StatusSettings(host="127.0.0.1", port=port, user=user, password=password,
                                                routes_port=routes_port))
    table, state = make_table(), RouterState()
    server = StatusServer(config, table, state)
    await server.start()
    return Running(server, port, routes_port, table, state)


@pytest.fixture
async def current():
    running = await start()
    yield running
    await running.server.stop()


@pytest.fixture
async def older():
    running = await start(older=True)
    yield running
    await running.server.stop()


def _get(port: int, path: str, headers: dict | None = None, method: str = "GET"):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request(method, path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


async def get(port: int, path: str, headers: dict | None = None, method: str = "GET"):
    return await asyncio.to_thread(_get, port, path, headers, method)


async def test_health_follows_phase(current):
    assert (await get(current.port, "/health"))[0] == 503          # starting
    current.state.mark_healthy()
    status, _headers, body = await get(current.port, "/health")
    assert (status, body) == (200, b"ok\n")
    current.state.mark_draining()
    assert (await get(current.port, "/health"))[0] == 503


async def test_routes_requires_auth(current):
    status, headers, _ = await get(current.routes_port, "/routes")
    assert status == 401
    assert headers["WWW-Authenticate"].startswith("Basic")
    assert (await get(current.routes_port, "/routes", WRONG))[0] == 401
    assert (await get(current.routes_port, "/routes", {"Authorization": "Bearer abc"}))[0] == 401
    assert (await get(current.routes_port, "/routes", {"Authorization": "Basic !!!"}))[0] == 401


async def test_routes_json_has_gorouters_shape(current):
    status, headers, body = await get(current.routes_port, "/routes", AUTH)
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    routes = json.loads(body)
    assert routes["test.a.com"] == [{"address": "10.90.2.103:9100", "availability_zone": "", "protocol": "http1",
                                     "tls": False, "ttl": 0, "tags": None}]
    api = {ep["address"]: ep for ep in routes["b.com/api"]}
    assert api["10.0.0.2:8080"]["tls"] is True
    assert api["10.0.0.2:8080"]["tags"] == {"component": "x"}
    assert api["10.0.0.2:8080"]["private_instance_id"] == "inst-1"
    assert "private_instance_id" not in api["10.0.0.3:8080"]


async def test_routes_follow_table_changes(current):
    first = json.loads((await get(current.routes_port, "/routes", AUTH))[2])
    current.table.register("new.com", Endpoint("10.0.0.9", 1))
    current.table.unregister("test.a.com", "10.90.2.103:9100")
    second = json.loads((await get(current.routes_port, "/routes", AUTH))[2])
    assert "test.a.com" in first and "new.com" not in first
    assert "new.com" in second and "test.a.com" not in second


async def test_current_layout_keeps_routes_off_the_status_port(current):
    assert (await get(current.port, "/routes", AUTH))[0] == 404
    assert (await get(current.routes_port, "/health"))[0] == 404


async def test_older_layout_serves_everything_on_one_port(older):
    assert (await get(older.port, "/routes"))[0] == 401
    status, _, body = await get(older.port, "/routes", AUTH)
    assert status == 200 and "test.a.com" in json.loads(body)
    assert (await get(older.port, "/healthz"))[0] == 401
    assert (await get(older.port, "/healthz", AUTH))[:3:2] == (200, b"ok")
    assert (await get(older.port, "/varz"))[0] == 401
    assert (await get(older.port, "/health"))[0] == 503         # no auth, still starting


async def test_empty_user_means_no_auth():
    running = await start(older=True, user="", password="")
    try:
        status, _, body = await get(running.port, "/routes")
        assert status == 200 and "test.a.com" in json.loads(body)
    finally:
        await running.server.stop()


async def test_varz(current):
    metrics = current.state.metrics
    metrics.requests = 7
    metrics.count_status(204)
    metrics.count_status(101)
    metrics.count_status(503)
    current.state.nats_connected = True
    status, headers, body = await get(current.port, "/varz", AUTH)
    assert status == 200 and headers["Content-Type"] == "application/json"
    varz = json.loads(body)
    assert varz["type"] == "Router" and varz["index"] == 0
    assert varz["requests"] == 7 and varz["nats_connected"] is True
    assert varz["urls"] == 2 and varz["droplets"] == 3
    assert varz["uptime"].endswith("s") and varz["uptime"].startswith("0d:")
    # gorouter's fields that operators script against
    assert (varz["responses_2xx"], varz["responses_5xx"], varz["responses_xxx"]) == (1, 1, 1)
    assert set(varz["latency"]) >= {"50", "75", "90", "95", "99"}
    assert varz["requests_per_sec"] == 0 and len(varz["rate"]) == 3
    assert varz["ms_since_last_registry_update"] == -1 and varz["top10_app_requests"] == []
    assert len(varz["gc_pauses"]["collections"]) == 3 and isinstance(varz["gc_pauses"]["recent"], list)


def _samples(body: bytes) -> dict:
    out = {}
    for fam in text_string_to_metric_families(body.decode()):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


async def test_metrics_parse(current):
    metrics = current.state.metrics
    for status in (200, 200, 503, 503, 503):
        metrics.count_status(status)
    metrics.count_router_error("endpoint_failure (EOF)")
    metrics.count_router_error("unknown_route")
    metrics.open_client_connections = 2
    metrics.duration_buckets[0] = 4          # four requests under 100 us
    metrics.duration_sum = 0.0002
    status, headers, body = await get(current.port, "/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    samples = _samples(body)
    assert samples[("portico_http_requests_total", (("code", "5xx"),))] == 3
    assert samples[("portico_http_requests_total", (("code", "2xx"),))] == 2
    assert samples[("portico_router_errors_total", (("code", "endpoint_failure"),))] == 1
    assert samples[("portico_open_connections", ())] == 2
    assert samples[("portico_routes", ())] == 2 and samples[("portico_endpoints", ())] == 3
    assert samples[("portico_healthy", ())] == 0
    assert samples[("portico_http_request_duration_seconds_bucket", (("le", "0.0001"),))] == 4
    assert samples[("portico_http_request_duration_seconds_bucket", (("le", "+Inf"),))] == 4
    assert samples[("portico_http_request_duration_seconds_count", ())] == 4


async def test_unknown_path_and_method(current):
    assert (await get(current.port, "/nope"))[0] == 404
    status, headers, _ = await get(current.port, "/health", method="POST")
    assert status == 405 and "GET" in headers["Allow"]
    assert (await get(current.routes_port, "/routes", AUTH, method="DELETE"))[0] == 405


async def test_head_has_no_body(current):
    current.state.mark_healthy()
    status, headers, body = await get(current.port, "/health", method="HEAD")
    assert status == 200 and headers["Content-Length"] == "3" and body == b""


def _two_requests_one_connection(port: int) -> list:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    out = []
    for path in ("/health", "/varz"):
        conn.request("GET", path, headers=AUTH)
        resp = conn.getresponse()
        out.append((resp.status, resp.read()))
    sock = conn.sock
    conn.close()
    return [*out, sock is not None]


async def test_keep_alive(current):
    current.state.mark_healthy()
    results = await asyncio.to_thread(_two_requests_one_connection, current.port)
    assert results[0] == (200, b"ok\n")
    assert results[1][0] == 200 and json.loads(results[1][1])["type"] == "Router"
    assert results[2]  # the same socket served both


def _raw(port: int, payload: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(payload)
        chunks = []
        while True:
            data = sock.recv(65536)
            if not data:
                return b"".join(chunks)
            chunks.append(data)


async def test_pipelined_and_http10_close(current):
    current.state.mark_healthy()
    payload = (b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
               b"GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    out = await asyncio.to_thread(_raw, current.port, payload)
    assert out.index(b"HTTP/1.1 200") < out.index(b"HTTP/1.1 404")
    out = await asyncio.to_thread(_raw, current.port, b"GET /health HTTP/1.0\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 200") and b"Connection: close" in out


async def test_garbage_gets_400(current):
    out = await asyncio.to_thread(_raw, current.port, b"NOT HTTP AT ALL\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 400")


async def test_stop_closes_open_connections(current):
    reader, writer = await asyncio.open_connection("127.0.0.1", current.port)
    writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 ") and b"connection: close" not in head.lower()  # kept alive
    async with asyncio.timeout(5):
        await current.server.stop()
    # stop() must close the idle keep-alive connection: reading ends at EOF instead of hanging
    async with asyncio.timeout(5):
        await reader.read()
    assert reader.at_eof()
    writer.close()


async def test_large_table_is_streamed_in_pieces_and_matches_snapshot(current, monkeypatch):
    from portico.status import routes_json
    monkeypatch.setattr(routes_json, "CHUNK_POOLS", 3)
    for i in range(10):
        current.table.register(f"app{i}.example.com", Endpoint("10.1.0.1", 8000 + i))
    status, headers, body = await get(current.routes_port, "/routes", AUTH)
    assert status == 200 and headers["Transfer-Encoding"] == "chunked" and "Content-Length" not in headers
    assert json.loads(body) == current.table.snapshot()
    # Pipelined: the streamed /routes answer still comes before the quick answer that followed it.
    current.table.register("one-more.com", Endpoint("10.1.0.2", 1))
    auth = AUTH["Authorization"].encode()
    payload = (b"GET /routes HTTP/1.1\r\nHost: x\r\nAuthorization: " + auth + b"\r\n\r\n"
               b"GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    out = await asyncio.to_thread(_raw, current.routes_port, payload)
    last_chunk = out.index(b"\r\n0\r\n\r\n")
    assert out.index(b"HTTP/1.1 200") < out.index(b"one-more.com") < last_chunk < out.index(b"HTTP/1.1 404")
    # HTTP/1.0 has no chunked coding: the body is sent as it is and ends with the connection.
    out = await asyncio.to_thread(_raw, current.routes_port, b"GET /routes HTTP/1.0\r\nAuthorization: " + auth
                                  + b"\r\n\r\n")
    head, _, body = out.partition(b"\r\n\r\n")
    assert b"Connection: close" in head and b"chunked" not in head
    assert json.loads(body) == current.table.snapshot()
    # HEAD: the head only.
    status, headers, body = await get(current.routes_port, "/routes", AUTH, method="HEAD")
    assert status == 200 and body == b""


def _read_slowly(port: int, request: bytes, first: int) -> tuple[bytes, bytes]:
    """Read `first` bytes, stop reading for a while (the server must wait), then read the rest."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)  # before connect: a small window
        sock.settimeout(30)
        sock.connect(("127.0.0.1", port))
        sock.sendall(request)
        start = b""
        while len(start) < first:
            start += sock.recv(first - len(start))
        time.sleep(0.5)
        rest = []
        while True:
            data = sock.recv(1 << 20)
            if not data:
                break
            rest.append(data)
        return start, b"".join(rest)


async def test_streamed_routes_wait_for_a_slow_reader(current, monkeypatch):
    """A client that stops reading gets no more pieces made: the router holds about one piece, not the body."""
    from portico.status import routes_json
    monkeypatch.setattr(routes_json, "CHUNK_POOLS", 50)
    made = []
    real_encode = routes_json._encode

    def counting_encode(value):
        made.append(1)
        return real_encode(value)

    monkeypatch.setattr(routes_json, "_encode", counting_encode)
    san = "x" * 1000  # ~1 KB per route: 20 MB in all, far more than the kernel's socket buffers (4 MB max)
    for i in range(20_000):
        current.table.register(f"app{i}.example.com", Endpoint("10.1.0.1", 1000 + i, server_cert_domain_san=san))
    request = (b"GET /routes HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: "
               + AUTH["Authorization"].encode() + b"\r\n\r\n")
    reader = asyncio.ensure_future(asyncio.to_thread(_read_slowly, current.routes_port, request, 1000))
    # while the client sleeps, the stream stalls well short of the 400 pieces of the table
    await asyncio.sleep(0.3)
    stalled_at = len(made)
    assert 0 < stalled_at < 250
    start, rest = await reader
    head, _, body = (start + rest).partition(b"\r\n\r\n")
    assert b"Transfer-Encoding: chunked" in head
    assert json.loads(_unchunk(body)) == current.table.snapshot()
    assert len(made) > stalled_at


def _unchunk(body: bytes) -> bytes:
    out, pos = [], 0
    while True:
        eol = body.index(b"\r\n", pos)
        size = int(body[pos:eol], 16)
        if size == 0:
            return b"".join(out)
        out.append(body[eol + 2:eol + 2 + size])
        pos = eol + 2 + size + 2


async def test_routes_body_is_cached_per_generation():
    from portico.status.routes_json import RoutesJson
    table = make_table()
    cache = RoutesJson(table)
    first = cache.cached()
    assert cache.cached() is first          # unchanged table: the same bytes, no re-encoding
    table.register("c.com", Endpoint("10.0.0.4", 1))
    assert cache.cached() is not first and b"c.com" in cache.cached()


def test_pieces_list_kept_empty_routes_and_skip_routes_removed_while_streaming():
    from portico.status import routes_json
    table = RouteTable(keep_empty_for=30.0)
    for i in range(5):
        table.register(f"h{i}.com", Endpoint("10.0.0.1", 1 + i))
    table.unregister("h1.com", "10.0.0.1:2")          # kept empty (503) for 30 s: listed with []
    whole = b"".join(routes_json.RoutesJson(table).pieces())
    assert json.loads(whole) == table.snapshot() and json.loads(whole)["h1.com"] == []
    pieces = routes_json.RoutesJson(table).pieces()
    first = next(pieces)
    table.prune(1000.0)                                 # every endpoint is stale by now: all routes go
    table.register("late.com", Endpoint("10.0.0.9", 9))  # added after the listing began: next poll
    assert json.loads(first + b"".join(pieces)) == {}


def _read_events(port: int, path: str, headers: dict, count: int) -> tuple[bytes, list[dict]]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n{head}\r\n".encode())
        data = b""
        while data.count(b"\n\n") < count:  # one per event (the head ends in \r\n\r\n)
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    events = [json.loads(e[len(b"data: "):]) for e in body.split(b"\n\n") if e.startswith(b"data: ")]
    return head, events


async def test_dashboard_streams_events_behind_the_routes_auth(current):
    assert (await get(current.routes_port, "/dashboard"))[0] == 401
    assert (await get(current.routes_port, "/dashboard/events"))[0] == 401
    assert (await get(current.port, "/dashboard", AUTH))[0] == 404  # not on the public status port
    status, headers, body = await get(current.routes_port, "/dashboard", AUTH)
    assert status == 200 and headers["Content-Type"].startswith("text/html") and b"dashboard.js" in body
    current.state.metrics.requests = 5
    head, events = await asyncio.to_thread(_read_events, current.routes_port, "/dashboard/events?q=b.com", AUTH, 2)
    assert b"Content-Type: text/event-stream" in head and b"Content-Length" not in head
    assert len(events) >= 2  # the first at once, the next after a tick
    first = events[0]
    assert first["router"]["routes"] == 2 and first["filter"] == "b.com"
    assert events[-1]["router"]["requests"] == 5  # counters as of the latest tick
    assert [r["route"] for r in first["table"]] == ["b.com/api"]
    assert {e["address"] for e in first["table"][0]["endpoints"]} == {"10.0.0.2:8080", "10.0.0.3:8080"}


async def test_dashboard_in_the_older_layout_is_on_the_status_port(older):
    assert (await get(older.port, "/dashboard"))[0] == 401
    assert (await get(older.port, "/dashboard", AUTH))[0] == 200


async def test_a_client_that_leaves_mid_stream_costs_nothing_more(current, monkeypatch, caplog):
    from portico.status import routes_json
    monkeypatch.setattr(routes_json, "CHUNK_POOLS", 50)
    for i in range(5_000):
        current.table.register(f"gone{i}.example.com", Endpoint("10.1.0.1", 1000 + i, server_cert_domain_san="x" * 500))
    reader, writer = await asyncio.open_connection("127.0.0.1", current.routes_port)
    writer.write(b"GET /routes HTTP/1.1\r\nHost: x\r\nAuthorization: " + AUTH["Authorization"].encode() + b"\r\n\r\n")
    assert (await reader.readexactly(12)) == b"HTTP/1.1 200"
    writer.transport.abort()                                      # gone after the first bytes
    await asyncio.sleep(0.2)
    status, _, body = await get(current.routes_port, "/routes", AUTH)
    assert status == 200 and len(json.loads(body)) == len(current.table)
    assert "Traceback" not in caplog.text and "failed" not in caplog.text
