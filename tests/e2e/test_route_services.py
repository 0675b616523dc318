"""Issue 11: route services end to end, client -> router -> route service (TLS) -> router -> app, and every
failure gorouter answers itself (status, X-Cf-Routererror, body as in gorouter's handlers/routeservice.go)."""

from __future__ import annotations

import ssl
import time

import pytest
import trustme
from route_service import RouteService
from support import get, unique_host

from portico.proxy import rs_signature

SECRET, OLD_SECRET = "rs-secret-now", "rs-secret-before"


@pytest.fixture(scope="module")
def ca():
    return trustme.CA()


@pytest.fixture(scope="module")
def service(ca):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(ctx)
    rs = RouteService("tls-rs", tls=ctx).start()
    yield rs
    rs.stop()


@pytest.fixture(scope="module")
def rs_router(router_factory, ca, service):
    r = router_factory(route_services_secret=SECRET, route_services_secret_decrypt_only=OLD_SECRET,
                       route_service_timeout="60s",   # the seed's older spelling
                       ca_certs=[ca.cert_pem.bytes().decode()],
                       route_services={"max_attempts": 2, "strict_signature_validation": True},
                       endpoint_dial_timeout="2s")
    service.router_port = r.port
    return r


def _bound_route(router, backend, service, path="/svc"):
    host = unique_host("rs")
    router.register(host, backend.port, route_service_url=service.url(path))
    return host


def _seen(resp) -> dict:
    return {k.lower(): v for k, v in resp.json()["headers"]}


def test_full_round_trip_through_a_tls_route_service(rs_router, backend, service):
    host = _bound_route(rs_router, backend, service, "/svc/check?tenant=a")
    before = len(service.requests)
    r = get(rs_router.port, host, "/orders/7?x=1&y=2", headers=[("X-Client", "c1")])
    assert r.status == 200, (r.status, r.body)
    assert r.header("X-Route-Service") == "tls-rs"          # the answer came back through the service
    assert r.header("X-CF-Proxy-Signature") is None        # never shown to the client
    seen_by_app = _seen(r)
    assert r.json()["path"] == "/orders/7?x=1&y=2"
    assert seen_by_app["x-client"] == "c1"
    for name in ("x-cf-proxy-signature", "x-cf-proxy-metadata", "x-cf-forwarded-url"):
        assert name not in seen_by_app                     # removed before the app
    assert seen_by_app["x-cf-instanceid"] == f"127.0.0.1:{backend.port}"

    rs_req = service.requests[before]
    seen_by_rs = {k.lower(): v for k, v in rs_req["headers"]}
    assert rs_req["target"] == "/svc/check?tenant=a"       # the service URL's own path and query
    assert seen_by_rs["host"] == f"127.0.0.1:{service.port}"
    assert seen_by_rs["x-cf-forwarded-url"] == f"http://{host}/orders/7?x=1&y=2"
    assert seen_by_rs["x-client"] == "c1" and seen_by_rs["x-forwarded-for"] == "127.0.0.1"
    assert "x-cf-instanceid" not in seen_by_rs and "x-cf-applicationid" not in seen_by_rs
    url, requested = rs_signature.read((rs_signature.SignatureKey(SECRET),),
                                       seen_by_rs["x-cf-proxy-signature"].encode(),
                                       seen_by_rs["x-cf-proxy-metadata"].encode())
    assert url == seen_by_rs["x-cf-forwarded-url"] and abs(time.time() - requested) < 30


def _signed(secret: str, url: str, age: float = 0.0) -> list[tuple[str, str]]:
    sig, meta = rs_signature.sign(rs_signature.SignatureKey(secret), url, time.time_ns() - int(age * 1e9))
    return [("X-CF-Proxy-Signature", sig.decode()), ("X-CF-Proxy-Metadata", meta.decode()),
            ("X-CF-Forwarded-Url", url)]


def test_signature_from_the_decrypt_only_secret_is_accepted(rs_router, backend, service):
    host = _bound_route(rs_router, backend, service)
    r = get(rs_router.port, host, "/rotated", headers=_signed(OLD_SECRET, f"http://{host}/rotated"))
    assert r.status == 200 and r.header("X-Route-Service") is None   # straight to the app
    assert "x-cf-proxy-signature" not in _seen(r)


def test_expired_signature_is_504(rs_router, backend, service):
    host = _bound_route(rs_router, backend, service)
    r = get(rs_router.port, host, "/late", headers=_signed(SECRET, f"http://{host}/late", age=61))
    assert r.status == 504
    assert r.header("X-Cf-Routererror") is None
    assert r.body == b"504 Gateway Timeout: Failed to validate Route Service Signature: route service request expired\n"


def test_tampered_signature_is_502(rs_router, backend, service):
    host = _bound_route(rs_router, backend, service)
    service.mode = "tamper"
    try:
        r = get(rs_router.port, host, "/tampered")
    finally:
        service.mode = "forward"
    assert r.status == 502 and r.header("X-Route-Service") == "tls-rs"
    inner = r.body
    assert inner == (b"502 Bad Gateway: Failed to validate Route Service Signature: "
                     b"cipher: message authentication failed\n")
    # a signature from an unknown secret fails the same way
    r = get(rs_router.port, host, "/x", headers=_signed("another-secret", f"http://{host}/x"))
    assert r.status == 502 and r.body.endswith(b"cipher: message authentication failed\n")


def test_missing_metadata_is_502(rs_router, backend, service):
    host = _bound_route(rs_router, backend, service)
    service.mode = "no-metadata"
    try:
        r = get(rs_router.port, host, "/nometa")
    finally:
        service.mode = "forward"
    assert r.status == 502
    assert r.body == b"502 Bad Gateway: Failed to validate Route Service Signature: No metadata found\n"


def test_signature_for_another_route_is_502(rs_router, backend, service):
    host, other = _bound_route(rs_router, backend, service), _bound_route(rs_router, backend, service)
    r = get(rs_router.port, host, "/", headers=_signed(SECRET, f"http://{other}/"))
    assert r.status == 502
    assert r.body == (f"502 Bad Gateway: Failed to validate Route Service Signature: route service forwarded URL "
                      f"{host} does not match the original request URL {other}/\n").encode()
    r = get(rs_router.port, host, "/", headers=_signed(SECRET, "http://gone.e2e.test/"))
    assert r.status == 502 and b"original request URL gone.e2e.test/ does not exist in the routing table" in r.body


def test_route_service_down_is_502_after_max_attempts(rs_router, backend):
    from support import dead_port

    host = unique_host("rsdown")
    port = dead_port()
    rs_router.register(host, backend.port, route_service_url=f"https://127.0.0.1:{port}/svc")
    r = get(rs_router.port, host, "/")
    assert r.status == 502
    assert r.header("X-Cf-Routererror") == f"endpoint_failure (dial tcp 127.0.0.1:{port}: connect: connection refused)"
    assert r.body == b"502 Bad Gateway: Registered endpoint failed to handle the request.\n"
    assert rs_router.routes_json()[host]                    # the app's route is untouched


def test_websocket_upgrade_on_a_route_service_route_is_503(rs_router, backend, service):
    host = _bound_route(rs_router, backend, service)
    r = get(rs_router.port, host, "/ws", headers=[("Connection", "Upgrade"), ("Upgrade", "websocket"),
                                                   ("Sec-WebSocket-Version", "13"),
                                                   ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")])
    assert r.status == 503
    assert r.header("X-Cf-Routererror") == "route_service_unsupported"
    assert r.body == (b"503 Service Unavailable: "
                      b"Websocket requests are not supported for routes bound to Route Services.\n")


def test_strict_validation_on_a_route_without_a_service(rs_router, backend):
    host = unique_host("strict")
    rs_router.register(host, backend.port)
    r = get(rs_router.port, host, "/", headers=[("X-CF-Proxy-Signature", "forged")])
    assert r.status == 400
    assert r.header("X-Cf-Routererror") == "invalid_route_service_signature"
    assert r.body == b"400 Bad Request: invalid route service signature detected\n"
    r = get(rs_router.port, host, "/", headers=_signed(SECRET, f"http://{host}/", age=120))
    assert r.status == 504 and r.header("X-Cf-Routererror") == "expired_route_service_signature"
    r = get(rs_router.port, host, "/", headers=_signed(SECRET, f"http://{host}/"))
    assert r.status == 200
    assert "x-cf-proxy-signature" in _seen(r)              # a valid one is passed on, as gorouter does


def test_without_a_secret_route_services_are_refused_and_headers_pass(router, backend, service):
    host = unique_host("nosecret")
    router.register(host, backend.port, route_service_url=service.url())
    r = get(router.port, host, "/")
    assert r.status == 502
    assert r.header("X-Cf-Routererror") == "route_service_unsupported"
    assert r.body == b"502 Bad Gateway: Support for route services is disabled.\n"
    plain = unique_host("plain")
    router.register(plain, backend.port)
    seen = _seen(get(router.port, plain, "/", headers=[("X-CF-Proxy-Signature", "whatever")]))
    assert seen["x-cf-proxy-signature"] == "whatever"      # no strict validation: not the router's business


def test_untrusted_route_service_certificate_fails_the_handshake(router_factory, backend, service):
    r = router_factory(route_services_secret=SECRET, endpoint_dial_timeout="2s",
                       route_services={"max_attempts": 1})
    host = unique_host("untrusted")
    r.register(host, backend.port, route_service_url=service.url())
    resp = get(r.port, host, "/")
    assert resp.status == 526                                   # gorouter's UntrustedCert answer
    assert resp.header("X-Cf-Routererror") == ("endpoint_failure (tls: failed to verify certificate: x509: "
                                               "certificate signed by unknown authority)")
    assert resp.body == b"526 Invalid SSL Certificate\n"
    assert r.routes_json()[host]


@pytest.fixture(scope="module")
def hairpin_router(router_factory, backend_factory):
    from portico.stack.processes import free_port

    r = router_factory(route_services_secret=SECRET, skip_ssl_validation=True,
                       route_services_recommend_https=True, route_services_hairpinning=True,
                       route_services_hairpinning_allowlist=["*.hairpin.test"],
                       route_services_internal_server_port=free_port(), endpoint_dial_timeout="2s",
                       route_services={"max_attempts": 1})
    return r


def test_skip_ssl_validation_and_recommend_https(hairpin_router, backend, service):
    service.router_port = hairpin_router.port
    host = _bound_route(hairpin_router, backend, service)
    before = len(service.requests)
    r = get(hairpin_router.port, host, "/p")
    assert r.status == 200 and r.header("X-Route-Service") == "tls-rs"   # certificate not checked
    seen_by_rs = {k.lower(): v for k, v in service.requests[before]["headers"]}
    assert seen_by_rs["x-cf-forwarded-url"] == f"https://{host}/p"


def test_hairpinning_through_the_router_for_allowlisted_services(hairpin_router, backend):
    plain_rs = RouteService("hairpinned").start()
    try:
        plain_rs.router_port = hairpin_router.port
        # The service is itself an app of this router, at a name only the router knows (no DNS).
        hairpin_router.register("svc.hairpin.test", plain_rs.port)
        host = unique_host("hp")
        hairpin_router.register(host, backend.port, route_service_url="https://svc.hairpin.test/check")
        r = get(hairpin_router.port, host, "/hp")
        assert r.status == 200 and r.header("X-Route-Service") == "hairpinned"
        assert plain_rs.requests[-1]["target"] == "/check"
        # not on the allowlist: resolved by DNS like any URL, which knows nothing of this name
        hairpin_router.register("svc.elsewhere.test", plain_rs.port)
        other = unique_host("hp")
        hairpin_router.register(other, backend.port, route_service_url="https://svc.elsewhere.test/check")
        r = get(hairpin_router.port, other, "/hp")
        assert r.status == 502
        assert r.header("X-Cf-Routererror").startswith("endpoint_failure (dial tcp svc.elsewhere.test:443")
    finally:
        plain_rs.stop()
