"""`portico routes` as a subprocess against a StatusServer running in a thread of the test process."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from portico.config.settings import RouterConfig, StatusSettings
from portico.routes import Endpoint, RouteTable, make_endpoint
from portico.stack.processes import free_port
from portico.state import RouterState
from portico.status import StatusServer


class ThreadedStatusServer:
    """A StatusServer on its own event loop in a daemon thread, so blocking subprocess calls can talk to it."""

    def __init__(self, config: RouterConfig, table: RouteTable) -> None:
        self.loop = asyncio.new_event_loop()
        self.server = StatusServer(config, table, RouterState())
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(5)
        return self

    def __exit__(self, *exc):
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


def make_table() -> RouteTable:
    table = RouteTable()
    table.register("test.a.com", Endpoint("10.90.2.103", 9100, ttl=0))
    table.register("b.com/api", make_endpoint("10.0.0.2", 8080, tls=True, tags={"component": "web"},
                                         private_instance_id="inst-1"))
    return table


def status_config(older: bool = False, user: str = "admin", password: str = "admin123") -> RouterConfig:
    return RouterConfig(status=StatusSettings(host="127.0.0.1", port=free_port(), user=user, password=password,
                                              routes_port=None if older else free_port()))


def routes_url(config: RouterConfig) -> str:
    return f"http://127.0.0.1:{config.status.routes_port or config.status.port}"


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, COLUMNS="200")
    return subprocess.run([sys.executable, "-m", "portico", "routes", *args], capture_output=True, text=True,
                          timeout=30, env=env)


@pytest.fixture(scope="module")
def running():
    config = status_config()
    with ThreadedStatusServer(config, make_table()):
        yield config


def test_table_output(running):
    result = run_cli("--url", routes_url(running), "--user", "admin", "--password", "admin123")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for text in ("test.a.com", "10.90.2.103:9100", "b.com/api", "10.0.0.2:8080", "inst-1", "component=web"):
        assert text in out
    assert "2 routes, 2 endpoints" in out


def test_json_output_with_credentials_in_url(running):
    url = routes_url(running).replace("http://", "http://admin:admin123@")
    result = run_cli("--url", url, "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["test.a.com"] == [{"address": "10.90.2.103:9100", "availability_zone": "", "protocol": "http1",
                                   "tls": False, "ttl": 0, "tags": None}]


def test_wrong_password_is_one_line_on_stderr(running):
    result = run_cli("--url", routes_url(running), "--user", "admin", "--password", "wrong")
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "401" in lines[0] and "wrong" not in lines[0]


def test_connection_refused():
    result = run_cli("--url", f"http://127.0.0.1:{free_port()}")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot reach" in lines[0]


def test_older_layout_explicit_path():
    config = status_config(older=True)
    with ThreadedStatusServer(config, make_table()):
        result = run_cli("--url", f"http://admin:admin123@127.0.0.1:{config.status.port}/routes", "--json")
    assert result.returncode == 0, result.stderr
    assert "b.com/api" in json.loads(result.stdout)


def _write_config(path: Path, config: RouterConfig, older: bool) -> None:
    status = config.status
    lines = ["status:", "  host: 127.0.0.1", f"  port: {status.port}", f"  user: {status.user}",
             f"  pass: {status.password}"]
    if not older:
        lines += ["  routes:", f"    port: {status.routes_port}"]
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("older", [False, True])
def test_config_file(tmp_path, older):
    pytest.importorskip("portico.config.loader")
    config = status_config(older=older)
    path = tmp_path / "gorouter.yml"
    _write_config(path, config, older)
    with ThreadedStatusServer(config, make_table()):
        result = run_cli("-c", str(path), "--json")
    assert result.returncode == 0, result.stderr
    assert "test.a.com" in json.loads(result.stdout)


def test_missing_config_file(tmp_path):
    pytest.importorskip("portico.config.loader")
    result = run_cli("-c", str(tmp_path / "absent.yml"))
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1


def test_json_of_a_streamed_table_is_copied_through_whole():
    """Over 2,000 routes the router streams /routes in chunks; --json copies them to stdout as they come."""
    table = RouteTable()
    for i in range(5000):
        table.register(f"app{i}.example.com", make_endpoint("10.1.0.1", 1000 + i, private_instance_id=f"i{i}"))
    config = status_config()
    with ThreadedStatusServer(config, table):
        result = run_cli("--url", routes_url(config), "-u", "admin", "-p", "admin123", "--json")
    assert result.returncode == 0, result.stderr
    assert result.stdout.endswith("}\n") and json.loads(result.stdout) == table.snapshot()
