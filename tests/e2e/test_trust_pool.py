"""Issue 10.1: an idle backend connection is reused only by an endpoint with the same connection identity.

A plaintext keep-alive connection must never serve a TLS endpoint registered at the same address, and a TLS
connection whose certificate was verified for one server name must never serve an endpoint expecting another.
"""

from __future__ import annotations

import ssl

import pytest
import trustme
from support import Backend, get, unique_host


@pytest.fixture(scope="module")
def ca():
    return trustme.CA()


@pytest.fixture(scope="module")
def trust_router(router_factory, ca):
    return router_factory(backends={"ca_certs": ca.cert_pem.bytes().decode(), "max_attempts": 1},
                          endpoint_dial_timeout="1s", tls_handshake_timeout="1s")


def _tls_backend(ca, name: str, *sans: str) -> Backend:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert(*sans).configure_cert(ctx)
    return Backend(name, tls=ctx).start()


def test_plaintext_idle_connection_never_serves_a_tls_route(trust_router, backend_factory):
    plain = backend_factory("plain-then-tls")
    plain_host, tls_host = unique_host("plain"), unique_host("tlsroute")
    trust_router.register(plain_host, plain.port)
    assert get(trust_router.port, plain_host).status == 200
    assert get(trust_router.port, plain_host).json()["conn"] == 1   # pooled: the same backend connection
    # The same address, now registered as a TLS endpoint: the request must not go over the plaintext
    # connection. The TLS handshake with a plaintext server cannot complete (it times out or fails).
    trust_router.register(tls_host, 1, tls_port=plain.port, san="backend.internal")
    r = get(trust_router.port, tls_host, "/must-not-arrive")
    assert r.status in (502, 525, 526), (r.status, r.body)
    assert r.header("X-Cf-Routererror").startswith("endpoint_failure")
    assert not [req for req in plain.requests if req["path"] == "/must-not-arrive"]
    # the plaintext route still reuses its own pooled connection
    assert get(trust_router.port, plain_host).status == 200


def test_connection_verified_for_one_san_never_serves_another(trust_router, ca):
    b = _tls_backend(ca, "san-a", "a.internal")
    try:
        host_a, host_b = unique_host("sana"), unique_host("sanb")
        trust_router.register(host_a, 1, tls_port=b.port, san="a.internal")
        r = get(trust_router.port, host_a)
        assert r.status == 200 and r.json()["name"] == "san-a"
        assert get(trust_router.port, host_a).json()["conn"] == 1   # reused for the same identity
        trust_router.register(host_b, 1, tls_port=b.port, san="b.internal")
        r = get(trust_router.port, host_b, "/must-not-arrive")
        assert r.status == 503, (r.status, r.body)   # dialled anew: b.internal is not in the certificate
        assert not [req for req in b.requests if req["path"] == "/must-not-arrive"]
    finally:
        b.stop()
