"""`portico registrar` against a real nats-server: a test-side NATS client observes what is published."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import nats
import pytest
from polling import eventually
from typer.testing import CliRunner

from portico.cli import app
from portico.config.values import parse_duration
from portico.registrar import ConfigError, Registrar, parse_config

ROOT = Path(__file__).resolve().parents[1]


# --- helpers ----------------------------------------------------------------------------------------------

class Observer:
    """Records every router.register / router.unregister as (monotonic time, subject, payload)."""

    def __init__(self) -> None:
        self.msgs: list[tuple[float, str, dict]] = []
        self.nc = None

    async def start(self, url: str) -> Observer:
        self.nc = await nats.connect(url)
        for subject in ("router.register", "router.unregister"):
            await self.nc.subscribe(subject, cb=self._on_msg)
        await self.nc.flush()
        return self

    async def _on_msg(self, msg) -> None:
        self.msgs.append((time.monotonic(), msg.subject, json.loads(msg.data)))

    def of(self, subject: str, uri: str | None = None, since: float = 0.0) -> list[tuple[float, dict]]:
        return [(t, p) for t, s, p in self.msgs
                if s == subject and t >= since and (uri is None or uri in p.get("uris", []))]

    async def wait_for(self, subject: str, count: int = 1, uri: str | None = None, since: float = 0.0,
                       timeout: float = 5.0) -> list[tuple[float, dict]]:
        await eventually(lambda: len(self.of(subject, uri, since)) >= count, timeout,
                         message=f"{count} {subject} for {uri}")
        return self.of(subject, uri, since)

    async def close(self) -> None:
        await self.nc.close()


def config_for(url: str, *routes: dict) -> dict:
    return {"nats": url, "host": "127.0.0.1", "routes": list(routes)}


def route(name: str, **extra) -> dict:
    return {"name": name, "port": 9100, "uris": [f"{name}.example.com"], "registration_interval": "0.2s", **extra}


@pytest.fixture
async def observer(nats_server):
    obs = await Observer().start(nats_server.url)
    yield obs
    await obs.close()


async def started(cfg: dict, greet_timeout: float = 0.3) -> Registrar:
    registrar = Registrar(parse_config(cfg), greet_timeout=greet_timeout)
    await registrar.start()
    return registrar


class HealthServer:
    """A tiny HTTP server whose answer status the test switches."""

    def __init__(self) -> None:
        self.status = 200
        self.server = None

    async def start(self) -> HealthServer:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/health"

    async def _handle(self, reader, writer) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(f"HTTP/1.1 {self.status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode())
            await writer.drain()
        finally:
            writer.close()

    async def close(self) -> None:
        self.server.close()
        await self.server.wait_closed()


def gaps(msgs: list[tuple[float, dict]]) -> list[float]:
    return [b[0] - a[0] for a, b in itertools.pairwise(msgs)]


# --- registration ------------------------------------------------------------------------------------------

async def test_registers_on_interval_with_gorouter_fields(nats_server, observer):
    cfg = config_for(nats_server.url, route(
        "api", app="app-guid-1", private_instance_id="inst-1", private_instance_index=3,
        tags={"component": "api", "shard": 2}, stale_threshold_in_seconds=10,
        route_service_url="https://rs.example.com"))
    cfg["routes"].append({"name": "secure", "host": "127.0.0.2", "tls_port": 9443, "uris": ["s.example.com"],
                          "server_cert_domain_san": "s.internal", "registration_interval": 0.2})
    registrar = await started(cfg)
    try:
        msgs = await observer.wait_for("router.register", 4, uri="api.example.com", timeout=3)
        assert all(0.1 < g < 0.6 for g in gaps(msgs)), gaps(msgs)
        assert msgs[0][1] == {
            "host": "127.0.0.1", "port": 9100, "uris": ["api.example.com"], "app": "app-guid-1",
            "private_instance_id": "inst-1", "private_instance_index": "3",
            "route_service_url": "https://rs.example.com", "stale_threshold_in_seconds": 10,
            "tags": {"component": "api", "shard": "2"},
        }
        secure = (await observer.wait_for("router.register", 1, uri="s.example.com"))[0][1]
        assert secure["host"] == "127.0.0.2" and secure["tls_port"] == 9443 and secure["port"] == 0
        assert secure["server_cert_domain_san"] == "s.internal"
        assert secure["private_instance_id"] == registrar.instance_id  # route-registrar's per-process default
        assert observer.of("router.unregister") == []
    finally:
        await registrar.stop()
    await observer.wait_for("router.unregister", 2)  # stop() unregisters every route
    await asyncio.sleep(0.1)
    assert sorted(p["uris"][0] for _, p in observer.of("router.unregister")) == ["api.example.com", "s.example.com"]


async def test_http_health_check_unregisters_once_then_registers_again(nats_server, observer):
    health = await HealthServer().start()
    cfg = config_for(nats_server.url, route("web", health_check={"name": "web-up", "http_url": health.url,
                                                                  "timeout": "0.15s"}))
    registrar = await started(cfg)
    try:
        await observer.wait_for("router.register", 2)
        health.status = 503
        t_bad = time.monotonic()
        await observer.wait_for("router.unregister", 1, since=t_bad, timeout=2)
        await asyncio.sleep(1.0)  # ~5 more failing checks
        assert len(observer.of("router.unregister", since=t_bad)) == 1
        last_unregister = observer.of("router.unregister", since=t_bad)[0][0]
        assert observer.of("router.register", since=last_unregister) == []
        health.status = 204
        t_good = time.monotonic()
        await observer.wait_for("router.register", 2, since=t_good, timeout=2)
        assert len(observer.of("router.unregister", since=t_bad)) == 1
    finally:
        await registrar.stop()
        await health.close()


async def test_unhealthy_from_the_start_unregisters_once(nats_server, observer):
    cfg = config_for(nats_server.url, route("down", health_check={
        "name": "down", "http_url": "http://127.0.0.1:9/nothing-listens", "timeout": "0.1s"}))
    registrar = await started(cfg)
    try:
        await observer.wait_for("router.unregister", 1)
        await asyncio.sleep(0.7)
        assert len(observer.of("router.unregister")) == 1
        assert observer.of("router.register") == []
    finally:
        await registrar.stop()


async def test_script_health_check_timeout_kills_the_script(nats_server, observer, tmp_path):
    mode = tmp_path / "mode"
    pids = tmp_path / "pids"
    script = tmp_path / "check.sh"
    script.write_text(textwrap.dedent(f"""\
        #!/bin/sh
        echo $$ >> {pids}
        case "$(cat {mode})" in
          ok) exit 0 ;;
          fail) echo "disk full" ; exit 3 ;;
          slow) exec sleep 30 ;;
        esac
        """))
    script.chmod(0o755)
    mode.write_text("ok")
    cfg = config_for(nats_server.url, route("job", registration_interval="0.3s",
                                            health_check={"name": "job-up", "script_path": str(script),
                                                          "timeout": "0.2s"}))
    registrar = await started(cfg)
    try:
        await observer.wait_for("router.register", 2)
        mode.write_text("slow")
        t_slow = time.monotonic()
        await observer.wait_for("router.unregister", 1, since=t_slow, timeout=3)
        await asyncio.sleep(0.7)
        assert len(observer.of("router.unregister", since=t_slow)) == 1
        last = observer.of("router.unregister", since=t_slow)[0][0]
        assert observer.of("router.register", since=last) == []
        t_ok = time.monotonic()
        mode.write_text("ok")

        def still_running() -> list[int]:
            alive = []
            for pid in map(int, pids.read_text().split()):
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    continue
                alive.append(pid)
            return alive

        # every slow script is killed when its timeout runs out: no `sleep 30` is left behind
        await eventually(lambda: not still_running(), timeout=5, message="slow health checks killed")
        await observer.wait_for("router.register", 1, since=t_ok, timeout=3)
        mode.write_text("fail")
        t_fail = time.monotonic()
        await observer.wait_for("router.unregister", 1, since=t_fail, timeout=2)
    finally:
        await registrar.stop()


# --- router.start / router.greet ---------------------------------------------------------------------------

async def test_router_start_registers_at_once_and_adopts_its_interval(nats_server, observer):
    registrar = await started(config_for(nats_server.url, route("api"), route("capped", stale_threshold_in_seconds=2)))
    router = await nats.connect(nats_server.url)
    try:
        await observer.wait_for("router.register", 2, uri="api.example.com")
        start = {"id": "0-abc", "hosts": ["127.0.0.1"], "minimumRegisterIntervalInSeconds": 1,
                 "pruneThresholdInSeconds": 120}
        await router.publish("router.start", json.dumps(start).encode())
        t0 = time.monotonic()
        msgs = await observer.wait_for("router.register", 3, uri="api.example.com", since=t0, timeout=4)
        assert msgs[0][0] - t0 < 0.3  # at once (the next one is due 1s later)
        assert all(0.85 < g < 1.6 for g in gaps(msgs)), gaps(msgs)  # then every second, not every 0.2s
        routes = {s.route.name: s.route for s in registrar.states}
        assert registrar.effective_interval(routes["api"]) == 1.0
        # adopted only up to a third of the route's own TTL, never past the configured interval's floor
        assert registrar.effective_interval(routes["capped"]) == pytest.approx(2 / 3)
        # mid-interval, a second router.start (a restarted router) again gets the routes at once
        await asyncio.sleep(0.4)
        await router.publish("router.start", json.dumps(start).encode())
        t1 = time.monotonic()
        msgs = await observer.wait_for("router.register", 1, uri="api.example.com", since=t1, timeout=2)
        assert msgs[0][0] - t1 < 0.3
    finally:
        await router.close()
        await registrar.stop()


async def test_router_greet_answer_is_adopted_at_startup(nats_server, observer):
    router = await nats.connect(nats_server.url)
    slow_router = await nats.connect(nats_server.url)
    greets = []

    async def answer(msg):
        greets.append(msg)
        await router.publish(msg.reply, json.dumps({"id": "0-r1", "hosts": ["127.0.0.1"],
                                                    "minimumRegisterIntervalInSeconds": 1}).encode())

    async def answer_late(msg):
        await asyncio.sleep(0.2)
        await slow_router.publish(msg.reply, b'{"minimumRegisterIntervalInSeconds": 7}')

    await router.subscribe("router.greet", cb=answer)
    await slow_router.subscribe("router.greet", cb=answer_late)
    await router.flush()
    await slow_router.flush()
    registrar = await started(config_for(nats_server.url, route("api")), greet_timeout=1.0)
    try:
        msgs = await observer.wait_for("router.register", 3, timeout=5)
        assert len(greets) == 1
        assert registrar.router_min_interval == 1.0  # the first answer, not the late one
        assert all(g > 0.85 for g in gaps(msgs[1:])), gaps(msgs)
        await asyncio.sleep(0.3)
        assert registrar.router_min_interval == 1.0
    finally:
        await registrar.stop()
        await router.close()
        await slow_router.close()


# --- the command --------------------------------------------------------------------------------------------

async def test_sigterm_unregisters_every_route_and_exits_0(nats_server, observer, tmp_path):
    health = await HealthServer().start()
    config = tmp_path / "registrar.yml"
    host, port = "127.0.0.1", nats_server.port
    config.write_text(textwrap.dedent(f"""\
        message_bus_servers:
          - host: "{host}:{port}"
        host: 127.0.0.1
        routes:
          - name: one
            port: 9101
            uris: [one.example.com, one.example.org/path]
            registration_interval: 200ms
          - name: two
            port: "9102"
            uris: [two.example.com]
            registration_interval: 0.2
            health_check:
              name: two-up
              http_url: {health.url}
              timeout: 100ms
        """))
    log = (tmp_path / "registrar.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "portico", "registrar", "-c", str(config)],
                            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        await observer.wait_for("router.register", 1, uri="one.example.com", timeout=10)
        await observer.wait_for("router.register", 1, uri="two.example.com", timeout=5)
        assert observer.of("router.unregister") == []
        proc.send_signal(signal.SIGTERM)
        rc = await asyncio.to_thread(proc.wait, 10)
        output = (tmp_path / "registrar.log").read_text()
        assert rc == 0, output
        await observer.wait_for("router.unregister", 2, timeout=2)
        unregistered = sorted(p["port"] for _, p in observer.of("router.unregister"))
        assert unregistered == [9101, 9102]
        assert "Traceback" not in output
        assert "SIGTERM" in output
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
        await health.close()


BAD_CONFIGS = [
    ("routes: [{name: a, port: 80, uris: [a.com]}]", "message_bus_servers"),
    ("nats: nats://127.0.0.1:4222\nroutes: []", "routes"),
    ("nats: nats://127.0.0.1:4222\nhost: h\nroutes: [{name: a, port: 80, uris: [a.com], registration_interval: soon}]",
     "routes[0].registration_interval"),
    ("message_bus_servers: [{host: 10.0.0.1}]\nhost: h\nroutes: [{name: a, port: 80, uris: [a.com]}]",
     "message_bus_servers[0].host"),
    ("nats: nats://127.0.0.1:4222\nhost: h\nroutes: [{name: a, tls_port: 443, uris: [a.com]}]",
     "routes[0].server_cert_domain_san"),
    ("nats: nats://127.0.0.1:4222\nhost: h\nroutes: [{name: a, port: 99999, uris: [a.com]}]", "routes[0].port"),
    ("nats: nats://127.0.0.1:4222\nroutes: [{name: a, port: 80, uris: [a.com]}]", "routes[0].host"),
    ("nats: nats://127.0.0.1:4222\nhost: h\nroutes: [{name: a, port: 80, uris: [a.com], health_check: {name: x}}]",
     "routes[0].health_check"),
    ("nats: nats://127.0.0.1:4222\nhost: h\nroutes: [{name: a, port: 80, uris: [a.com], registration_interval: 2s,"
     " health_check: {name: x, script_path: /bin/true, timeout: 5s}}]", "routes[0].health_check.timeout"),
    ("nats: nats://127.0.0.1:4222\nhost: h\nroutes:\n  - name: a\n    port: [80\n", "bad.yml:6:1: invalid YAML"),
]


@pytest.mark.parametrize("text,key", BAD_CONFIGS)
def test_bad_config_exits_2_naming_the_key(tmp_path, text, key):
    config = tmp_path / "bad.yml"
    config.write_text(text)
    result = CliRunner().invoke(app, ["registrar", "-c", str(config)])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and key in lines[0], result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


@pytest.mark.timeout(180)   # a cold `python -m portico` start on a loaded 2-core machine takes a while
def test_bad_config_from_the_real_command_is_one_line_without_traceback(tmp_path):
    config = tmp_path / "bad.yml"
    config.write_text("nats: nats://127.0.0.1:4222\nhost: h\nroutes: [{name: a, port: 80, uris: []}]\n")
    proc = subprocess.run([sys.executable, "-m", "portico", "registrar", "-c", str(config)], cwd=ROOT,
                          capture_output=True, text=True, timeout=150)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"portico registrar: {config}:3:30: routes[0].uris: must be a non-empty list of routes like app.example.com, "
        "got a list"]


# --- config, pure ------------------------------------------------------------------------------------------

def test_route_registrar_config_is_accepted():
    cfg = parse_config(json.loads("""{
      "message_bus_servers": [{"host": "10.0.0.4:4222", "user": "nats", "password": "p@ss"},
                              {"host": "10.0.0.5:4222", "user": "nats", "password": "p@ss"}],
      "host": "10.0.1.9",
      "routes": [{"name": "uaa", "tls_port": "8443", "port": 8080, "tags": {"component": "uaa"},
                  "uris": ["uaa.sys.example.com", "*.uaa.sys.example.com"],
                  "server_cert_domain_san": "uaa.service.internal",
                  "route_service_url": "https://rs.example.com", "registration_interval": "10s",
                  "health_check": {"name": "uaa-healthcheck", "script_path": "/bin/true"}}]
    }"""))
    assert [s.url for s in cfg.nats] == ["nats://10.0.0.4:4222", "nats://10.0.0.5:4222"]
    assert cfg.nats[0].user == "nats" and cfg.nats[0].password == "p@ss"
    (r,) = cfg.routes
    assert (r.host, r.port, r.tls_port, r.registration_interval) == ("10.0.1.9", 8080, 8443, 10.0)
    assert r.health_check.timeout == 5.0  # route-registrar's default: half the interval
    assert r.message()["tls_port"] == 8443 and r.message()["port"] == 8080


def test_durations():
    assert parse_duration("20s", "k") == 20
    assert parse_duration("1m30s", "k") == 90
    assert parse_duration("250ms", "k") == 0.25
    assert parse_duration(15, "k") == 15
    assert parse_duration("1.5h", "k") == 5400
    for bad in ("", "10", "-5s", "5 s", "0s", True, [1]):
        if bad == "10":
            assert parse_duration(bad, "k", positive=True) == 10  # a number as a string still means seconds
            continue
        with pytest.raises(ConfigError) as info:
            parse_duration(bad, "a.b", positive=True)
        assert info.value.key == "a.b"


def test_registrar_config_errors_name_file_line_and_column(tmp_path):
    from portico.registrar import load_config

    config = tmp_path / "registrar.yml"
    config.write_text("nats: nats://127.0.0.1:4222\nhost: h\nroutes:\n  - name: a\n    port: 80\n    uris: [a.com]\n"
                      "    health_check: {name: x, script_path: /bin/true, timeout: soon}\n")
    with pytest.raises(ConfigError) as info:
        load_config(config)
    err = info.value
    assert (err.path, err.line, err.key) == (str(config), 7, "routes[0].health_check.timeout")
    assert str(err).startswith(f"{config}:7:")
