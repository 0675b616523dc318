"""Issue 11: the TLS listener's gorouter keys: client_cert_validation, client_ca_certs, only_trust_client_ca_certs,
forwarded_client_cert (X-Forwarded-Client-Cert), min/max_tls_version, cipher_suites. Real TLS clients."""

from __future__ import annotations

import base64
import ssl

import pytest
import trustme
from support import Client, get, unique_host


@pytest.fixture(scope="module")
def server_ca():
    return trustme.CA(key_type=trustme.KeyType.ECDSA)


@pytest.fixture(scope="module")
def client_ca():
    return trustme.CA(key_type=trustme.KeyType.ECDSA)


def _pem(cert) -> dict:
    return {"cert_chain": "".join(b.bytes().decode() for b in cert.cert_chain_pems),
            "private_key": cert.private_key_pem.bytes().decode()}


@pytest.fixture(scope="module")
def mtls_router(router_factory, server_ca, client_ca):
    return router_factory(enable_ssl=True, tls_pem=[_pem(server_ca.issue_cert("*.mtls.test"))],
                          client_cert_validation="require", client_ca_certs=client_ca.cert_pem.bytes().decode(),
                          only_trust_client_ca_certs=True, forwarded_client_cert="sanitize_set",
                          max_tls_version="TLSv1.2",
                          cipher_suites="TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384:ECDHE-ECDSA-AES128-GCM-SHA256")


def _ctx(server_ca, client_cert=None) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    server_ca.configure_trust(ctx)
    if client_cert is not None:
        client_cert.configure_cert(ctx)
    return ctx


def _seen(resp) -> dict:
    out: dict = {}
    for k, v in resp.json()["headers"]:
        out.setdefault(k.lower(), []).append(v)
    return out


def test_required_client_certificate_is_forwarded_sanitized(mtls_router, backend, server_ca, client_ca):
    host = f"{unique_host('m')[:12]}.mtls.test"
    mtls_router.register(host, backend.port)
    cert = client_ca.issue_cert("client-a@example.com")
    with Client(mtls_router.ssl_port, ssl_context=_ctx(server_ca, cert), server_hostname=host) as c:
        assert c.sock.version() == "TLSv1.2"                       # max_tls_version
        assert c.sock.cipher()[0] == "ECDHE-ECDSA-AES256-GCM-SHA384"  # cipher_suites, in the server's order
        r = c.request("GET", "/", host, headers=[("X-Forwarded-Client-Cert", "forged")])
    assert r.status == 200
    der = ssl.PEM_cert_to_DER_cert(cert.cert_chain_pems[0].bytes().decode())
    assert _seen(r)["x-forwarded-client-cert"] == [base64.b64encode(der).decode()]


def test_no_or_untrusted_client_certificate_fails_the_handshake(mtls_router, server_ca):
    host = "x.mtls.test"
    for ctx in (_ctx(server_ca), _ctx(server_ca, trustme.CA().issue_cert("stranger"))):
        with pytest.raises((ssl.SSLError, ConnectionError)), \
                Client(mtls_router.ssl_port, ssl_context=ctx, server_hostname=host) as c:
            c.request("GET", "/", host)     # TLS 1.2: the refusal comes in the handshake or first read


def test_sanitize_set_removes_the_header_on_the_plain_port(mtls_router, backend):
    host = unique_host("plainxfcc")
    mtls_router.register(host, backend.port)
    assert "x-forwarded-client-cert" not in _seen(get(mtls_router.port, host, "/",
                                                      headers=[("X-Forwarded-Client-Cert", "forged")]))


def test_forward_mode_trusts_the_header_only_from_certificate_holders(router_factory, backend, server_ca, client_ca):
    r = router_factory(enable_ssl=True, tls_pem=[_pem(server_ca.issue_cert("*.fwd.test"))],
                       client_cert_validation="request", client_ca_certs=client_ca.cert_pem.bytes().decode(),
                       forwarded_client_cert="forward", min_tls_version="TLSv1.3", max_tls_version="TLSv1.3")
    host = "app.fwd.test"
    r.register(host, backend.port)
    sent = [("X-Forwarded-Client-Cert", "from-a-trusted-proxy")]
    with Client(r.ssl_port, ssl_context=_ctx(server_ca, client_ca.issue_cert("proxy")), server_hostname=host) as c:
        assert c.sock.version() == "TLSv1.3"
        assert _seen(c.request("GET", "/", host, headers=sent))["x-forwarded-client-cert"] == ["from-a-trusted-proxy"]
    with Client(r.ssl_port, ssl_context=_ctx(server_ca), server_hostname=host) as c:   # request: optional
        assert "x-forwarded-client-cert" not in _seen(c.request("GET", "/", host, headers=sent))
    assert "x-forwarded-client-cert" not in _seen(get(r.port, host, "/", headers=sent))
