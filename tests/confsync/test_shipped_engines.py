"""The shipped HAProxy template exists in Jinja2 (haproxy.cfg.j2) and in confd's Go syntax (haproxy.cfg.tmpl);
both must render the same bytes for the same routers and settings, with and without the optional parts."""

from __future__ import annotations

import json

import pytest

from portico.confsync.render import Renderer
from portico.confsync.resources import load_resources
from portico.confsync.shipped import install_haproxy_resource

ROUTERS = {
    "/portico/routers/router-0": json.dumps({"address": "127.0.0.1:8081", "health_port": 8082, "id": "router-0"}),
    "/portico/routers/router-1": json.dumps({"address": "127.0.0.1:9081", "health_port": 9082, "id": "router-1"}),
    "/portico/routers/plain": "127.0.0.1:7000",
    "/portico/other/ignored": "x",
}

VARIANTS = [
    {},
    {"stats_port": 8404, "maxconn": 20000, "nbthread": 2, "access_log": "stdout format raw local0",
     "send_proxy": True},
]


def _render(tmp_path, engine: str, snapshot: dict[str, str], **extra) -> str:
    confdir = tmp_path / engine
    install_haproxy_resource(confdir, etcd_prefix="/portico", haproxy_cfg=tmp_path / "haproxy.cfg", front_port=8080,
                             haproxy_bin="/usr/sbin/haproxy", master_socket=tmp_path / "master.sock", engine=engine,
                             **extra)
    (resource,) = load_resources(confdir)
    assert resource.engine == engine
    return Renderer(confdir / "templates").render(resource, resource.select(snapshot))


@pytest.mark.parametrize("extra", VARIANTS)
@pytest.mark.parametrize("routers", [ROUTERS, {}])
def test_go_and_jinja2_shipped_templates_render_the_same_file(tmp_path, extra, routers):
    jinja = _render(tmp_path, "jinja2", routers, **extra)
    go = _render(tmp_path, "go", routers, **extra)
    assert go == jinja
    if routers:
        assert "server router-0 127.0.0.1:8081 check port 8082" in go and "server plain 127.0.0.1:7000" in go
    if extra:
        assert "listen portico_stats" in go and "maxconn 20000" in go
