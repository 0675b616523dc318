"""Issue 12 "Behind": endpoints registered with protocol http2 get HTTP/2 from the router.

Real processes and sockets: a router, nats-server, and HTTP/2 apps driven by the `h2` library over TLS (ALPN
h2, trustme certificates) and in clear text (h2c with prior knowledge, a Portico option). The clients here
speak HTTP/1.1 to the router, so these tests also cover an HTTP/1.1 client talking to an HTTP/2 backend.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time

import pytest
import trustme
from h2_backend import H2Backend, h2_server_context
from h2_client import H2Client
from polling import wait_for
from support import Backend, Client, WsBackend, get, unique_host

SAN = "h2app.internal"


@pytest.fixture(scope="module")
def ca():
    return trustme.CA()


@pytest.fixture(scope="module")
def h2_router(router_factory, ca):
    """TLS backends trusted through `ca`, h2c on for plaintext http2 endpoints."""
    return router_factory(backends={"ca_certs": ca.cert_pem.bytes().decode(), "max_attempts": 3,
                                    "enable_h2c": True}, endpoint_timeout="4s")


@pytest.fixture(scope="module")
def tls_app(ca):
    app = H2Backend("tls-h2", tls=h2_server_context(ca, SAN)).start()
    yield app
    app.stop()


@pytest.fixture(scope="module")
def tls_route(h2_router, tls_app):
    host = unique_host("h2tls")
    h2_router.register(host, 1, tls_port=tls_app.port, san=SAN, protocol="http2")
    return host


def raw_exchange(port: int, request: bytes, timeout: float = 10.0) -> bytes:
    """Send one HTTP/1.1 request with `Connection: close` and return every byte of the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data


def test_tls_http2_endpoint_gets_http2_and_trailers_reach_an_http11_client(h2_router, tls_app, tls_route):
    answer = raw_exchange(h2_router.port, (f"GET /echo?trailers HTTP/1.1\r\nHost: {tls_route}\r\nTE: trailers\r\n"
                                           f"X-Mine: 1\r\nConnection: close\r\n\r\n").encode())
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n"), head
    assert b"transfer-encoding: chunked" in head.lower()
    # the last chunk carries the backend's trailers
    assert body.endswith(b"0\r\nGrpc-Status: 0\r\nX-Done: yes\r\n\r\n"), body[-80:]
    assert b"\r\nContent-Type: application/json\r\n" in head     # names written as Go writes them
    seen = tls_app.requests[-1]
    assert seen["headers"][":scheme"] == "https" and seen["headers"][":authority"] == tls_route
    assert seen["headers"]["te"] == "trailers"          # forwarded: gRPC servers insist on it
    assert seen["headers"]["x-mine"] == "1" and "connection" not in seen["headers"]
    assert seen["headers"]["x-vcap-request-id"]


def test_http2_both_sides_trailers_pass_both_ways(h2_router, tls_app, tls_route):
    """An HTTP/2 client (h2c on the plain port) to an HTTP/2 endpoint: trailers each way, TE: trailers on."""
    with H2Client(h2_router.port) as c:
        sid = c.request("POST", "/echo?trailers", tls_route, headers=[("te", "trailers")], body=b"ping" * 1000,
                        trailers=[("x-checksum", "abc")])
        r = c.wait(sid)
    assert r.status == 200 and r.ended and r.reset is None
    doc = json.loads(bytes(r.body))
    assert doc["body_len"] == 4000 and doc["trailers"] == {"x-checksum": "abc"} and doc["te"] == "trailers"
    assert (b"grpc-status", b"0") in r.trailers and (b"x-done", b"yes") in r.trailers


def test_http11_request_trailers_reach_an_http2_endpoint(h2_router, tls_app, tls_route):
    with Client(h2_router.port) as c:
        c.send(f"POST /echo?cl HTTP/1.1\r\nHost: {tls_route}\r\nTransfer-Encoding: chunked\r\n\r\n"
               "5\r\nhello\r\n0\r\nX-Checksum: abc\r\nHost: elsewhere\r\n\r\n".encode())
        r = c.read_response()
    assert r.status == 200 and r.json()["body_len"] == 5
    assert r.json()["trailers"] == {"x-checksum": "abc"}       # framing fields are never passed as trailers


def test_one_connection_carries_concurrent_streams(h2_router, tls_app, tls_route):
    before = tls_app.connections
    results: list[int] = []

    def call() -> None:
        results.append(get(h2_router.port, tls_route, "/slow?s=0.3").status)

    threads = [threading.Thread(target=call) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results == [200] * 12
    assert tls_app.connections == before          # all of them on the connection the first test opened
    convs = {r["conn"] for r in tls_app.requests[-12:]}
    assert len(convs) == 1


def test_a_burst_to_a_new_endpoint_opens_one_connection(h2_router, ca):
    app = H2Backend("burst", tls=h2_server_context(ca, SAN)).start()
    try:
        host = unique_host("h2burst")
        h2_router.register(host, 1, tls_port=app.port, san=SAN, protocol="http2")
        results: list[int] = []
        threads = [threading.Thread(target=lambda: results.append(get(h2_router.port, host, "/slow?s=0.3").status))
                   for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert results == [200] * 8
        assert app.connections == 1          # requests waiting on the first dial share its connection
    finally:
        app.stop()


def test_past_max_concurrent_streams_another_connection_opens(h2_router, ca):
    app = H2Backend("two-streams", tls=h2_server_context(ca, SAN), max_streams=2).start()
    try:
        host = unique_host("h2max")
        h2_router.register(host, 1, tls_port=app.port, san=SAN, protocol="http2")
        assert get(h2_router.port, host).status == 200     # learns the backend's SETTINGS
        results: list[int] = []
        threads = [threading.Thread(target=lambda: results.append(get(h2_router.port, host, "/slow?s=0.5").status))
                   for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert results == [200] * 6
        assert app.connections >= 3                     # never more than 2 streams on one connection
        # the extra connections close once idle: one stays for the endpoint
        wait_for(lambda: len(app.protocols) == 1 or None, 10, 0.05, "extra HTTP/2 connections closed")
    finally:
        app.stop()


def test_request_bodies_stream_both_framings_through_flow_control(h2_router, tls_app, tls_route):
    import hashlib

    body = bytes(range(256)) * (3 * 4096)              # 3 MiB: many times the stream's 64 KiB window
    with Client(h2_router.port) as c:
        r = c.request("POST", "/echo?cl", tls_route, body=body)
        assert r.status == 200 and r.json()["body_len"] == len(body)
        assert r.json()["body_sha256"] == hashlib.sha256(body).hexdigest()
        chunks = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 100000]), body[i:i + 100000])
                          for i in range(0, len(body), 100000)) + b"0\r\n\r\n"
        c.send(f"POST /echo HTTP/1.1\r\nHost: {tls_route}\r\nTransfer-Encoding: chunked\r\n\r\n".encode() + chunks)
        r = c.read_response()
        assert r.status == 200 and r.json()["body_sha256"] == hashlib.sha256(body).hexdigest()


def test_an_answer_before_the_body_leaves_the_client_connection_usable(h2_router, tls_app, tls_route):
    """The backend answers without taking the body: the upload fills its window and pauses the client, and
    the end of the exchange must undo that pause (the rest of the body is read and dropped)."""
    body = b"z" * (4 * 1024 * 1024)
    with Client(h2_router.port) as c:
        sender = threading.Thread(target=c.send, args=(
            f"POST /early HTTP/1.1\r\nHost: {tls_route}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body,))
        sender.start()
        r = c.read_response()
        assert r.status == 200 and r.body == b"early"
        sender.join(20)
        assert not sender.is_alive()                 # the router read the whole upload
        assert c.request("GET", "/echo?cl", tls_route).status == 200


def test_a_slow_client_stops_the_backend_by_flow_control(h2_router, tls_app, tls_route):
    total = 32 * 1024 * 1024
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * 1024)
    sock.settimeout(10)
    sock.connect(("127.0.0.1", h2_router.port))
    try:
        sock.sendall(f"GET /big?n={total} HTTP/1.1\r\nHost: {tls_route}\r\n\r\n".encode())
        first = sock.recv(4096)
        assert first.startswith(b"HTTP/1.1 200") and b"\r\n\r\n" in first
        got = len(first.partition(b"\r\n\r\n")[2])
        # The client reads nothing more: the backend must stall well short of the body (window not reopened).
        stalled = wait_for(lambda: _steady(tls_app, "/big"), 20, 0.1, "backend sending stalls")
        assert stalled < total // 4, stalled
        while got < total:
            chunk = sock.recv(1 << 20)
            assert chunk, f"closed after {got} bytes"
            got += len(chunk)
        assert got == total and tls_app.sent["/big"] == total
    finally:
        sock.close()


def _steady(app: H2Backend, path: str) -> int | None:
    first = app.sent.get(path, 0)
    time.sleep(0.5)
    second = app.sent.get(path, 0)
    return second if second and second == first else None


def test_a_stream_reset_before_the_head_is_a_502(h2_router, tls_route):
    r = get(h2_router.port, tls_route, "/reset")
    assert r.status == 502, (r.status, r.body)
    assert r.header("X-Cf-Routererror").startswith("endpoint_failure")
    assert "internal_error" in r.header("X-Cf-Routererror").lower()
    assert get(h2_router.port, tls_route).status == 200       # the connection survives a stream reset
    r = get(h2_router.port, tls_route, "/switch")
    assert r.status == 502 and "malformed" in r.header("X-Cf-Routererror"), (r.status, r.headers)


def test_a_pooled_connection_closed_under_a_get_is_retried_on_a_new_one(h2_router, tls_app, tls_route):
    assert get(h2_router.port, tls_route).status == 200          # the connection has carried a stream
    r = get(h2_router.port, tls_route, "/drop-once")
    assert r.status == 200 and r.json()["path"] == "/drop-once", (r.status, r.body)


def test_endpoint_timeout_cancels_the_stream_and_keeps_the_connection(h2_router, tls_app, tls_route):
    before = tls_app.connections
    r = get(h2_router.port, tls_route, "/slow?s=6")
    assert r.status == 502 and "timeout awaiting response headers" in r.header("X-Cf-Routererror"), r.headers
    assert get(h2_router.port, tls_route).status == 200
    assert tls_app.connections == before      # the stream was cancelled, not the connection


def test_goaway_lets_the_open_stream_finish_and_new_ones_use_a_new_connection(h2_router, ca):
    app = H2Backend("goaway", tls=h2_server_context(ca, SAN)).start()
    try:
        host = unique_host("h2goaway")
        h2_router.register(host, 1, tls_port=app.port, san=SAN, protocol="http2")
        first: list = []
        t = threading.Thread(target=lambda: first.append(get(h2_router.port, host, "/goaway?s=0.5")))
        t.start()
        wait_for(lambda: app.requests or None, 10, 0.02, "the GOAWAY request arrives")
        time.sleep(0.1)
        r = get(h2_router.port, host)
        t.join(20)
        assert first and first[0].status == 200 and first[0].json()["conn"] == 1
        assert r.status == 200 and r.json()["conn"] == 2, r.body
    finally:
        app.stop()


def test_plaintext_http2_endpoint_speaks_http11_unless_h2c_is_on(router, h2_router, backend_factory):
    h1 = backend_factory("h1-registered-http2")
    host = unique_host("h2plain")
    router.register(host, h1.port, protocol="http2")
    r = get(router.port, host)
    assert r.status == 200 and r.json()["name"] == "h1-registered-http2"   # as gorouter: HTTP/1.1
    app = H2Backend("h2c").start()
    try:
        host2 = unique_host("h2c")
        h2_router.register(host2, app.port, protocol="http2")
        r = get(h2_router.port, host2, "/echo?cl")
        assert r.status == 200 and r.json()["scheme"] == "http" and r.json()["name"] == "h2c"
    finally:
        app.stop()


def test_tls_endpoint_answering_alpn_http11_gets_http11(h2_router, ca):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert(SAN).configure_cert(ctx)
    ctx.set_alpn_protocols(["http/1.1"])
    app = Backend("alpn-h1", tls=ctx).start()
    try:
        host = unique_host("h2alpn")
        h2_router.register(host, 1, tls_port=app.port, san=SAN, protocol="http2")
        assert get(h2_router.port, host).json()["name"] == "alpn-h1"
        assert get(h2_router.port, host).json()["conn"] == 1     # pooled as an HTTP/1.1 connection
    finally:
        app.stop()


def test_websocket_to_an_http2_endpoint_goes_over_http11(h2_router):
    ws = WsBackend("ws-h2").start()
    try:
        host = unique_host("h2ws")
        h2_router.register(host, ws.port, protocol="http2")
        with Client(h2_router.port) as c:
            c.send(f"GET /raw HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
            assert c.read_response(skip_interim=False).status == 101
    finally:
        ws.stop()


@pytest.mark.parametrize("tls", [False, True], ids=["h2c", "tls"])
def test_a_real_grpcio_server_behind_the_router(h2_router, ca, tls):
    """grpcio app registered protocol http2 (h2c with backends.enable_h2c, or TLS); a grpcio client on the
    router's plain port: the reply, an error status with its details and trailing metadata all come through."""
    from concurrent import futures

    import grpc

    def say(request: bytes, context) -> bytes:
        context.set_trailing_metadata((("x-trailing", "kept"),))
        if request == b"missing":
            context.abort(grpc.StatusCode.NOT_FOUND, "no such thing")
        return b"echo: " + request

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
        "portico.test.Echo", {"Say": grpc.unary_unary_rpc_method_handler(say)}),))
    if tls:
        cert = ca.issue_cert(SAN)
        creds = grpc.ssl_server_credentials([(cert.private_key_pem.bytes(), cert.cert_chain_pems[0].bytes())])
        port = server.add_secure_port("127.0.0.1:0", creds)
    else:
        port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        host = unique_host("grpc")
        if tls:
            h2_router.register(host, 1, tls_port=port, san=SAN, protocol="http2")
        else:
            h2_router.register(host, port, protocol="http2")
        with grpc.insecure_channel(f"127.0.0.1:{h2_router.port}", options=[("grpc.default_authority", host)]) as ch:
            call = ch.unary_unary("/portico.test.Echo/Say")
            reply, outcome = call.with_call(b"hi", timeout=10)
            assert reply == b"echo: hi"
            assert ("x-trailing", "kept") in tuple(outcome.trailing_metadata())
            with pytest.raises(grpc.RpcError) as err:
                call(b"missing", timeout=10)
            assert err.value.code() == grpc.StatusCode.NOT_FOUND and err.value.details() == "no such thing"
    finally:
        server.stop(0)
