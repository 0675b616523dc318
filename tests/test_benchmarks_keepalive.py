"""The benchmark's Portico keeps as many idle backend connections as its nginx (benchmarks/harness/targets.py):
with gorouter's default of 100 it re-dialled about one backend connection in five requests at 200 connections,
a cost nginx's `keepalive 256` never pays."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

from harness.targets import BACKEND_IDLE_CONNECTIONS, portico_config, start_nginx_backend, start_nginx_proxy

from portico.config.loader import load_config
from portico.config.settings import RouterConfig


def test_the_benchmarks_portico_keeps_as_many_idle_backend_connections_as_nginx(tmp_path) -> None:
    path = tmp_path / "portico.yml"
    path.write_text(portico_config(tmp_path, 4222, 8080, 8081, 8082))
    config = load_config(path)
    assert config.max_idle_conns_per_host == BACKEND_IDLE_CONNECTIONS > 200   # above the 200-connection point
    assert RouterConfig().max_idle_conns_per_host == 100     # Portico's own default stays gorouter's


@pytest.mark.skipif(not shutil.which("nginx"), reason="nginx missing: apt-get install -y nginx")
def test_the_benchmarks_nginx_keeps_the_same_number(tmp_path) -> None:
    nginx = shutil.which("nginx") or "nginx"
    backend = start_nginx_backend(nginx, tmp_path / "backend", None)
    proxy = None
    try:
        proxy = start_nginx_proxy(nginx, backend.port, tmp_path / "proxy", None)
        conf = (tmp_path / "proxy" / "nginx.conf").read_text()
        assert f"keepalive {BACKEND_IDLE_CONNECTIONS};" in conf
    finally:
        if proxy:
            proxy.stop()
        backend.stop()
