"""Issue 11: gorouter keys that change what clients and apps see, each against a real router and backend."""

from __future__ import annotations

import pytest
from support import Client, build_request, get, unique_host


@pytest.fixture(scope="module")
def krouter(router_factory):
    return router_factory(
        sanitize_forwarded_proto=True,
        hop_by_hop_headers_to_filter=["X-Keep-Me"],
        keep_alive_100_continue_requests=True,
        http_rewrite={"responses": {
            "remove_headers": [{"name": "X-Public"}, {"name": "X-Vcap-Unused"}],
            "add_headers_if_not_present": [{"name": "X-Frame-Options", "value": "DENY"},
                                           {"name": "X-Public", "value": "rewritten"},
                                           {"name": "Content-Type", "value": "text/never"}]}})


@pytest.fixture(scope="module")
def khost(krouter, backend):
    h = unique_host("keys")
    krouter.register(h, backend.port)
    return h


def _seen(resp) -> dict:
    return {k.lower(): v for k, v in resp.json()["headers"]}


def test_http_rewrite_removes_then_adds_when_absent(krouter, khost):
    r = get(krouter.port, khost, "/hop")
    assert r.status == 200
    assert r.header("X-Public") == "rewritten"            # the app's value removed, then added as absent
    assert r.header("X-Frame-Options") == "DENY"
    assert r.header("Content-Type") == "application/json"  # the app set one: kept


def test_sanitize_forwarded_proto_overrides_the_client(krouter, khost):
    seen = _seen(get(krouter.port, khost, "/", headers=[("X-Forwarded-Proto", "https")]))
    assert seen["x-forwarded-proto"] == "http"


def test_force_forwarded_proto_https(router_factory, backend):
    r = router_factory(force_forwarded_proto_https=True)
    h = unique_host("force")
    r.register(h, backend.port)
    assert _seen(get(r.port, h, "/"))["x-forwarded-proto"] == "https"
    assert _seen(get(r.port, h, "/", headers=[("X-Forwarded-Proto", "gopher")]))["x-forwarded-proto"] == "https"


def test_hop_by_hop_headers_to_filter_keeps_named_headers(krouter, khost):
    seen = _seen(get(krouter.port, khost, "/", headers=[("Connection", "X-Keep-Me, X-Drop-Me"),
                                                         ("X-Keep-Me", "1"), ("X-Drop-Me", "2")]))
    assert seen.get("x-keep-me") == "1"
    assert "x-drop-me" not in seen


def test_keep_alive_100_continue_requests(krouter, khost):
    with Client(krouter.port) as c:
        c.send(build_request("POST", "/continue", khost, [("Expect", "100-continue"), ("Content-Length", "3")]))
        assert c.read_response(skip_interim=False).status == 100
        c.send(b"abc")
        r = c.read_response()
    assert r.status == 200
    assert "connection" not in _seen(r)                    # the backend connection stays reusable


def test_w3c_trace_context(router_factory, backend):
    r = router_factory(tracing={"enable_w3c": True, "w3c_tenant_id": "tenant1"})
    h = unique_host("w3c")
    r.register(h, backend.port)
    resp = get(r.port, h, "/new")
    seen = _seen(resp)
    rid = resp.header("X-Vcap-Request-Id").replace("-", "")
    assert seen["traceparent"] == f"00-{rid}-{rid[16:]}-01"     # a new trace: the request id, its low half
    assert seen["tracestate"] == f"tenant1@gorouter={rid[16:]}"

    incoming = [("traceparent", "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"),
                ("tracestate", "rojo=00f067aa0ba902b7,tenant1@gorouter=0000000000000001,congo=t61rcWkgMzE")]
    resp = get(r.port, h, "/continued", headers=incoming)
    seen = _seen(resp)
    version, trace, parent, flags = seen["traceparent"].split("-")
    assert (version, trace, flags) == ("00", "4bf92f3577b34da6a3ce929d0e0e4736", "01")
    assert parent != "00f067aa0ba902b7" and len(parent) == 16
    assert seen["tracestate"] == f"tenant1@gorouter={parent},rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"
    assert resp.header("X-Vcap-Request-Id") == "4bf92f35-77b3-4da6-a3ce-929d0e0e4736"   # the trace id, as UUID
    line = r.access_lines("/continued")[0]
    assert f'traceparent:"{seen["traceparent"]}"' in line and f'tracestate:"{seen["tracestate"]}"' in line


def _cookie(resp, name: str) -> list[str]:
    for value in resp.header_all("Set-Cookie"):
        if value.startswith(name + "="):
            return [p.strip() for p in value.split(";")]
    return []


def test_sticky_sessions_for_auth_negotiate(router_factory, backend_factory):
    r = router_factory(sticky_sessions_for_auth_negotiate=True, backends={"max_attempts": 1})
    a, b = backend_factory("neg-a"), backend_factory("neg-b")
    h = unique_host("negotiate")
    r.register(h, a.port, instance_id="neg-inst-a")
    r.register(h, b.port, instance_id="neg-inst-b")
    first = get(r.port, h, "/negotiate")
    inst = "neg-inst-a" if first.json()["name"] == "neg-a" else "neg-inst-b"
    vcap = _cookie(first, "__VCAP_ID__")
    assert vcap[0] == f"__VCAP_ID__={inst}"
    assert "Max-Age=60" in vcap and "SameSite=Strict" in vcap and "HttpOnly" in vcap
    pinned = [("Authorization", "Negotiate abc"), ("Cookie", f"__VCAP_ID__={inst}")]   # no session cookie
    assert {get(r.port, h, "/negotiate", headers=pinned).json()["name"] for _ in range(5)} == {first.json()["name"]}
    assert not _cookie(get(r.port, h, "/negotiate", headers=pinned), "__VCAP_ID__")  # already there: no new one
    r.unregister(h, (a if inst == "neg-inst-a" else b).port)
    gone = get(r.port, h, "/negotiate", headers=pinned)
    assert gone.status == 502                                 # that instance or none, as gorouter
    assert gone.header("X-Cf-Routererror") == "endpoint_failure (No endpoints available)"


def test_locally_optimistic_az_preference(router_factory, backend_factory):
    r = router_factory(zone="z1", balancing_algorithm_az_preference="locally-optimistic")
    near, far = backend_factory("az-near"), backend_factory("az-far")
    h = unique_host("az")
    r.register(h, near.port, az="z1")
    r.register(h, far.port, az="z2")
    assert {get(r.port, h, "/").json()["name"] for _ in range(6)} == {"az-near"}
    r.unregister(h, near.port)
    assert get(r.port, h, "/").json()["name"] == "az-far"


def test_empty_pool_timeout_keeps_the_route_answering_503(router_factory, backend):
    from support import wait_for

    r = router_factory(empty_pool_timeout="4s", prune_stale_droplets_interval="1s")
    h = unique_host("emptypool")
    r.register(h, backend.port)
    r.unregister(h, backend.port, wait=False)
    def empty() -> object:
        resp = get(r.port, h, "/")
        return resp if resp.status == 503 else None

    resp = wait_for(empty, timeout=10)                                 # the route stays, with no endpoints
    assert resp.header("X-Cf-Routererror") == "no_endpoints"
    assert resp.header("Cache-Control") == "public,max-age=2"
    assert resp.body == f"503 Service Unavailable: Requested route ('{h}') has no available endpoints.\n".encode()
    wait_for(lambda: get(r.port, h, "/").status == 404, timeout=20)   # then goes at a prune after the timeout


def test_pid_file(router_factory, tmp_path):
    pid_file = tmp_path / "gorouter.pid"
    r = router_factory(pid_file=str(pid_file))
    assert pid_file.read_text().strip() == str(r.pid)
    r.stop()
    assert not pid_file.exists()


def test_response_header_limits_and_unlimited_request_headers(router_factory, backend):
    r = router_factory(max_response_headers=3, max_request_headers=0)
    h = unique_host("limits")
    r.register(h, backend.port)
    assert get(r.port, h, "/status/204").status == 204              # ETag only: within the limit
    resp = get(r.port, h, "/hop")                                    # seven header lines from the app
    assert resp.status == 502
    assert resp.header("X-Cf-Routererror") == "endpoint_failure (Too many response headers)"
    many = [(f"X-N{i}", "v") for i in range(150)]                     # over Portico's default 100, no limit here
    assert get(r.port, h, "/", headers=many).status == 200


def test_trace_key_answers_router_and_backend(router_factory, backend):
    r = router_factory(trace_key="s3cret-trace")
    h = unique_host("trace")
    r.register(h, backend.port)
    traced = get(r.port, h, "/", headers=[("X-Vcap-Trace", "s3cret-trace")])
    assert traced.header("X-Vcap-Router") == "127.0.0.1"                  # the router's `ip`
    assert traced.header("X-Vcap-Backend") == traced.header("X-Cf-Routeendpoint") == backend.address
    for headers in ([], [("X-Vcap-Trace", "wrong")]):
        plain = get(r.port, h, "/", headers=headers)
        assert plain.header("X-Vcap-Router") is None and plain.header("X-Vcap-Backend") is None


def test_disable_http_leaves_only_the_tls_listener(router_factory, backend):
    import socket as socket_module
    import ssl

    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("*.nohttp.test")
    r = router_factory(enable_ssl=True, disable_http=True, tls_pem=[{
        "cert_chain": "".join(b.bytes().decode() for b in cert.cert_chain_pems),
        "private_key": cert.private_key_pem.bytes().decode()}])
    host = "app.nohttp.test"
    r.register(host, backend.port)
    with pytest.raises(ConnectionRefusedError):
        socket_module.create_connection(("127.0.0.1", r.port), timeout=5).close()
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    with Client(r.ssl_port, ssl_context=ctx, server_hostname=host) as c:
        assert c.request("GET", "/", host).status == 200


def test_http_rewrite_applies_to_router_answers_too(krouter):
    r = get(krouter.port, "nowhere.e2e.test", "/")
    assert r.status == 404 and r.header("X-Frame-Options") == "DENY"
    assert r.header("X-Public") == "rewritten"
    assert r.header("Content-Type") == "text/plain; charset=utf-8"      # present: not added again
