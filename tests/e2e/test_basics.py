"""Issue 2: the data plane basics through real sockets: routing, errors, status, forwarded headers, pools,
streaming, balancing, retries, NATS messages, health checks, wildcard and context-path routes."""

from __future__ import annotations

import hashlib
import re
import time
import uuid

import pytest
from support import (
    IMPLEMENTATIONS,
    Client,
    build_request,
    dead_port,
    get,
    implementation_env,
    nats_publish,
    unique_host,
)

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


@pytest.fixture(scope="module", params=IMPLEMENTATIONS)
def router(request, router_factory):
    """This module's router, once compiled and once pure Python: the proxy basics hold for both."""
    return router_factory(env=implementation_env(request.param), backends={"max_attempts": 3})


def test_router_runs_the_implementation_asked_for(router, request):
    implementation = router.varz()["implementation"]
    assert implementation["implementation"] == request.node.callspec.params["router"]
    assert (implementation["compiled_modules"] != []) == (implementation["implementation"] == "compiled")
    assert "implementation: " in router.output()


def hdrs(resp_json) -> dict:
    """Backend-seen request headers, lower-cased names; repeated names joined."""
    out: dict = {}
    for k, v in resp_json["headers"]:
        out.setdefault(k.lower(), []).append(v)
    return {k: ", ".join(v) for k, v in out.items()}


def test_registered_route_reaches_app(router, backend):
    host = unique_host()
    router.register(host, backend.port)
    r = get(router.port, host, "/hello?x=1")
    assert r.status == 200
    body = r.json()
    assert body["name"] == "main"
    assert body["path"] == "/hello?x=1"
    assert body["method"] == "GET"


def test_unknown_route_404(router):
    host = unique_host("nope")
    r = get(router.port, host, "/")
    assert r.status == 404
    assert r.header("X-Cf-Routererror") == "unknown_route"
    assert r.body == f"404 Not Found: Requested route ('{host}') does not exist.\n".encode()
    assert r.header("Cache-Control") == "no-cache, no-store"
    assert r.header("X-Content-Type-Options") == "nosniff"
    assert r.header("Content-Type").startswith("text/plain")


def test_unknown_route_with_port_in_host(router):
    host = unique_host("nope")
    r = get(router.port, f"{host}:8080", "/")
    assert r.status == 404
    assert r.body == f"404 Not Found: Requested route ('{host}:8080') does not exist.\n".encode()   # r.Host


def test_empty_and_missing_host_400(router):
    for host in ("", None, "127.0.0.1"):
        r = get(router.port, host, "/")
        assert r.status == 400, host
        assert r.header("X-Cf-Routererror") == "empty_host"
        assert r.header("Cache-Control") == "public,max-age=2"
        assert r.body == b"400 Bad Request: Request had empty Host header\n"


def test_routes_json_shape_and_auth(router, backend):
    host = unique_host()
    router.register(host, backend.port, app="app-guid-1", instance_id="iid-1", index=0, tags={"component": "x"})
    status, headers, _ = router.routes(auth=False)
    assert status == 401
    assert "Basic" in headers.get("WWW-Authenticate", "")
    table = router.routes_json()
    entry = table[host][0]
    assert entry["address"] == backend.address
    assert entry["tls"] is False
    assert entry["protocol"] == "http1"
    assert entry["ttl"] == 120
    assert entry["tags"] == {"component": "x"}
    assert entry["private_instance_id"] == "iid-1"
    assert entry["availability_zone"] == ""
    assert "route_service_url" not in entry


def test_health(router):
    status, body = router.health()
    assert status == 200
    assert body == b"ok\n"


def test_older_status_layout(router_factory, backend):
    r = router_factory(_older_status=True)
    host = unique_host()
    assert r.routes_port is None
    r.register(host, backend.port)  # waits via /routes on status.port with auth
    assert r.routes(auth=False)[0] == 401
    assert r.health()[0] == 200
    assert get(r.port, host).status == 200


def test_forwarded_headers(router, backend):
    host = unique_host()
    router.register(host, backend.port, app="guid-abc", instance_id="inst-1", index=3)
    r = get(router.port, host, "/h", headers=[
        ("X-Forwarded-For", "10.0.0.1"), ("X-CF-APP-INSTANCE", ""), ("X-Vcap-Request-Id", "client-chosen"),
        ("X-CF-ApplicationID", "spoofed"), ("X-Request-Start", "12345")])
    seen = hdrs(r.json())
    assert seen["x-forwarded-for"] == "10.0.0.1, 127.0.0.1"
    assert seen["x-forwarded-proto"] == "http"
    assert seen["x-request-start"] == "12345"
    assert UUID_RE.match(seen["x-vcap-request-id"]), seen["x-vcap-request-id"]
    assert r.header("X-Vcap-Request-Id") == seen["x-vcap-request-id"]
    assert seen["x-cf-applicationid"] == "guid-abc"
    assert seen["x-cf-instanceindex"] == "3"
    assert seen["x-cf-instanceid"] == "inst-1"
    assert "x-cf-app-instance" not in seen

    bare = unique_host()  # no app, no index: both headers still sent, empty (as gorouter)
    router.register(bare, backend.port)
    seen_bare = hdrs(get(router.port, bare, "/h", headers=[("X-CF-ApplicationID", "spoofed")]).json())
    assert seen_bare["x-cf-applicationid"] == "" and seen_bare["x-cf-instanceindex"] == ""
    assert seen_bare["x-cf-instanceid"] == f"127.0.0.1:{backend.port}"

    r2 = get(router.port, host, "/h", headers=[("X-Forwarded-Proto", "https")])
    seen2 = hdrs(r2.json())
    assert seen2["x-forwarded-proto"] == "https"
    assert seen2["x-forwarded-for"] == "127.0.0.1"
    start = int(seen2["x-request-start"])
    assert abs(start - time.time() * 1000) < 60_000
    assert seen2["x-vcap-request-id"] != seen["x-vcap-request-id"]


def test_instance_id_falls_back_to_address(router, backend):
    host = unique_host()
    router.register(host, backend.port)
    seen = hdrs(get(router.port, host).json())
    assert seen["x-cf-instanceid"] == backend.address


def test_backend_request_id_kept(router, backend):
    host = unique_host()
    router.register(host, backend.port)
    r = get(router.port, host, "/vcapid")
    assert r.header_all("X-Vcap-Request-Id") == ["from-backend"]


def test_hop_by_hop_dropped_both_ways(router, backend):
    host = unique_host()
    router.register(host, backend.port)
    r = get(router.port, host, "/hop", headers=[
        ("Connection", "X-Secret-Hop, keep-alive"), ("X-Secret-Hop", "1"), ("Keep-Alive", "timeout=5"),
        ("TE", "trailers"), ("Trailer", "X-T"), ("Proxy-Connection", "keep-alive"),
        ("Proxy-Authorization", "Basic abc"), ("X-Keep", "me")])
    seen = hdrs(r.json())
    for name in ("x-secret-hop", "keep-alive", "trailer", "proxy-connection", "proxy-authorization"):
        assert name not in seen, name
    assert seen["te"] == "trailers"     # the one TE value passed on, as Go's ReverseProxy does (gRPC needs it)
    assert seen["x-keep"] == "me"
    names = {k.lower() for k, _ in r.headers}
    for name in ("x-private", "keep-alive", "proxy-authenticate", "trailer"):
        assert name not in names, name
    assert r.header("X-Public") == "yes"


def test_keep_alive_reuses_client_and_backend_connection(router, backend_factory):
    b = backend_factory("ka")
    host = unique_host()
    router.register(host, b.port)
    before = router.varz()
    with Client(router.port) as c:
        first = c.request("GET", "/1", host).json()
        second = c.request("GET", "/2", host).json()
        third = c.request("GET", "/3", host).json()
    assert first["conn"] == second["conn"] == third["conn"]
    assert b.connections == 1
    after = router.varz()  # the pool's work is visible to operators
    assert after["backend_connects"] - before["backend_connects"] == 1
    assert after["backend_reuses"] - before["backend_reuses"] == 2


def test_pipelined_requests_answered_in_order(router, backend):
    host = unique_host()
    router.register(host, backend.port)
    with Client(router.port) as c:
        c.send(build_request("GET", "/slow?s=0.3", host) + build_request("GET", "/p2", host)
               + build_request("GET", "/p3", host))
        paths = [c.read_response().json()["path"] for _ in range(3)]
    assert paths == ["/slow?s=0.3", "/p2", "/p3"]


def test_large_response_streams_without_buffering(router, backend):
    host = unique_host()
    router.register(host, backend.port)
    get(router.port, host, "/big?mb=1")  # warm up
    before = router.rss_kb()
    size = 50 * 1024 * 1024
    peak = before
    with Client(router.port) as c:
        c.send(build_request("GET", "/big?mb=50", host))
        head = c.read_response("HEAD")  # read only the head
        assert head.status == 200
        assert int(head.header("Content-Length")) == size
        got = 0
        while got < size:
            data = c.file.read(min(4 << 20, size - got))
            if not data:
                break
            got += len(data)
            peak = max(peak, router.rss_kb())
            time.sleep(0.01)  # a slow reader: the router must not buffer the rest
    assert got == size
    assert peak - before < 20 * 1024, (before, peak)


def test_uploads_stream_content_length_and_chunked(router, backend):
    host = unique_host()
    router.register(host, backend.port)
    payload = bytes(range(256)) * (20 * 4096)  # 20 MiB
    digest = hashlib.sha256(payload).hexdigest()
    r = get(router.port, host, "/upload", method="POST", body=payload)
    assert r.status == 200
    assert r.json()["body_len"] == len(payload)
    assert r.json()["body_sha256"] == digest

    with Client(router.port) as c:
        c.send(build_request("POST", "/upload", host, [("Transfer-Encoding", "chunked")]))
        step = 1 << 20
        for i in range(0, len(payload), step):
            part = payload[i:i + step]
            c.send(b"%x\r\n%s\r\n" % (len(part), part))
        c.send(b"0\r\n\r\n")
        r = c.read_response()
    assert r.status == 200
    assert r.json()["body_len"] == len(payload)
    assert r.json()["body_sha256"] == digest
    seen = hdrs(r.json())
    assert "chunked" in seen.get("transfer-encoding", "")


def test_chunked_response_streams(router, backend):
    host = unique_host()
    router.register(host, backend.port)
    r = get(router.port, host, "/chunked?n=20")
    assert r.status == 200
    assert r.body == b"".join(b"chunk-%d;" % i for i in range(20))


def test_round_robin_two_endpoints(router, backend_factory):
    a, b = backend_factory("rr-a"), backend_factory("rr-b")
    host = unique_host()
    router.register(host, a.port)
    router.register(host, b.port)
    names = [get(router.port, host).json()["name"] for _ in range(10)]
    assert names.count("rr-a") == 5 and names.count("rr-b") == 5
    assert all(names[i] != names[i + 1] for i in range(9))


def test_retry_on_connect_failure_and_bench(router, backend_factory):
    good = backend_factory("good")
    bad = dead_port()
    host = unique_host()
    router.register(host, bad)
    router.register(host, good.port)
    retries_before = router.varz()["backend_retries"]
    for _ in range(8):
        r = get(router.port, host)
        assert r.status == 200
        assert r.json()["name"] == "good"
    # the dead one is benched after its first failure: at most one request ever retried
    assert router.varz()["backend_retries"] - retries_before <= 1
    lines = router.access_lines(host)
    assert lines and all(f'"{good.address}"' in line for line in lines)


def test_all_dead_502(router):
    host = unique_host()
    router.register(host, dead_port())
    router.register(host, dead_port())
    r = get(router.port, host)
    assert r.status == 502
    assert r.header("X-Cf-Routererror").startswith("endpoint_failure (")
    assert r.body == b"502 Bad Gateway: Registered endpoint failed to handle the request.\n"


def test_unregister_removes(router, backend):
    host = unique_host()
    router.register(host, backend.port)
    assert get(router.port, host).status == 200
    router.unregister(host, backend.port)
    assert get(router.port, host).status == 404


def test_ttl_pruning(router_factory, backend):
    r = router_factory(prune_stale_droplets_interval="1s", droplet_stale_threshold="2s")
    host = unique_host()
    r.register(host, backend.port)
    assert get(r.port, host).status == 200
    r.wait_route(host, backend.address, present=False, timeout=8)
    assert get(r.port, host).status == 404


def test_malformed_nats_messages_do_not_break_router(router, backend):
    nats_publish(router.nats_url, "router.register", b"{not json")
    nats_publish(router.nats_url, "router.register", {"host": "127.0.0.1", "port": "eighty", "uris": ["x.y"]})
    nats_publish(router.nats_url, "router.register", {"host": "127.0.0.1", "port": 1, "uris": ["a.b"],
                                                      "private_instance_index": 3})
    nats_publish(router.nats_url, "router.unregister", b"\xff\xfe")
    host = unique_host()
    router.register(host, backend.port)
    assert get(router.port, host).status == 200
    assert router.health()[0] == 200


def test_healthcheck_user_agent(router):
    r = get(router.port, unique_host("any"), "/", headers=[("User-Agent", "HTTP-Monitor/1.1")])
    assert r.status == 200
    assert r.body == b"ok\n"


def test_wildcard_routing(router, backend_factory):
    wild, exact = backend_factory("wild"), backend_factory("exact")
    domain = f"w{uuid.uuid4().hex[:8]}.test"
    router.register(f"*.{domain}", wild.port)
    router.register(f"exact.{domain}", exact.port)
    assert get(router.port, f"foo.{domain}").json()["name"] == "wild"
    assert get(router.port, f"a.b.{domain}").json()["name"] == "wild"
    assert get(router.port, f"exact.{domain}").json()["name"] == "exact"
    assert get(router.port, domain).status == 404


def test_context_path_routing(router, backend_factory):
    root, api = backend_factory("root"), backend_factory("api")
    host = unique_host()
    router.register(host, root.port)
    router.register(f"{host}/api", api.port)
    assert get(router.port, host, "/api").json()["name"] == "api"
    assert get(router.port, host, "/api/v1/x?q=1").json()["name"] == "api"
    assert get(router.port, host, "/API/v1").json()["name"] == "api"
    assert get(router.port, host, "/apix").json()["name"] == "root"
    assert get(router.port, host, "/").json()["name"] == "root"
