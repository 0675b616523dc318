"""etcd over TLS with client certificates and user/password, for the router's announcement and for confsync's
etcd backend: a real etcd started with TLS (certificates from trustme), authentication enabled with etcdctl."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest
import trustme

from portico.announce import RouterAnnouncer
from portico.config.settings import EtcdAnnounceSettings
from portico.confsync.backends import EtcdBackend
from portico.etcd_client import EtcdTls, etcd_client
from portico.stack.binaries import etcd_binary
from portico.stack.servers import start_etcd

ROOT_PASSWORD = "etcd-Root-pw-91"


@pytest.fixture(scope="module")
def secure_etcd(tmp_path_factory):
    """etcd that wants TLS, a client certificate from our CA, and root's password."""
    d = tmp_path_factory.mktemp("etcd-pki")
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    server.private_key_pem.write_to_path(d / "server.key")
    server.cert_chain_pems[0].write_to_path(d / "server.pem")
    ca.cert_pem.write_to_path(d / "ca.pem")
    client = ca.issue_cert("portico")
    client.private_key_pem.write_to_path(d / "client.key")
    client.cert_chain_pems[0].write_to_path(d / "client.pem")
    etcd = start_etcd(workdir=d / "etcd", tls=(str(d / "server.pem"), str(d / "server.key"), str(d / "ca.pem")))
    etcdctl = [str(Path(etcd_binary()).parent / "etcdctl"), f"--endpoints={etcd.url}", f"--cacert={d / 'ca.pem'}",
               f"--cert={d / 'client.pem'}", f"--key={d / 'client.key'}"]
    try:
        for args in (["user", "add", f"root:{ROOT_PASSWORD}"], ["user", "grant-role", "root", "root"],
                     ["auth", "enable"]):
            out = subprocess.run(etcdctl + args, capture_output=True, text=True, timeout=30)
            assert out.returncode == 0, out.stderr
        tls = EtcdTls(ca.cert_pem.bytes(), client.cert_chain_pems[0].bytes(), client.private_key_pem.bytes())
        yield etcd, tls
    finally:
        etcd.stop()


async def _get(etcd, tls: EtcdTls, key: str) -> bytes | None:
    client = etcd_client("127.0.0.1", etcd.port, timeout=5, username="root", password=ROOT_PASSWORD, tls=tls)
    try:
        got = await client.get(key.encode())
        return None if got is None else got.value
    finally:
        await client.close()


async def test_router_announces_itself_over_tls_with_password(secure_etcd):
    etcd, tls = secure_etcd
    settings = EtcdAnnounceSettings(endpoints=(etcd.url,), prefix="/secure", username="root",
                                    password=ROOT_PASSWORD, ca_certs=tls.ca.decode(), cert_chain=tls.cert.decode(),
                                    private_key=tls.key.decode())
    announcer = RouterAnnouncer(settings, "r-tls", "127.0.0.1:8081", 8080)
    try:
        await announcer.start(first_timeout=10)
        assert announcer.registered.is_set()
        assert b"127.0.0.1:8081" in (await _get(etcd, tls, "/secure/routers/r-tls") or b"")
    finally:
        await announcer.stop()


@pytest.mark.parametrize("missing", ["client certificate", "password"])
async def test_announcement_refused_without_credentials(secure_etcd, missing):
    etcd, tls = secure_etcd
    given = {"username": "root", "password": ROOT_PASSWORD, "ca_certs": tls.ca.decode(),
             "cert_chain": tls.cert.decode(), "private_key": tls.key.decode()}
    if missing == "password":
        given.update(username="", password="")
    else:
        given.update(cert_chain="", private_key="")
    announcer = RouterAnnouncer(EtcdAnnounceSettings(endpoints=(etcd.url,), prefix="/refused", **given),
                                "r-refused", "127.0.0.1:8081", 8080)
    try:
        await announcer.start(first_timeout=2)
        assert not announcer.registered.is_set()
    finally:
        await announcer.stop()
    assert await _get(etcd, tls, "/refused/routers/r-refused") is None


async def test_confsync_etcd_backend_over_tls_with_password(secure_etcd):
    etcd, tls = secure_etcd
    writer = etcd_client("127.0.0.1", etcd.port, timeout=5, username="root", password=ROOT_PASSWORD, tls=tls)
    try:
        await writer.put(b"/svc/secure/a", b"10.0.0.1:80")
    finally:
        await writer.close()
    backend = EtcdBackend([etcd.url], ["/svc/secure"], username="root", password=ROOT_PASSWORD, tls=tls)
    try:
        async with asyncio.timeout(15):
            values = await backend.fetch()
        assert values == {"/svc/secure/a": "10.0.0.1:80"}
    finally:
        await backend.close()
