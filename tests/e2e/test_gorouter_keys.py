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
