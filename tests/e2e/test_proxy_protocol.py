"""Issue 11: enable_proxy. PROXY protocol v1 and v2 on the proxy port, from raw sockets and from a real HAProxy
with send-proxy / send-proxy-v2 in front; the client address feeds X-Forwarded-For and the access log."""

from __future__ import annotations

import socket
import ssl
import struct

import pytest
from support import Client, get, unique_host

from portico.confsync.shipped import haproxy_env
from portico.stack.binaries import BinaryNotFound, haproxy_binary
from portico.stack.processes import ManagedProcess, free_port, wait_for_port


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
    wait_for_port(front, timeout=30, process=proc.popen)
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


@pytest.fixture(scope="module")
def tls_prox(router_factory):
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("*.proxytls.test")
    pem = {"cert_chain": "".join(b.bytes().decode() for b in cert.cert_chain_pems),
           "private_key": cert.private_key_pem.bytes().decode()}
    r = router_factory(enable_proxy=True, enable_ssl=True, tls_pem=[pem])
    return r, ca


def _tls_over(sock: socket.socket, ca) -> ssl.SSLSocket:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    return ctx.wrap_socket(sock, server_hostname="app.proxytls.test")


def _tls_get(tls_sock, host: str, path: str) -> dict:
    import json

    tls_sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
    data = b""
    while chunk := tls_sock.recv(65536):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    return {k.lower(): v for k, v in json.loads(body)["headers"]}


@pytest.mark.parametrize("header", [
    b"PROXY TCP4 198.51.100.9 127.0.0.1 40001 443\r\n",
    b"\r\n\r\n\x00\r\nQUIT\n" + bytes([0x21, 0x11]) + struct.pack("!H", 12) + socket.inet_aton("198.51.100.9")
    + socket.inet_aton("127.0.0.1") + struct.pack("!HH", 40001, 443),
    b"",   # no header: served as plain TLS
])
def test_proxy_header_before_the_tls_handshake(tls_prox, backend, header):
    router, ca = tls_prox
    host = "app.proxytls.test"
    router.register(host, backend.port)
    sock = socket.create_connection(("127.0.0.1", router.ssl_port), timeout=10)
    sock.sendall(header)
    with _tls_over(sock, ca) as tls_sock:
        seen = _tls_get(tls_sock, host, "/tls-proxied")
    assert seen["x-forwarded-proto"] == "https"
    assert seen["x-forwarded-for"] == ("198.51.100.9" if header else "127.0.0.1")


def test_real_haproxy_in_tcp_mode_in_front_of_the_tls_port(tls_prox, backend, tmp_path):
    try:
        hb = haproxy_binary()
    except BinaryNotFound as exc:
        pytest.skip(str(exc))
    router, ca = tls_prox
    host = "app.proxytls.test"
    router.register(host, backend.port)
    front = free_port()
    cfg = tmp_path / "haproxy-tcp.cfg"
    cfg.write_text(
        "defaults\n    mode tcp\n    timeout connect 5s\n    timeout client 30s\n    timeout server 30s\n"
        f"frontend f\n    bind 127.0.0.1:{front}\n    default_backend routers\n"
        f"backend routers\n    server r1 127.0.0.1:{router.ssl_port} send-proxy-v2\n")
    proc = ManagedProcess("haproxy", [hb, "-f", str(cfg)], tmp_path / "haproxy-tcp.log", env=haproxy_env(hb)).start()
    try:
        wait_for_port(front, timeout=30, process=proc.popen)
        sock = socket.create_connection(("127.0.0.1", front), timeout=10)
        client_port = sock.getsockname()[1]
        with _tls_over(sock, ca) as tls_sock:
            seen = _tls_get(tls_sock, host, "/through-tcp-haproxy")
        assert seen["x-forwarded-for"] == "127.0.0.1"
        assert _client_field(router, "/through-tcp-haproxy") == f"127.0.0.1:{client_port}"
    finally:
        proc.stop()
