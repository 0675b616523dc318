"""Issue 3: WebSocket tunnels and sticky sessions through a real router."""

from __future__ import annotations

import socket
import time

import pytest
from support import Client, build_request, get, unique_host
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect


@pytest.fixture(scope="module")
def wrouter(router_factory):
    return router_factory(endpoint_timeout="1s", secure_cookies=True)


def ws_connect(router, host, path="/ws"):
    sock = socket.create_connection(("127.0.0.1", router.port), timeout=5)
    return connect(f"ws://{host}{path}", sock=sock, open_timeout=5, close_timeout=2)


def test_bytes_sent_right_behind_an_upgrade_request_reach_the_backend(wrouter, backend_factory):
    """Early bytes of the new protocol must not be lost, also when the backend connection came from the pool."""
    b = backend_factory("upg")
    h = unique_host("upg")
    wrouter.register(h, b.port)
    assert get(wrouter.port, h).status == 200  # leaves an idle pooled connection to the backend
    with socket.create_connection(("127.0.0.1", wrouter.port), timeout=5) as sock:
        sock.sendall(build_request("GET", "/raw-upgrade", h, [("Connection", "Upgrade"), ("Upgrade", "echo")])
                     + b"EARLY-BYTES")
        got = b""
        while b"EARLY-BYTES" not in got:
            chunk = sock.recv(65536)
            assert chunk, f"connection closed; got {got!r}"
            got += chunk
    assert got.startswith(b"HTTP/1.1 101")


def test_websocket_tunnel_both_ways_outlives_endpoint_timeout(wrouter, backend_factory):
    ws_b = backend_factory("wsb", ws=True)
    host = unique_host("ws")
    wrouter.register(host, ws_b.port)
    with ws_connect(wrouter, host) as ws:
        ws.send("hello")
        assert ws.recv(timeout=5) == "wsb:hello"
        time.sleep(2.2)  # endpoint_timeout is 1s; a tunnel is not cut by it
        ws.send("still here")
        assert ws.recv(timeout=5) == "wsb:still here"
    # the client's close reaches the backend
    assert ws_b.closed_by_peer.wait(5)


def test_websocket_backend_close_closes_client(wrouter, backend_factory):
    ws_b = backend_factory("wsc", ws=True)
    host = unique_host("ws")
    wrouter.register(host, ws_b.port)
    with ws_connect(wrouter, host) as ws:
        ws.send("close-me")
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=5)
        assert info.value.rcvd is not None and info.value.rcvd.code == 4000


def test_websocket_client_drop_closes_backend(wrouter, backend_factory):
    ws_b = backend_factory("wsd", ws=True)
    host = unique_host("ws")
    wrouter.register(host, ws_b.port)
    with ws_connect(wrouter, host) as ws:
        ws.send("x")
        assert ws.recv(timeout=5) == "wsd:x"
        ws.socket.shutdown(socket.SHUT_RDWR)   # abrupt: no close frame
    assert ws_b.closed_by_peer.wait(5)


def test_upgrade_refused_by_backend_passes_response(wrouter, backend):
    host = unique_host("noup")
    wrouter.register(host, backend.port)
    with Client(wrouter.port) as c:
        r = c.request("GET", "/echo", host, [("Connection", "Upgrade"), ("Upgrade", "websocket"),
                                             ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
                                             ("Sec-WebSocket-Version", "13")])
    assert r.status == 200
    assert r.header("X-Refused-Upgrade") == "yes"
    assert r.json()["path"] == "/echo"


def _cookies(resp) -> dict:
    out = {}
    for value in resp.header_all("Set-Cookie"):
        name = value.split("=", 1)[0]
        out[name] = value
    return out


def test_sticky_sessions(wrouter, backend_factory):
    a, b = backend_factory("sa"), backend_factory("sb")
    host = unique_host("sticky")
    wrouter.register(host, a.port, instance_id="inst-a", app="g", index=0)
    wrouter.register(host, b.port, instance_id="inst-b", app="g", index=1)
    r = get(wrouter.port, host, "/cookie")
    cookies = _cookies(r)
    assert "JSESSIONID" in cookies
    served = r.json()["name"]
    inst = "inst-a" if served == "sa" else "inst-b"
    vcap = cookies["__VCAP_ID__"]
    parts = [p.strip() for p in vcap.split(";")]
    assert parts[0] == f"__VCAP_ID__={inst}"
    assert "Path=/" in parts and "HttpOnly" in parts and "Secure" in parts

    sticky = [("Cookie", f"JSESSIONID=abc; __VCAP_ID__={inst}")]
    assert {get(wrouter.port, host, "/", headers=sticky).json()["name"] for _ in range(6)} == {served}
    # only __VCAP_ID__ without a session cookie: not sticky
    loose = [("Cookie", f"__VCAP_ID__={inst}")]
    assert {get(wrouter.port, host, "/", headers=loose).json()["name"] for _ in range(6)} == {"sa", "sb"}
    # the instance goes away: fall back to another
    gone = a if served == "sa" else b
    wrouter.unregister(host, gone.port)
    r = get(wrouter.port, host, "/", headers=sticky)
    assert r.status == 200 and r.json()["name"] != served
    # ... and the response re-points __VCAP_ID__ at the instance that served it (as gorouter)
    other = "inst-b" if inst == "inst-a" else "inst-a"
    repointed = [p.strip() for p in _cookies(r)["__VCAP_ID__"].split(";")]
    assert repointed[0] == f"__VCAP_ID__={other}" and "Path=/" in repointed and "HttpOnly" in repointed
    # served by the instance it asked for: no new cookie
    r = get(wrouter.port, host, "/", headers=[("Cookie", f"JSESSIONID=abc; __VCAP_ID__={other}")])
    assert "__VCAP_ID__" not in _cookies(r)


def test_negative_max_age_gives_max_age_zero_and_positive_is_copied(wrouter, backend_factory):
    a = backend_factory("smaxage")
    host = unique_host("sticky")
    wrouter.register(host, a.port, instance_id="inst-maxage")
    expired = [p.strip() for p in _cookies(get(wrouter.port, host, "/cookie?maxage=-1"))["__VCAP_ID__"].split(";")]
    assert "Max-Age=0" in expired and "Max-Age=-1" not in expired
    kept = [p.strip() for p in _cookies(get(wrouter.port, host, "/cookie?maxage=300"))["__VCAP_ID__"].split(";")]
    assert "Max-Age=300" in kept  # Portico's deliberate difference: the two cookies live as long


def test_sticky_cookie_path_is_context_path(wrouter, backend_factory):
    a = backend_factory("sctx")
    host = unique_host("sticky")
    wrouter.register(f"{host}/shop", a.port, instance_id="inst-ctx")
    r = get(wrouter.port, host, "/shop/cookie")
    vcap = _cookies(r)["__VCAP_ID__"]
    assert "Path=/shop" in [p.strip() for p in vcap.split(";")]


def test_sticky_secure_follows_session_cookie(router, backend_factory):
    # the shared router has secure_cookies off: Secure only when the app's cookie is Secure
    a = backend_factory("ssec")
    host = unique_host("sticky")
    router.register(host, a.port, instance_id="inst-sec")
    plain = _cookies(get(router.port, host, "/cookie"))["__VCAP_ID__"]
    assert "Secure" not in [p.strip() for p in plain.split(";")]
    secure = _cookies(get(router.port, host, "/cookie?secure"))["__VCAP_ID__"]
    assert "Secure" in [p.strip() for p in secure.split(";")]
