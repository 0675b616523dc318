"""TLS on both sides, the access log, zipkin headers, draining and stopping."""

from __future__ import annotations

import re
import signal
import ssl
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import trustme
from support import Backend, Client, get, unique_host, wait_for


@pytest.fixture(scope="module")
def ca():
    return trustme.CA()


@pytest.fixture(scope="module")
def tls_router(router_factory, ca):
    certs = []
    for name in ("alpha.tls.test", "beta.tls.test"):
        cert = ca.issue_cert(name, f"*.{name}")
        certs.append({"cert_chain": "".join(b.bytes().decode() for b in cert.cert_chain_pems),
                      "private_key": cert.private_key_pem.bytes().decode()})
    return router_factory(enable_ssl=True, tls_pem=certs,
                          ca_certs=[ca.cert_pem.bytes().decode()],  # gorouter's top-level list of PEM texts
                          backends={"max_attempts": 3},
                          extra_headers_to_log=["X-Trace-Me", "Span-Id"],
                          tracing={"enable_zipkin": True})


def client_ctx(ca) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    return ctx


def _peer_names(client: Client) -> set:
    cert = client.sock.getpeercert()
    return {v for k, v in cert.get("subjectAltName", ()) if k == "DNS"}


def test_tls_listener_sni_and_forwarded_proto(tls_router, backend, ca):
    host = f"app{unique_host('x')[2:12]}.beta.tls.test"
    tls_router.register(host, backend.port)
    with Client(tls_router.ssl_port, ssl_context=client_ctx(ca), server_hostname=host) as c:
        assert "beta.tls.test" in _peer_names(c) or "*.beta.tls.test" in _peer_names(c)
        r = c.request("GET", "/secure", host)
    assert r.status == 200
    seen = {k.lower(): v for k, v in r.json()["headers"]}
    assert seen["x-forwarded-proto"] == "https"
    with Client(tls_router.ssl_port, ssl_context=client_ctx(ca), server_hostname="alpha.tls.test") as c:
        assert "alpha.tls.test" in _peer_names(c)
    # plain port still says http
    seen = {k.lower(): v for k, v in get(tls_router.port, host).json()["headers"]}
    assert seen["x-forwarded-proto"] == "http"


def _tls_backend(ca, name: str) -> Backend:
    cert = ca.issue_cert("backend.internal")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(ctx)
    return Backend(name, tls=ctx).start()


def test_tls_backend_verified_by_san(tls_router, ca):
    b = _tls_backend(ca, "tlsb")
    try:
        host = unique_host("tlsb")
        tls_router.register(host, 1, tls_port=b.port, san="backend.internal")
        r = get(tls_router.port, host, "/over-tls")
        assert r.status == 200
        assert r.json()["name"] == "tlsb"
        assert tls_router.routes_json()[host][0]["tls"] is True
    finally:
        b.stop()


def test_tls_backend_wrong_san_503_and_removed(tls_router, ca):
    b = _tls_backend(ca, "tlsw")
    try:
        host = unique_host("tlsw")
        tls_router.register(host, 1, tls_port=b.port, san="someone-else.internal")
        r = get(tls_router.port, host, "/")
        assert r.status == 503                                   # gorouter's HostnameMismatch answer
        assert r.header("X-Cf-Routererror").startswith("endpoint_failure (tls: failed to verify certificate: ")
        assert r.body == b"503 Service Unavailable\n"
        tls_router.wait_route(host, b.address, present=False, timeout=3)
    finally:
        b.stop()


ACCESS_RE = re.compile(
    r'^(?P<host>\S+) - \[(?P<time>[^\]]+)\] "(?P<method>\S+) (?P<uri>\S+) (?P<proto>HTTP/1\.[01])" '
    r'(?P<status>\d{3}) (?P<req_bytes>\d+) (?P<resp_bytes>\d+) "(?P<referer>[^"]*)" "(?P<ua>[^"]*)" '
    r'"(?P<client>[^"]*)" "(?P<backend>[^"]*)" x_forwarded_for:"(?P<xff>[^"]*)" '
    r'x_forwarded_proto:"(?P<xfp>[^"]*)" vcap_request_id:"(?P<rid>[^"]*)" response_time:(?P<rt>[\d.]+) '
    r'gorouter_time:(?P<gt>[\d.]+) app_id:"(?P<app>[^"]*)" app_index:"(?P<idx>[^"]*)" '
    r'instance_id:"(?P<iid>[^"]*)" x_cf_routererror:"(?P<err>[^"]*)" x_trace_me:"(?P<trace>[^"]*)" '
    r'span_id:"(?P<span>[^"]*)" x_b3_traceid:"(?P<b3trace>[^"]*)" x_b3_spanid:"(?P<b3span>[^"]*)" '
    r'x_b3_parentspanid:"(?P<b3parent>[^"]*)" b3:"(?P<b3>[^"]*)"$')   # zipkin's headers, as gorouter logs them


def test_access_log_line(tls_router, backend):
    host = unique_host("log")
    tls_router.register(host, backend.port, app="log-app", index=2, instance_id="log-inst")
    r = get(tls_router.port, host, "/logged?a=b", method="POST", body=b"12345",
            headers=[("X-Trace-Me", "trace-42"), ("User-Agent", "e2e-agent"), ("Referer", "http://ref/")])
    assert r.status == 200
    lines = tls_router.access_lines(host)
    assert len(lines) == 1, lines
    m = ACCESS_RE.match(lines[0])
    assert m, lines[0]
    f = m.groupdict()
    assert f["host"] == host
    assert f["method"] == "POST" and f["uri"] == "/logged?a=b" and f["status"] == "200"
    assert f["req_bytes"] == "5" and int(f["resp_bytes"]) == len(r.body)
    assert f["referer"] == "http://ref/" and f["ua"] == "e2e-agent"
    assert f["client"].startswith("127.0.0.1:") and f["backend"] == backend.address
    assert f["xff"] == "127.0.0.1" and f["xfp"] == "http"
    assert f["rid"] == r.header("X-Vcap-Request-Id")
    assert f["app"] == "log-app" and f["idx"] == "2" and f["iid"] == "log-inst"
    assert f["err"] == "-" and f["trace"] == "trace-42" and f["span"] == "-"
    seen = {k.lower(): v for k, v in r.json()["headers"]}
    assert f["b3trace"] == seen["x-b3-traceid"] and f["b3span"] == seen["x-b3-spanid"]   # the values sent on
    assert f["b3"] == seen["b3"] and f["b3parent"] == "-"

    miss = unique_host("log404")
    get(tls_router.port, miss, "/")
    line = tls_router.access_lines(miss)[0]
    assert ACCESS_RE.match(line).group("err") == "unknown_route"
    assert ACCESS_RE.match(line).group("status") == "404"


def test_zipkin_headers(tls_router, backend):
    host = unique_host("zipkin")
    tls_router.register(host, backend.port)
    seen = {k.lower(): v for k, v in get(tls_router.port, host).json()["headers"]}
    assert re.fullmatch(r"[0-9a-f]{32}", seen["x-b3-traceid"])
    assert re.fullmatch(r"[0-9a-f]{16}", seen["x-b3-spanid"])
    given = [("X-B3-TraceId", "463ac35c9f6413ad48485a3953bb6124"), ("X-B3-SpanId", "a2fb4a1d1a96d312")]
    seen = {k.lower(): v for k, v in get(tls_router.port, host, headers=given).json()["headers"]}
    assert seen["x-b3-traceid"] == "463ac35c9f6413ad48485a3953bb6124"
    assert seen["x-b3-spanid"] == "a2fb4a1d1a96d312"


def test_drain_on_sigusr1(router_factory, backend):
    r = router_factory(drain_wait="1s", drain_timeout="10s")
    host = unique_host("drain")
    r.register(host, backend.port)
    with ThreadPoolExecutor(1) as pool:
        seen = len(backend.requests)
        slow = pool.submit(get, r.port, host, "/slow?s=2")
        wait_for(lambda: any(q["path"] == "/slow" for q in list(backend.requests)[seen:]), timeout=5,
                 message="the slow request in flight")
        r.process.send_signal(signal.SIGUSR1)
        wait_for(lambda: r.health()[0] == 503, timeout=3, message="/health 503 while draining")
        resp = slow.result(timeout=15)
    assert resp.status == 200
    assert r.process.popen.wait(15) == 0


def test_sigterm_exits_promptly(router_factory):
    r = router_factory()
    t0 = time.monotonic()
    r.process.popen.send_signal(signal.SIGTERM)
    r.process.popen.wait(5)
    assert time.monotonic() - t0 < 5
    assert r.process.popen.returncode in (0, -signal.SIGTERM)
