"""The shipped HAProxy resource with `send_proxy`: both template syntaxes render the same PROXY-protocol config."""

from __future__ import annotations

import json

import pytest

from portico.confsync.render import Renderer
from portico.confsync.resources import load_resources
from portico.confsync.shipped import install_haproxy_resource

ROUTERS = {"/routers/r1": json.dumps({"id": "r1", "address": "127.0.0.1:9001", "health_port": 9101}),
           "/routers/old": "127.0.0.1:9002"}


def _render(tmp_path, engine: str, send_proxy: bool) -> str:
    confdir = tmp_path / f"{engine}-{send_proxy}"
    install_haproxy_resource(confdir, etcd_prefix="/portico", haproxy_cfg=tmp_path / "haproxy.cfg", front_port=8080,
                             haproxy_bin="/usr/sbin/haproxy", master_socket=tmp_path / "m.sock", engine=engine,
                             send_proxy=send_proxy)
    (resource,) = load_resources(confdir)
    keys = resource.select({f"/portico{k}": v for k, v in ROUTERS.items()})
    return Renderer(confdir / "templates").render(resource, keys)


@pytest.mark.parametrize("send_proxy", [False, True])
def test_both_syntaxes_agree(tmp_path, send_proxy):
    assert _render(tmp_path, "jinja2", send_proxy) == _render(tmp_path, "go", send_proxy)


def test_send_proxy_replaces_forwardfor(tmp_path):
    plain, proxied = _render(tmp_path, "jinja2", False), _render(tmp_path, "jinja2", True)
    assert "option forwardfor" in plain and "send-proxy" not in plain
    assert "option forwardfor" not in proxied
    assert "    server r1 127.0.0.1:9001 check port 9101 inter 1s fall 2 rise 1 send-proxy\n" in proxied
    assert "    server old 127.0.0.1:9002 check inter 1s fall 2 rise 1 send-proxy\n" in proxied
