"""Ingress TLS Secrets -> PEM files (controller side) -> certificates (router side)."""

from __future__ import annotations

import base64

import trustme

from portico.kube.tlsdir import TlsDirectory, pem_of
from portico.proxy.cert_dir import load_directory, split_pem


def _secret(cert) -> dict:
    chain = b"".join(b.bytes() for b in cert.cert_chain_pems)
    return {"data": {"tls.crt": base64.b64encode(chain).decode(),
                     "tls.key": base64.b64encode(cert.private_key_pem.bytes()).decode()}}


def test_secrets_written_read_back_and_removed(tmp_path):
    ca = trustme.CA()
    cert = ca.issue_cert("a.example.com")
    directory = TlsDirectory(tmp_path)
    secrets = {("ns", "a"): _secret(cert), ("ns", "broken"): {"data": {"tls.crt": "bm9wZQ=="}}}
    directory.sync({("ns", "a"), ("ns", "broken"), ("ns", "missing")}, secrets)
    assert [p.name for p in tmp_path.glob("*.pem")] == ["ns__a.pem"]
    ((name, loaded),) = load_directory(tmp_path)
    assert name == "ns__a.pem" and loaded.cert_chain.startswith("-----BEGIN CERTIFICATE-----")
    assert "PRIVATE KEY" in loaded.private_key
    directory.sync({("ns", "a")}, secrets)
    assert directory.writes == 1  # unchanged content is not rewritten
    directory.sync(set(), secrets)
    assert list(tmp_path.glob("*.pem")) == []


def test_split_pem_wants_certificates_and_one_key():
    cert = trustme.CA().issue_cert("b.example.com")
    pem = pem_of(_secret(cert))
    assert pem is not None and split_pem(pem) is not None
    assert split_pem(cert.cert_chain_pems[0].bytes()) is None  # no key
    assert split_pem(b"garbage") is None
