"""`portico confsync` against an etcd that wants TLS and a client certificate, with confd's own flags
(-client-ca-keys, -client-cert, -client-key): it renders; without the certificate it cannot read etcd."""

from __future__ import annotations

import asyncio

import pytest
import trustme
from confsync_helpers import run_confsync, write_confdir

from portico.etcd_client import EtcdTls, etcd_client
from portico.stack.servers import start_etcd


@pytest.fixture
def tls_etcd(tmp_path):
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1")
    server.private_key_pem.write_to_path(tmp_path / "server.key")
    server.cert_chain_pems[0].write_to_path(tmp_path / "server.pem")
    ca.cert_pem.write_to_path(tmp_path / "ca.pem")
    client = ca.issue_cert("confsync")
    client.private_key_pem.write_to_path(tmp_path / "client.key")
    client.cert_chain_pems[0].write_to_path(tmp_path / "client.pem")
    etcd = start_etcd(workdir=tmp_path / "etcd",
                      tls=(str(tmp_path / "server.pem"), str(tmp_path / "server.key"), str(tmp_path / "ca.pem")))
    tls = EtcdTls(ca.cert_pem.bytes(), client.cert_chain_pems[0].bytes(), client.private_key_pem.bytes())

    async def put() -> None:
        c = etcd_client("127.0.0.1", etcd.port, timeout=5, tls=tls)
        try:
            await c.put(b"/tlsapp/upstream", b"10.0.0.7:8080")
        finally:
            await c.close()

    asyncio.run(put())
    yield etcd
    etcd.stop()


def test_confsync_reads_etcd_over_tls_with_confd_flags(tmp_path, tls_etcd):
    dest = tmp_path / "out" / "app.conf"
    confdir = write_confdir(tmp_path / "confd", {
        "app": f'[template]\nsrc = "app.tmpl"\ndest = "{dest}"\nkeys = ["/tlsapp"]\n'},
        {"app.tmpl": 'server {{getv "/tlsapp/upstream"}}\n'})
    common = ["-onetime", "-confdir", str(confdir), "-backend", "etcdv3", "-node", tls_etcd.url,
              "-client-ca-keys", str(tmp_path / "ca.pem")]
    refused = run_confsync(*common, timeout=60)
    assert refused.returncode != 0 and not dest.exists()
    proc = run_confsync(*common, "-client-cert", str(tmp_path / "client.pem"), "-client-key",
                        str(tmp_path / "client.key"), timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert dest.read_text() == "server 10.0.0.7:8080\n"
