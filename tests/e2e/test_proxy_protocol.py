"""Issue 11: enable_proxy. PROXY protocol v1 and v2 on the proxy port, from raw sockets and from a real HAProxy
with send-proxy / send-proxy-v2 in front; the client address feeds X-Forwarded-For and the access log."""

from __future__ import annotations

import socket
import struct

import pytest

from portico.stack.binaries import BinaryNotFound, haproxy_binary
from portico.stack.processes import ManagedProcess, free_port, wait_for_port
from portico.confsync.shipped import haproxy_env
from support import Client, get, unique_host


@pytest.fixture(scope="module")
def prox_router(router_factory):
    return router_factory(enable_proxy=True)


@pytest.fixture(scope="module")
def phost(prox_router, backend):
    h = unique_host("proxy")
    prox_router.register(h, backend.port)
    return h


def _xff(resp) -> str:
    return {k.lower(): v for k, v in resp.json()["headers"]}["x-forwarded-for"]


def _client_field(router, needle: str) -> str:
    line = router.access_lines(needle)[0]
    return line.split('" "')[2]      # host - [time] "req" status .. "referer" "ua" "client" ...


def test_proxy_v1_header_sets_the_client_address(prox_router, phost):
    with Client(prox_router.port) as c:
        c.send(b"PROXY TCP4 203.0.113.7 127.0.0.1 50123 80\r\n")
        r = c.request("GET", "/v1-once", phost)
        assert r.status == 200 and _xff(r) == "203.0.113.7"
        r = c.request("GET", "/v1-twice", phost)   # the whole connection is that client's
        assert _xff(r) == "203.0.113.7"
    assert _client_field(prox_router, "/v1-once") == "203.0.113.7:50123"


def test_proxy_v2_header_ipv6_and_split_across_reads(prox_router, phost):
    src = socket.inet_pton(socket.AF_INET6, "2001:db8::42")
    dst = socket.inet_pton(socket.AF_INET6, "::1")
    header = (b"\r\n\r\n\x00\r\nQUIT\n" + bytes([0x21, 0x21]) + struct.pack("!H", 36 + 5) + src + dst
              + struct.pack("!HH", 40000, 80) + b"\x04\x00\x02ab")   # one TLV, skipped
    with Client(prox_router.port) as c:
        c.send(header[:7])              # the signature arrives in pieces
        c.send(header[7:20])
        c.send(header[20:])
        r = c.request("GET", "/v2", phost, headers=[("X-Forwarded-For", "10.1.1.1")])
    assert r.status == 200 and _xff(r) == "10.1.1.1, 2001:db8::42"
    assert _client_field(prox_router, "/v2") == "[2001:db8::42]:40000"


def test_no_header_is_plain_http_and_local_keeps_the_peer(prox_router, phost):
    assert _xff(get(prox_router.port, phost, "/plain")) == "127.0.0.1"
    local = b"\r\n\r\n\x00\r\nQUIT\n" + bytes([0x20, 0x00]) + struct.pack("!H", 0)
    with Client(prox_router.port) as c:
        c.send(local)
        assert _xff(c.request("GET", "/local", phost)) == "127.0.0.1"


def test_malformed_header_closes_the_connection(prox_router):
    with Client(prox_router.port) as c:
        c.send(b"PROXY TCP4 not-an-ip 127.0.0.1 1 2\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert c.is_closed()


def _haproxy_in_front(tmp_path, router_port: int, option: str):
    try:
        hb = haproxy_binary()
    except BinaryNotFound as exc:
        pytest.skip(str(exc))
    front = free_port()
    cfg = tmp_path / f"haproxy-{option}.cfg"
    cfg.write_text(
        "defaults\n    mode http\n    timeout connect 5s\n    timeout client 30s\n    timeout server 30s\n"
        f"frontend f\n    bind 127.0.0.1:{front}\n    default_backend routers\n"
        f"backend routers\n    server r1 127.0.0.1:{router_port} {option}\n")
    proc = ManagedProcess("haproxy", [hb, "-f", str(cfg)], tmp_path / f"haproxy-{option}.log",
                          env=haproxy_env(hb)).start()
    wait_for_port(front, timeout=10, process=proc.popen)
    return proc, front


@pytest.mark.parametrize("option", ["send-proxy", "send-proxy-v2"])
def test_real_haproxy_passes_the_client_address(prox_router, phost, tmp_path, option):
    proc, front = _haproxy_in_front(tmp_path, prox_router.port, option)
    try:
        with Client(front) as c:
            client_port = c.sock.getsockname()[1]
            r = c.request("GET", f"/through-{option}", phost)
        assert r.status == 200 and _xff(r) == "127.0.0.1"   # no forwardfor: one address, the client's
        # the router saw the client's own connection (its source port), not HAProxy's
        assert _client_field(prox_router, f"/through-{option}") == f"127.0.0.1:{client_port}"
    finally:
        proc.stop()
