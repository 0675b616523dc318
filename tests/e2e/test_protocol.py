"""Issue 3: HTTP/1.1 framing and protocol edge cases, limits, timeouts, instance targeting, balancing."""

from __future__ import annotations

import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from polling import wait_for
from support import Client, build_request, get, unique_host


@pytest.fixture(scope="module")
def prouter(router_factory):
    return router_factory(endpoint_timeout="1s", endpoint_dial_timeout="1s", read_header_timeout="1s",
                          frontend_idle_timeout="2s", max_request_header_bytes=16384,
                          backends={"max_attempts": 3})


@pytest.fixture(scope="module")
def host(prouter, backend):
    h = unique_host("proto")
    prouter.register(h, backend.port)
    return h


def test_head_204_304_no_body_and_connection_reusable(prouter, host):
    with Client(prouter.port) as c:
        r = c.request("HEAD", "/echo", host)
        assert r.status == 200 and r.body == b""
        assert int(r.header("Content-Length")) > 0
        r = c.request("GET", "/status/204", host)
        assert r.status == 204 and r.header("Content-Length") in (None, "0")
        r = c.request("GET", "/status/304", host)
        assert r.status == 304 and r.header("ETag") == '"e1"'
        r = c.request("HEAD", "/status/200", host)
        assert r.status == 200
        r = c.request("GET", "/after", host)
        assert r.status == 200 and r.json()["path"] == "/after"


def test_expect_100_continue(prouter, host):
    body = b"z" * 5000
    with Client(prouter.port) as c:
        c.send(build_request("POST", "/continue", host, [("Expect", "100-continue"),
                                                         ("Content-Length", str(len(body)))]))
        interim = c.read_response(skip_interim=False)
        assert interim.status == 100
        c.send(body)
        r = c.read_response()
    assert r.status == 200
    seen = {k.lower(): v for k, v in r.json()["headers"]}
    assert r.json()["body_len"] == len(body)
    assert seen.get("connection", "").lower() == "close"


def test_expect_100_continue_sends_one_connection_header(router_factory, backend):
    """With backend keep-alive off too, the backend sees exactly one `Connection: close`."""
    r = router_factory(disable_keep_alives=True)
    h = unique_host("continue")
    r.register(h, backend.port)
    with Client(r.port) as c:
        c.send(build_request("POST", "/continue", h, [("Expect", "100-continue"), ("Content-Length", "3")]))
        assert c.read_response(skip_interim=False).status == 100
        c.send(b"abc")
        resp = c.read_response()
    assert resp.status == 200
    assert [v.lower() for k, v in resp.json()["headers"] if k.lower() == "connection"] == ["close"]


def test_expect_other_417(prouter, host):
    r = get(prouter.port, host, "/", headers=[("Expect", "something-else")])
    assert r.status == 417


def test_close_delimited_response(prouter, host):
    with Client(prouter.port) as c:
        r = c.request("GET", "/close", host)
        assert r.status == 200 and r.complete
        assert r.body == b"part-0;part-1;part-2;"
        # the client connection survives when the router re-framed the body
        if r.header("Transfer-Encoding"):
            assert c.request("GET", "/again", host).status == 200


def test_http10_client(prouter, host):
    with Client(prouter.port) as c:
        c.send(f"GET /ten HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
        r = c.read_response()
        assert r.status == 200
        assert r.json()["version"] == "HTTP/1.1"
        assert r.json()["path"] == "/ten"
        assert c.is_closed()


def _expect_rejected(port: int, raw: bytes, status: int) -> None:
    with Client(port) as c:
        c.send(raw)
        r = c.read_response()
        assert r.status == status, (raw[:80], r.status, r.body)
        assert c.is_closed()


def test_smuggling_cl_and_te(prouter, host, backend):
    before = len(backend.requests)
    raw = (f"POST /s HTTP/1.1\r\nHost: {host}\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
           "0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n").encode()
    _expect_rejected(prouter.port, raw, 400)
    assert not [r for r in backend.requests[before:] if r["path"] == "/smuggled"]


def test_smuggling_two_content_lengths(prouter, host):
    raw = f"POST /s HTTP/1.1\r\nHost: {host}\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde".encode()
    _expect_rejected(prouter.port, raw, 400)


def test_smuggling_chunked_not_last(prouter, host):
    raw = (f"POST /s HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"
           "0\r\n\r\n").encode()
    _expect_rejected(prouter.port, raw, 400)


def test_obs_fold_header(prouter, host):
    raw = f"GET / HTTP/1.1\r\nHost: {host}\r\nX-Folded: a\r\n  b\r\n\r\n".encode()
    _expect_rejected(prouter.port, raw, 400)


def test_too_many_headers_431(prouter, host):
    headers = [(f"X-H{i}", "v") for i in range(150)]
    r = get(prouter.port, host, "/", headers=headers)
    assert r.status == 431
    assert r.header("X-Cf-Routererror") == "max-request-size-exceeded"


def test_header_bytes_431(prouter, host):
    r = get(prouter.port, host, "/", headers=[("X-Big", "a" * 20000)])
    assert r.status == 431


def test_long_uri_414(prouter, host):
    r = get(prouter.port, host, "/" + "u" * 10000)
    assert r.status == 414


def test_http2_request_line_505(prouter, host):
    with Client(prouter.port) as c:
        c.send(f"GET / HTTP/2.0\r\nHost: {host}\r\n\r\n".encode())
        r = c.read_response()
    assert r.status == 505


def test_http_1_2_is_400(prouter, host):
    with Client(prouter.port) as c:
        c.send(f"GET / HTTP/1.2\r\nHost: {host}\r\n\r\n".encode())
        r = c.read_response()
    assert r.status == 400


def test_endpoint_timeout_502(prouter, backend_factory):
    b = backend_factory("hanger")
    h = unique_host("hang")
    prouter.register(h, b.port)
    t0 = time.monotonic()
    r = get(prouter.port, h, "/hang")
    assert r.status == 502
    assert r.header("X-Cf-Routererror").startswith("endpoint_failure (")
    assert time.monotonic() - t0 < 5


def test_endpoint_dial_timeout(prouter):
    # A listener with a full accept queue drops further SYNs: connecting hangs until the dial timeout.
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(0)
    port = lsock.getsockname()[1]
    fillers = []
    try:
        for _ in range(3):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            fillers.append(s)
        time.sleep(0.1)
        h = unique_host("dial")
        prouter.register(h, port)
        t0 = time.monotonic()
        r = get(prouter.port, h, "/", )
        elapsed = time.monotonic() - t0
        assert r.status == 502
        assert "timeout" in r.header("X-Cf-Routererror")
        assert elapsed < 8
    finally:
        for s in fillers:
            s.close()
        lsock.close()


def test_request_header_timeout(prouter, host):
    with Client(prouter.port) as c:
        c.send(f"GET / HTTP/1.1\r\nHost: {host}\r\n".encode())  # never finishes the head
        t0 = time.monotonic()
        c.sock.settimeout(6)
        data = c.sock.recv(65536)
        assert data == b"" or data.startswith(b"HTTP/1.1 408")
        assert c.is_closed(6)
        assert time.monotonic() - t0 < 6


def test_frontend_idle_timeout(prouter, host):
    with Client(prouter.port) as c:
        assert c.request("GET", "/", host).status == 200
        assert c.is_closed(6)


def test_backend_dies_mid_response(prouter, host):
    with Client(prouter.port) as c:
        r = c.request("GET", "/die", host)
        assert r.status == 200
        assert not r.complete
        assert len(r.body) < 100000


GUID = "6f1e9a2c-3b4d-4e5f-8a9b-0c1d2e3f4a5b"


def _app_instances(prouter, backend_factory):
    a, b = backend_factory("inst0"), backend_factory("inst1")
    h = unique_host("inst")
    prouter.register(h, a.port, app=GUID, index=0, instance_id="i-0")
    prouter.register(h, b.port, app=GUID, index=1, instance_id="i-1")
    return h


def test_x_cf_app_instance(prouter, backend_factory):
    h = _app_instances(prouter, backend_factory)
    for _ in range(4):
        r = get(prouter.port, h, "/", headers=[("X-CF-APP-INSTANCE", f"{GUID}:1")])
        assert r.json()["name"] == "inst1"
        assert "x-cf-app-instance" not in {k.lower() for k, _ in r.json()["headers"]}
    r = get(prouter.port, h, "/", headers=[("X-CF-APP-INSTANCE", f"{GUID}:7")])
    assert r.status == 400
    assert r.header("X-Cf-Routererror") == "unknown_route"
    assert r.body == (f"400 Bad Request: Requested instance ('7') with guid ('{GUID}') does not exist for route "
                      f"('{h}')\n").encode()


@pytest.mark.parametrize("value", [GUID, f"{GUID}:", f"{GUID}:x", f"{GUID.upper()}:1", "guid-9:1",
                                   f"{GUID}:1:2", f"{GUID[:-1]}:1", f"{GUID}x:1"])
def test_malformed_x_cf_app_instance_is_400(prouter, host, value):
    r = get(prouter.port, host, "/", headers=[("X-CF-APP-INSTANCE", value)])
    assert r.status == 400
    assert r.header("X-Cf-Routererror") == "invalid_cf_app_instance_header"
    assert r.header("Cache-Control") == "no-cache, no-store"
    assert r.body == b"400 Bad Request: Invalid X-CF-App-Instance Header\n"


def test_http10_request_is_answered_with_an_http10_status_line(prouter, host):
    with Client(prouter.port) as c:
        c.send(f"GET /echo HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
        r = c.read_response()
    assert (r.version, r.status) == ("HTTP/1.0", 200)
    with Client(prouter.port) as c:  # a router error too
        c.send(b"GET / HTTP/1.0\r\nHost: nowhere.e2e.test\r\n\r\n")
        r = c.read_response()
    assert (r.version, r.status) == ("HTTP/1.0", 404)
    with Client(prouter.port) as c:  # and HTTP/1.1 stays HTTP/1.1
        r = c.request("GET", "/echo", host)
    assert (r.version, r.status) == ("HTTP/1.1", 200)


def _arrived(backends, path: str) -> bool:
    return any(r["path"] == path for b in backends for r in list(b.requests))


def _least_connection_check(port, h, backends):
    with ThreadPoolExecutor(1) as pool:
        slow = pool.submit(get, port, h, "/slow?s=1.5")
        wait_for(lambda: _arrived(backends, "/slow"), 5, message="the slow request in flight")
        quick = [get(port, h, "/").json()["name"] for _ in range(4)]
        busy = slow.result().json()["name"]
    assert busy not in quick
    assert len(set(quick)) == 1


def test_least_connection_per_route(router_factory, backend_factory):
    r = router_factory()   # not prouter: its 1 s endpoint_timeout can cut the 1.5 s request short
    a, b = backend_factory("lc-a"), backend_factory("lc-b")
    h = unique_host("lc")
    r.register(h, a.port, lb="least-connection")
    r.register(h, b.port, lb="least-connection")
    _least_connection_check(r.port, h, (a, b))


def test_least_connection_global(router_factory, backend_factory):
    r = router_factory(balancing_algorithm="least-connection")
    a, b = backend_factory("lcg-a"), backend_factory("lcg-b")
    h = unique_host("lcg")
    r.register(h, a.port)
    r.register(h, b.port)
    _least_connection_check(r.port, h, (a, b))


def test_max_conns_503(router_factory, backend_factory):
    r = router_factory(backends={"max_conns": 1})
    b = backend_factory("full")
    h = unique_host("full")
    r.register(h, b.port)
    with ThreadPoolExecutor(1) as pool:
        slow = pool.submit(get, r.port, h, "/slow?s=1.2")
        wait_for(lambda: _arrived((b,), "/slow"), 5, message="the slow request in flight")
        busy = get(r.port, h, "/")
        assert slow.result().status == 200
    assert busy.status == 503
    assert get(r.port, h, "/").status == 200


def test_stale_pooled_connection_retried(prouter, backend_factory):
    b = backend_factory("oneshot")
    h = unique_host("stale")
    prouter.register(h, b.port)
    with Client(prouter.port) as c:
        assert c.request("GET", "/oneshot", h).body == b"oneshot"
        time.sleep(0.4)  # the backend has closed the pooled connection meanwhile
        r = c.request("GET", "/next", h)
    assert r.status == 200 and r.json()["path"] == "/next"


def test_malformed_backend_response_502(prouter, backend):
    h = unique_host("badframe")
    prouter.register(h, backend.port)
    r = get(prouter.port, h, "/badframing")
    assert r.status == 502
    assert r.header("X-Cf-Routererror").startswith("endpoint_failure (")


def test_local_error_with_request_body_keeps_connection_in_sync(prouter, host):
    with Client(prouter.port) as c:
        r = c.request("POST", "/", unique_host("nope"), body=b"x" * 3000)
        assert r.status == 404
        r = c.request("POST", "/", unique_host("nope"), [("Transfer-Encoding", "chunked")],
                      body=b"5\r\nhello\r\n0\r\n\r\n")
        assert r.status == 404
        r = c.request("GET", "/in-sync", host)
        assert r.status == 200 and r.json()["path"] == "/in-sync"


def test_client_connection_close(prouter, host):
    with Client(prouter.port) as c:
        r = c.request("GET", "/bye", host, [("Connection", "close")])
        assert r.status == 200
        assert r.header("Connection", "").lower() == "close"
        assert c.is_closed()


def test_pipelined_post_bodies(prouter, host):
    with Client(prouter.port) as c:
        c.send(build_request("POST", "/a", host, body=b"1" * 10) + build_request("POST", "/b", host, body=b"2" * 20)
               + build_request("GET", "/c", host))
        got = [c.read_response().json() for _ in range(3)]
    assert [(g["path"], g["body_len"]) for g in got] == [("/a", 10), ("/b", 20), ("/c", 0)]


def test_pipelined_then_bad_request_answered_in_order(prouter, host):
    with Client(prouter.port) as c:
        c.send(build_request("GET", "/slow?s=0.3", host) + b"GARBAGE\r\n\r\n")
        first = c.read_response()
        second = c.read_response()
        assert first.status == 200 and first.json()["path"] == "/slow?s=0.3"
        assert second.status == 400
        assert c.is_closed()


def test_chunked_request_with_trailers(prouter, host):
    with Client(prouter.port) as c:
        c.send(build_request("POST", "/t", host, [("Transfer-Encoding", "chunked")])
               + b"3\r\nabc\r\n0\r\nX-Trailer: v\r\n\r\n")
        r = c.read_response()
        assert r.status == 200 and r.json()["body_len"] == 3
        assert c.request("GET", "/after-trailer", host).status == 200


def test_multiple_x_forwarded_for_headers(prouter, host):
    r = get(prouter.port, host, "/", headers=[("X-Forwarded-For", "1.1.1.1"), ("X-Forwarded-For", "2.2.2.2")])
    seen = [v for k, v in r.json()["headers"] if k.lower() == "x-forwarded-for"]
    assert seen == ["1.1.1.1, 2.2.2.2, 127.0.0.1"]


def test_head_of_chunked_response(prouter, host):
    with Client(prouter.port) as c:
        r = c.request("HEAD", "/chunked?n=3", host)
        assert r.status == 200 and r.body == b""
        assert c.request("GET", "/after-head", host).json()["path"] == "/after-head"


def test_http10_client_chunked_backend(prouter, host):
    with Client(prouter.port) as c:
        c.send(f"GET /chunked?n=3 HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
        r = c.read_response()
        assert r.status == 200
        assert r.header("Transfer-Encoding") is None
        assert r.body == b"chunk-0;chunk-1;chunk-2;"


def test_refused_upgrade_then_next_request(prouter, host):
    with Client(prouter.port) as c:
        r = c.request("GET", "/echo", host, [("Connection", "Upgrade"), ("Upgrade", "websocket")])
        assert r.status == 200 and r.header("X-Refused-Upgrade") == "yes"
        try:
            r2 = c.request("GET", "/after-refused", host)
        except ConnectionError:
            return  # closing after a refused upgrade is acceptable
        assert r2.status == 200 and r2.json()["path"] == "/after-refused"


def test_client_abort_releases_endpoint_slot(router_factory, backend_factory):
    r = router_factory(backends={"max_conns": 1}, endpoint_timeout="3s")
    b = backend_factory("abort")
    h = unique_host("abort")
    r.register(h, b.port)
    for path in ("/hang", "/slow?s=2", "/big?mb=20"):
        c = Client(r.port)
        c.send(build_request("GET", path, h))
        wait_for(lambda p=path: _arrived((b,), p.partition("?")[0]), 5, message=f"{path} at the backend")
        c.sock.close()
        c.close()
        # the router notices the abort and frees the only slot: the next request gets through (not a 503),
        # well before the 3 s endpoint_timeout could have freed it instead
        resp = wait_for(lambda: (x := get(r.port, h, "/")).status == 200 and x, 2, 0.1, f"the slot {path} held")
        assert resp.status == 200, (path, resp.status)
