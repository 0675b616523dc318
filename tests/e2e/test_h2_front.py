"""Issue 12, in front: clients speak HTTP/2 to the router (ALPN h2 on the TLS port, h2c with prior knowledge on
the plain port), with the h2 library as a client over real sockets, curl --http2 / --http2-prior-knowledge and
h2load. Backends are HTTP/1.1 (tests/e2e/support.Backend)."""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess

import pytest
import trustme
from h2_client import H2Client, H2Response
from support import Client, unique_host, wait_for


@pytest.fixture(scope="module")
def ca():
    return trustme.CA()


def _pem(ca: trustme.CA, name: str) -> dict:
    cert = ca.issue_cert(name, f"*.{name}")
    return {"cert_chain": "".join(b.bytes().decode() for b in cert.cert_chain_pems),
            "private_key": cert.private_key_pem.bytes().decode()}


@pytest.fixture(scope="module")
def h2_router(router_factory, ca):
    return router_factory(enable_ssl=True, tls_pem=[_pem(ca, "h2.test")], backends={"max_attempts": 3},
                          sticky_session_cookie_names=["JSESSIONID"])


@pytest.fixture(scope="module")
def host(h2_router, backend):
    h = unique_host("h2f").split(".")[0] + ".h2.test"
    h2_router.register(h, backend.port)
    return h


def tls_ctx(ca: trustme.CA, alpn=("h2", "http/1.1")) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    ctx.set_alpn_protocols(list(alpn))
    return ctx


def _echo(r) -> dict:
    assert r.status == 200, (r.status, bytes(r.body))
    return json.loads(bytes(r.body))


def _headers(doc: dict) -> dict:
    return {k.lower(): v for k, v in doc["headers"]}


def test_h2c_prior_knowledge_on_the_plain_port(h2_router, host):
    with H2Client(h2_router.port) as c:
        r = c.get("/echo?q=1", host, headers=[("user-agent", "h2-test"), ("cookie", "a=1"), ("cookie", "b=2")])
        doc = _echo(r)
        seen = _headers(doc)
        assert doc["method"] == "GET" and doc["path"] == "/echo?q=1"
        assert seen["host"] == host and seen["x-forwarded-proto"] == "http"
        assert seen["x-forwarded-for"] == "127.0.0.1" and seen["cookie"] == "a=1; b=2"
        assert r.header("x-vcap-request-id") == seen["x-vcap-request-id"]
        assert r.header("content-length") == str(len(r.body))
        assert r.data_frames == 1          # the body and END_STREAM in one DATA frame
    line = h2_router.access_lines("/echo?q=1")[0]
    assert '"GET /echo?q=1 HTTP/2.0" 200' in line


def test_alpn_h2_on_the_tls_port_and_many_streams_at_once(h2_router, host, ca):
    with H2Client(h2_router.ssl_port, ssl_context=tls_ctx(ca), server_hostname=host) as c:
        assert c.sock.selected_alpn_protocol() == "h2"
        sids = [c.request("GET", f"/echo?n={i}", host) for i in range(20)]
        for i, sid in enumerate(sids):
            doc = _echo(c.wait(sid))
            assert doc["path"] == f"/echo?n={i}" and _headers(doc)["x-forwarded-proto"] == "https"
        big = c.wait(c.request("GET", "/big?mb=3", host), timeout=30)   # more than the default windows
        assert big.status == 200 and len(big.body) == 3 * 1024 * 1024


def test_http11_still_served_on_both_ports(h2_router, host, ca):
    with Client(h2_router.port) as c:
        assert c.request("GET", "/echo", host).status == 200
    with Client(h2_router.ssl_port, ssl_context=tls_ctx(ca, ("http/1.1",)), server_hostname=host) as c:
        assert c.sock.selected_alpn_protocol() == "http/1.1"
        assert c.request("GET", "/echo", host).status == 200


def test_request_bodies_chunked_and_with_length(h2_router, host):
    body = bytes(range(256)) * 4096     # 1 MiB: past the stream window, so WINDOW_UPDATEs must come
    with H2Client(h2_router.port) as c:
        doc = _echo(c.wait(c.request("POST", "/echo", host, body=body), timeout=30))
        assert doc["body_len"] == len(body)
        assert _headers(doc)["transfer-encoding"] == "chunked"
        sid = c.request("PUT", "/echo", host, headers=[("content-length", "5")], body=b"hello")
        doc = _echo(c.wait(sid))
        assert doc["body_len"] == 5 and _headers(doc)["content-length"] == "5"


def test_authority_wins_over_a_different_host(h2_router, host):
    with H2Client(h2_router.port, validate=False) as c:
        doc = _echo(c.get("/echo", host, headers=[("host", "elsewhere.h2.test")]))
        assert _headers(doc)["host"] == host and "elsewhere" not in json.dumps(doc["headers"])


def test_local_answers_are_per_stream(h2_router, host):
    with H2Client(h2_router.port) as c:
        unknown = c.get("/x", "nowhere.h2.test")
        assert unknown.status == 404 and b"nowhere.h2.test" in unknown.body
        assert unknown.header("x-cf-routererror") == "unknown_route"
        assert c.get("/echo", host).status == 200          # the connection carries on
        chunked = c.get("/chunked?n=5", host)
        assert chunked.status == 200 and chunked.header("transfer-encoding") is None
        head = c.wait(c.request("HEAD", "/echo", host))
        assert head.status == 200 and not head.body
        assert c.get("/status/204", host).status == 204


@pytest.mark.parametrize("fields", [
    [(":method", "GET"), (":scheme", "http"), (":path", "/echo"), (":authority", "a"), (":authority", "b")],
    [(":method", "GET"), (":scheme", "http"), (":authority", "{host}")],                       # no :path
    [(":method", "GET"), (":scheme", "http"), (":path", "/echo"), (":authority", "{host}"), ("connection", "x")],
    [(":method", "GET"), (":scheme", "http"), (":path", "/echo"), (":authority", "{host}"), ("te", "gzip")],
    [(":method", "GET"), (":scheme", "http"), (":path", "/echo"), ("x-a", "1"), (":authority", "{host}")],
    [(":method", "GET"), (":scheme", "http"), (":path", "/echo"), (":authority", "{host}"), (":protocol", "ws")],
    [(":method", "GET"), (":scheme", "http"), (":path", "/echo"), (":authority", "{host}"), ("x-a", "1\r\nx: y")],
])
def test_malformed_heads_reset_only_their_stream(h2_router, host, fields):
    with H2Client(h2_router.port, validate=False) as c:
        sid = c.conn.get_next_available_stream_id()
        c.conn.send_headers(sid, [(k.encode(), v.replace("{host}", host).encode()) for k, v in fields],
                            end_stream=True)
        c.responses[sid] = H2Response()
        c._flush()
        r = c.wait(sid)
        assert r.reset == 1 and r.status == 0          # PROTOCOL_ERROR, no answer
        assert c.get("/echo", host).status == 200      # the connection and other streams carry on


def test_sticky_sessions_and_100_continue_over_h2(h2_router, backend_factory):
    a, b = backend_factory("sticky-a"), backend_factory("sticky-b")
    sticky = unique_host("h2s").split(".")[0] + ".h2.test"
    h2_router.register(sticky, a.port, instance_id="inst-a", app="g", index=0)
    h2_router.register(sticky, b.port, instance_id="inst-b", app="g", index=1)
    with H2Client(h2_router.port) as c:
        r = c.get("/cookie", sticky)
        cookies = dict(v.decode().split(";")[0].split("=", 1) for k, v in r.headers if k == b"set-cookie")
        assert cookies["__VCAP_ID__"] in ("inst-a", "inst-b"), cookies
        first = _echo(c.get("/cookie", sticky, headers=[("cookie", "JSESSIONID=x"),
                                                          ("cookie", f"__VCAP_ID__={cookies['__VCAP_ID__']}")]))
        for _ in range(4):   # split cookie fields are joined, so the pin holds
            again = _echo(c.get("/echo", sticky, headers=[("cookie", "JSESSIONID=x"),
                                                          ("cookie", f"__VCAP_ID__={cookies['__VCAP_ID__']}")]))
            assert again["name"] == first["name"]
        cont = c.wait(c.request("POST", "/continue", sticky, headers=[("expect", "100-continue")], body=b"abc"))
        assert cont.status == 200 and _echo(cont)["body_len"] == 3


def test_curl_http2_both_ports(h2_router, host, ca, tmp_path):
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl is not installed")
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    out = subprocess.run([curl, "-sS", "--http2-prior-knowledge", "-o", "/dev/null", "-w",
                          "%{http_version} %{http_code}", "-H", f"Host: {host}", f"http://127.0.0.1:{h2_router.port}/echo"],
                         capture_output=True, text=True, timeout=30)
    assert out.stdout == "2 200", out.stderr
    out = subprocess.run([curl, "-sS", "--http2", "--cacert", str(ca_file), "-o", "/dev/null", "-w",
                          "%{http_version} %{http_code}", "--resolve", f"{host}:{h2_router.ssl_port}:127.0.0.1",
                          f"https://{host}:{h2_router.ssl_port}/echo"], capture_output=True, text=True, timeout=30)
    assert out.stdout == "2 200", out.stderr


def test_h2load_smoke(h2_router, host):
    h2load = shutil.which("h2load")
    if h2load is None:
        pytest.skip("h2load is not installed")
    out = subprocess.run([h2load, "-n", "2000", "-c", "4", "-m", "10", "-H", f":authority: {host}",
                          f"http://127.0.0.1:{h2_router.port}/echo"], capture_output=True, text=True, timeout=60)
    assert "2000 succeeded, 0 failed, 0 errored" in out.stdout, out.stdout + out.stderr
    wait_for(lambda: h2_router.varz().get("requests", 0) >= 2000 or None, 5, 0.1, "requests counted")
