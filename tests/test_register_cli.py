"""`portico register` / `portico unregister` as subprocesses, against a real nats-server."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys

import nats
from polling import eventually

from portico.bus.subscriber import RouteBus
from portico.config.settings import NatsServer, NatsSettings, RouterConfig
from portico.routes import RouteTable
from portico.stack.processes import free_port
from portico.state import RouterState


async def cli(*args: str, timeout: float = 20.0) -> subprocess.CompletedProcess:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "portico", *args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    async with asyncio.timeout(timeout):
        out, err = await proc.communicate()
    return subprocess.CompletedProcess(args, proc.returncode, out.decode(), err.decode())


async def collect(url: str, subject: str):
    nc = await nats.connect(url)
    got: list[bytes] = []

    async def cb(msg):
        got.append(msg.data)

    await nc.subscribe(subject, cb=cb)
    await nc.flush()
    return nc, got


async def test_register_delivers_exact_json(nats_server):
    nc, got = await collect(nats_server.url, "router.register")
    try:
        result = await cli("register", "--nats", nats_server.url, "--host", "127.0.0.1", "--port", "9100",
                           "--uri", "test.a.com", "--json")
        assert result.returncode == 0, result.stderr
        await eventually(lambda: got)
        assert got[0] == b'{"host":"127.0.0.1","port":9100,"uris":["test.a.com"]}'
        assert result.stdout.strip().encode() == got[0]
    finally:
        await nc.close()


async def test_register_every_option(nats_server):
    nc, got = await collect(nats_server.url, "router.register")
    try:
        result = await cli(
            "register", "--nats", nats_server.url, "--host", "10.0.0.5", "--port", "9100", "--tls-port", "9443",
            "--uri", "a.com", "--uri", "b.com/api", "--app", "guid", "--instance-id", "iid",
            "--instance-index", "3", "--ttl", "30", "--tag", "component=web", "--tag", "team=x=y",
            "--server-cert-domain-san", "san.a.com", "--route-service-url", "https://rs.a.com",
            "--isolation-segment", "seg", "--protocol", "http2", "--az", "z1", "--lb", "least-connection",
            "--json")
        assert result.returncode == 0, result.stderr
        await eventually(lambda: got)
        assert json.loads(got[0]) == {
            "host": "10.0.0.5", "port": 9100, "tls_port": 9443, "uris": ["a.com", "b.com/api"], "app": "guid",
            "private_instance_id": "iid", "private_instance_index": "3", "server_cert_domain_san": "san.a.com",
            "route_service_url": "https://rs.a.com", "tags": {"component": "web", "team": "x=y"},
            "stale_threshold_in_seconds": 30, "isolation_segment": "seg", "protocol": "http2",
            "availability_zone": "z1", "options": {"loadbalancing": "least-connection"},
        }
        assert result.stdout.strip().encode() == got[0]
    finally:
        await nc.close()


async def test_register_then_unregister_through_a_router_bus(nats_server):
    config = RouterConfig(nats=NatsSettings(hosts=(NatsServer("127.0.0.1", nats_server.port),)))
    table = RouteTable()
    bus = RouteBus(config, table, RouterState(), reconnect_wait=0.05)
    await bus.start()
    try:
        common = ("--nats", nats_server.url, "--host", "10.90.2.103", "--port", "9100", "--uri", "test.a.com")
        assert (await cli("register", *common)).returncode == 0
        await eventually(lambda: table.lookup("test.a.com") is not None)
        assert table.snapshot()["test.a.com"][0]["address"] == "10.90.2.103:9100"
        result = await cli("unregister", *common)
        assert result.returncode == 0, result.stderr
        await eventually(lambda: table.lookup("test.a.com") is None)
    finally:
        await bus.stop()


async def test_nats_down_exits_1_with_one_line_error():
    port = free_port()
    result = await cli("register", "--nats", f"nats://127.0.0.1:{port}", "--port", "1", "--uri", "a.com")
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.startswith("portico")]
    assert len(lines) == 1 and f"127.0.0.1:{port}" in lines[0] and "Traceback" not in result.stderr
    result = await cli("unregister", "--nats", f"nats://127.0.0.1:{port}", "--port", "1", "--uri", "a.com")
    assert result.returncode == 1 and "Traceback" not in result.stderr


async def test_bad_options_are_usage_errors(nats_server):
    bads = (["--route-service-url", "http://rs"], ["--tag", "novalue"], ["--protocol", "http3"],
            ["--lb", "random"], ["--port", "70000"])
    # Two at a time: each start costs about a second of CPU, and six started at once on a loaded 2-core
    # machine shared that CPU six ways, so one ran into cli()'s 20 s hang guard (seen once).
    two_at_a_time = asyncio.Semaphore(2)

    async def run(*args: str) -> subprocess.CompletedProcess:
        async with two_at_a_time:
            return await cli("register", "--nats", nats_server.url, *args)

    results = await asyncio.gather(*(run("--uri", "a.com", *bad) for bad in bads), run())
    for bad, result in zip([*bads, ["no --uri"]], results, strict=False):
        assert result.returncode == 2, (bad, result.stderr)
        assert "Traceback" not in result.stderr


async def test_repeat_keeps_registering_until_interrupted(nats_server):
    nc, got = await collect(nats_server.url, "router.register")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "portico", "register", "--nats", nats_server.url, "--port", "9100",
        "--uri", "r.com", "--repeat", "0.1", stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        # a suite started in the background (`cmd &` without job control) ignores SIGINT, and a child inherits
        # that: give it the default a user's shell gives, or the Ctrl-C below never arrives
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        await eventually(lambda: len(got) >= 3, timeout=15)
        assert len(set(got)) == 1
    finally:
        proc.send_signal(signal.SIGINT)
        async with asyncio.timeout(10):
            _, err = await proc.communicate()
        await nc.close()
    assert proc.returncode == 0, err.decode()
    assert b"Traceback" not in err


def test_library_tracebacks_become_one_line():
    """nats-py logs 'encountered error' with a traceback when an interrupt races a PONG; we print one line."""
    import logging

    from portico.cli.register_cmd import _OneLineFormatter

    try:
        raise RuntimeError("invalid state")
    except RuntimeError:
        record = logging.getLogger("nats").makeRecord("nats", logging.ERROR, __file__, 1,
                                                     "nats: encountered error", (), sys.exc_info())
    line = _OneLineFormatter("portico: %(message)s").format(record)
    assert line == "portico: nats: encountered error (RuntimeError: invalid state)"
