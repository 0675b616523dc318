"""NATS over TLS (server verified against nats.ca_certs, client certificate from nats.cert_chain/private_key)
and with user/password or a token, through both readers: the fast lane and nats-py. Real nats-server with
certificates from trustme."""

from __future__ import annotations

import json
import ssl

import nats
import pytest
import trustme
from polling import eventually

from portico.bus.subscriber import RouteBus
from portico.config.settings import NatsServer, NatsSettings, RouterConfig
from portico.routes import RouteTable
from portico.stack.servers import start_nats
from portico.state import RouterState


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    ca = trustme.CA()
    d = tmp_path_factory.mktemp("pki")
    server = ca.issue_cert("127.0.0.1", "localhost")
    server.private_key_pem.write_to_path(d / "server.key")
    server.cert_chain_pems[0].write_to_path(d / "server.pem")
    ca.cert_pem.write_to_path(d / "ca.pem")
    client = ca.issue_cert("portico-router")
    return {"ca": ca, "dir": d, "client_cert": client.cert_chain_pems[0].bytes().decode(),
            "client_key": client.private_key_pem.bytes().decode()}


def _tls_args(pki, verify_clients: bool) -> list[str]:
    d = pki["dir"]
    args = ["--tls", "--tlscert", str(d / "server.pem"), "--tlskey", str(d / "server.key")]
    if verify_clients:
        args += ["--tlsverify", "--tlscacert", str(d / "ca.pem")]
    return args


def _client_tls(pki) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    pki["ca"].configure_trust(ctx)
    pki["ca"].issue_cert("test-client").configure_cert(ctx)
    return ctx


async def _check_bus(config: RouterConfig, fastlane: bool, url: str, **client_kw) -> None:
    """Start a RouteBus, publish a registration from another client, see it applied and router.start sent."""
    starts: list[bytes] = []
    observer = await nats.connect(url, **client_kw)
    try:
        async def on_start(msg):
            starts.append(msg.data)

        await observer.subscribe("router.start", cb=on_start)
        await observer.flush()
        state = RouterState()
        bus = RouteBus(config, RouteTable(), state, fastlane=fastlane)
        try:
            await bus.start()
            assert (bus.lane is not None) == fastlane and bus.connected
            await eventually(lambda: starts, message="router.start")
            assert json.loads(starts[0])["id"] == state.id
            await observer.publish("router.register",
                                   b'{"host":"10.0.0.9","port":8080,"uris":["secure.nats.test"]}')
            await observer.flush()
            await eventually(lambda: bus.table.lookup("secure.nats.test") is not None)
        finally:
            await bus.stop()
    finally:
        await observer.close()


@pytest.mark.parametrize("fastlane", [True, False], ids=["fastlane", "nats-py"])
async def test_nats_tls_with_client_certificate_and_password(pki, tmp_path, fastlane):
    server = start_nats(workdir=tmp_path / "nats", args=[*_tls_args(pki, verify_clients=True),
                                                         "--user", "router", "--pass", "s3cr3t-pw"])
    try:
        config = RouterConfig(nats=NatsSettings(
            hosts=(NatsServer("127.0.0.1", server.port),), user="router", password="s3cr3t-pw",
            tls_enabled=True, ca_certs=pki["ca"].cert_pem.bytes().decode(),
            cert_chain=pki["client_cert"], private_key=pki["client_key"]))
        await _check_bus(config, fastlane, f"tls://router:s3cr3t-pw@127.0.0.1:{server.port}",
                         tls=_client_tls(pki))
    finally:
        server.stop()


@pytest.mark.parametrize("fastlane", [True, False], ids=["fastlane", "nats-py"])
async def test_nats_tls_with_token(pki, tmp_path, fastlane):
    server = start_nats(workdir=tmp_path / "nats", args=[*_tls_args(pki, verify_clients=False),
                                                         "--auth", "t0ken-value"])
    try:
        config = RouterConfig(nats=NatsSettings(
            hosts=(NatsServer("127.0.0.1", server.port),), token="t0ken-value", tls_enabled=True,
            ca_certs=pki["ca"].cert_pem.bytes().decode()))
        client = ssl.create_default_context()
        pki["ca"].configure_trust(client)
        await _check_bus(config, fastlane, f"tls://127.0.0.1:{server.port}", tls=client, token="t0ken-value")
    finally:
        server.stop()


async def test_fast_lane_refuses_a_server_it_cannot_verify(pki, tmp_path):
    """The lane never falls back to plain text or an unverified server: no CA, no connection."""
    from portico.bus.fastlane import FastLane
    from portico.tls_client import client_context

    server = start_nats(workdir=tmp_path / "nats", args=_tls_args(pki, verify_clients=False))
    try:
        lane = FastLane([f"nats://127.0.0.1:{server.port}"], RouteTable(), RouterState(),
                        tls_context=client_context(), connect_timeout=1.0)
        import asyncio

        start = asyncio.ensure_future(lane.start())
        await asyncio.sleep(1.5)
        assert not lane.connected and not start.done()
        start.cancel()
        await lane.stop()
    finally:
        server.stop()
