"""Issue 12, in front, part two: trailers both ways between an HTTP/2 client and an HTTP/1.1 backend, flow
control with a slow reader (only its stream's backend pauses), drain with GOAWAY, the idle timeout, the keys
(enable_http2, enable_h2c, http2_max_concurrent_streams) and h2c behind a PROXY protocol header."""

from __future__ import annotations

import asyncio
import signal
import socket
import ssl
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import trustme
from h2_client import H2Client
from support import Client, loop_thread, unique_host, wait_for


class RawBackend:
    """An HTTP/1.1 backend written by hand for what the shared one does not do.

    /trailers: reads a chunked request body with its trailers, answers a chunked body and trailers
               (grpc-status, and x-echo carrying the request trailer x-req).
    /flood?mb=N: writes N MiB as fast as the router takes them, counting what it has written.
    """

    def __init__(self) -> None:
        self.port = 0
        self.written = 0
        self.trailers: dict = {}
        self.server: asyncio.AbstractServer | None = None

    def start(self) -> RawBackend:
        async def _start():
            self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
            self.port = self.server.sockets[0].getsockname()[1]
        loop_thread().run(_start())
        return self

    def stop(self) -> None:
        async def _stop():
            if self.server is not None:
                self.server.close()
        loop_thread().run(_stop())

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            target = head.split(" ", 2)[1]
            if target.startswith("/trailers-only"):
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/grpc\r\nConnection: close\r\n"
                             b"Transfer-Encoding: chunked\r\n\r\n0\r\ngrpc-status: 5\r\ngrpc-message: gone\r\n\r\n")
                await writer.drain()
            elif target.startswith("/trailers"):
                trailers = self.trailers = {}
                while True:
                    size = int((await reader.readuntil(b"\r\n")).strip(), 16)
                    if size == 0:
                        break
                    await reader.readexactly(size + 2)
                while (line := await reader.readuntil(b"\r\n")) != b"\r\n":
                    name, _, value = line.decode().partition(":")
                    trailers[name.strip().lower()] = value.strip()
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/grpc\r\nConnection: close\r\n"
                             b"Transfer-Encoding: chunked\r\n"
                             b"Trailer: grpc-status, x-echo\r\n\r\n5\r\nhello\r\n0\r\ngrpc-status: 0\r\n"
                             b"x-echo: " + trailers.get("x-req", "none").encode() + b"\r\n\r\n")
                await writer.drain()
            elif target.startswith("/flood"):
                total = int(target.split("mb=")[1]) * 1024 * 1024
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % total)
                chunk = b"z" * 65536
                while self.written < total:
                    writer.write(chunk)
                    self.written += len(chunk)
                    await writer.drain()
            await reader.read()
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            writer.close()


@pytest.fixture(scope="module")
def raw_backend():
    b = RawBackend().start()
    yield b
    b.stop()


@pytest.fixture(scope="module")
def router(router_factory):
    return router_factory()


def test_request_trailers_reach_an_http11_backend(router, raw_backend):
    host = unique_host("h2t")
    router.register(host, raw_backend.port)
    with H2Client(router.port) as c:
        sid = c.request("POST", "/trailers", host, headers=[("te", "trailers")], body=b"request-body",
                        trailers=[("x-req", "from-client")])
        r = c.wait(sid)
        assert r.status == 200 and bytes(r.body) == b"hello"
    assert raw_backend.trailers == {"x-req": "from-client"}


def test_malformed_request_trailers_reset_the_stream(router, raw_backend):
    host = unique_host("h2bt")
    router.register(host, raw_backend.port)
    with H2Client(router.port, validate=False) as c:
        sid = c.request("POST", "/trailers", host, body=b"x", trailers=[("x-req", "a\r\nx-injected: 1")])
        assert c.wait(sid).reset == 1                     # PROTOCOL_ERROR
        assert c.wait(c.request("POST", "/trailers", host, body=b"y", trailers=[("x-req", "ok")])).status == 200


def test_response_trailers_from_an_http11_backend(router, raw_backend):
    host = unique_host("h2rt")
    router.register(host, raw_backend.port)
    with H2Client(router.port) as c:
        r = c.wait(c.request("POST", "/trailers", host, body=b"x", trailers=[("x-req", "1")]))
        assert r.status == 200 and bytes(r.body) == b"hello"
        assert dict(r.trailers) == {b"grpc-status": b"0", b"x-echo": b"1"}
    with socket.create_connection(("127.0.0.1", router.port), timeout=10) as sock:   # and to an HTTP/1.1 client
        sock.sendall(f"POST /trailers HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "1\r\nx\r\n0\r\nx-req: 2\r\n\r\n".encode())
        data = b""
        while not data.endswith(b"\r\n0\r\ngrpc-status: 0\r\nx-echo: 2\r\n\r\n"):
            chunk = sock.recv(65536)
            assert chunk, data
            data += chunk


def test_a_response_without_body_is_one_headers_frame_trailers_included(router, raw_backend):
    """gRPC's trailers-only shape: a client reads the fields of a lone HEADERS+END_STREAM as trailing metadata."""
    host = unique_host("h2to")
    router.register(host, raw_backend.port)
    with H2Client(router.port) as c:
        r = c.get("/trailers-only", host)
        assert r.status == 200 and r.data_frames == 0 and r.trailers == []
        assert r.header("grpc-status") == "5" and r.header("grpc-message") == "gone"


def test_slow_reader_pauses_only_its_own_backend(router, raw_backend, backend):
    host = unique_host("h2slow")
    router.register(host, raw_backend.port)
    other = unique_host("h2other")
    router.register(other, backend.port)
    raw_backend.written = 0
    with H2Client(router.port, auto_ack=False) as c:
        slow = c.request("GET", "/flood?mb=40", host)
        # the stream's window (64 KiB) fills and is never acknowledged; the connection's window is opened
        # wide, so other streams are not starved by it
        c.conn.increment_flow_control_window(2**30)
        c._flush()
        wait_for(lambda: len(c.responses[slow].body) >= 65535 or (c.read_once(0.2) and None), 10, 0.01,
                 "the first window's worth")
        for _ in range(5):
            r = c.wait(c.request("GET", "/echo", other))
            assert r.status == 200
        # the backend of the stalled stream was paused: what it writes levels off, bounded by socket buffers
        deadline = time.monotonic() + 20
        while True:
            before = raw_backend.written
            time.sleep(0.5)
            if raw_backend.written == before or time.monotonic() > deadline:
                break
        assert raw_backend.written == before < 24 * 1024 * 1024, (before, raw_backend.written)
        # opening the window lets it all through
        c.auto_ack = True
        c.ack(slow, len(c.responses[slow].body))
        r = c.wait(slow, timeout=60)
        assert r.status == 200 and len(r.body) == 40 * 1024 * 1024


def test_drain_sends_goaway_and_lets_open_streams_finish(router_factory, backend):
    r = router_factory(drain_wait="0s", drain_timeout="10s")
    host = unique_host("h2drain")
    r.register(host, backend.port)
    with H2Client(r.port) as c:
        assert c.get("/echo", host).status == 200
        slow = c.request("GET", "/slow?s=2", host)
        # drain once the router has the slow stream (it reached the backend), not after a guessed pause: a
        # stream the router has not read yet when it drains is refused by the GOAWAY, as it should be
        def at_backend() -> bool:
            return any(req["path"] == "/slow" and any(k.lower() == "host" and v == host for k, v in req["headers"])
                       for req in list(backend.requests))
        wait_for(at_backend, 10, 0.01, "the slow request at the backend")
        r.process.send_signal(signal.SIGUSR1)
        resp = c.wait(slow, timeout=15)
        assert resp.status == 200
        assert c.goaway is not None and c.goaway.error_code == 0 and c.goaway.last_stream_id == slow
    assert r.process.popen.wait(15) == 0


def test_idle_h2_connection_closes_after_the_idle_timeout(router_factory, backend):
    r = router_factory(frontend_idle_timeout="1s")
    host = unique_host("h2idle")
    r.register(host, backend.port)
    with H2Client(r.port) as c:
        assert c.get("/echo", host).status == 200
        deadline = time.monotonic() + 10
        while not c.closed and time.monotonic() < deadline:
            c.read_once(0.5)
        assert c.closed and c.goaway is not None


def test_h2_connection_without_a_request_closes_after_read_header_timeout(router_factory):
    r = router_factory(read_header_timeout="1s")        # frontend_idle_timeout stays 900 s
    with H2Client(r.port) as c:
        deadline = time.monotonic() + 10
        while not c.closed and time.monotonic() < deadline:
            c.read_once(0.5)
        assert c.closed and c.goaway is not None


def test_keys_turn_h2_off_and_limit_streams(router_factory, backend, tmp_path):
    ca = trustme.CA()
    cert = ca.issue_cert("off.h2.test")
    pem = {"cert_chain": "".join(b.bytes().decode() for b in cert.cert_chain_pems),
           "private_key": cert.private_key_pem.bytes().decode()}
    r = router_factory(enable_ssl=True, tls_pem=[pem], enable_http2=False, enable_h2c=False)
    r.register("off.h2.test", backend.port)
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    with Client(r.ssl_port, ssl_context=ctx, server_hostname="off.h2.test") as c:
        assert c.sock.selected_alpn_protocol() == "http/1.1"
        assert c.request("GET", "/echo", "off.h2.test").status == 200
    with Client(r.port) as c:      # without enable_h2c the preface is just a malformed HTTP/1.1 request
        c.send(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        assert c.read_response().status == 400

    limited = router_factory(http2_max_concurrent_streams=3)
    with H2Client(limited.port) as c:
        wait_for(lambda: c.remote_settings_seen or (c.read_once(0.2) and None), 5, 0.01, "the router's SETTINGS")
        assert c.conn.remote_settings.max_concurrent_streams == 3
        assert c.conn.remote_settings.initial_window_size == 1024 * 1024
    limited.register("limited.h2.test", backend.port)
    with H2Client(limited.port) as c:   # 5 streams before reading the router's SETTINGS: 2 are refused
        sids = [c.request("GET", "/slow?s=1", "limited.h2.test") for _ in range(5)]
        answers = [c.wait(sid) for sid in sids]
        assert sorted(r.status for r in answers) == [0, 0, 200, 200, 200]
        assert [r.reset for r in answers if r.status == 0] == [7, 7]        # REFUSED_STREAM: safe to retry
        assert c.get("/echo", "limited.h2.test").status == 200              # the connection carries on


def test_h2c_and_h2_over_tls_behind_a_proxy_protocol_header(router_factory, backend):
    ca = trustme.CA()
    cert = ca.issue_cert("proxied.h2.test")
    pem = {"cert_chain": "".join(b.bytes().decode() for b in cert.cert_chain_pems),
           "private_key": cert.private_key_pem.bytes().decode()}
    r = router_factory(enable_proxy=True, enable_ssl=True, tls_pem=[pem])
    host = "proxied.h2.test"
    r.register(host, backend.port)
    with H2Client(r.port, preamble=b"PROXY TCP4 203.0.113.9 127.0.0.1 40000 80\r\n") as c:
        resp = c.get("/echo?plain", host)
        assert resp.status == 200 and b'"203.0.113.9"' in bytes(resp.body)
    line = r.access_lines("/echo?plain")[0]
    assert "HTTP/2.0" in line and "203.0.113.9:40000" in line
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    ctx.set_alpn_protocols(["h2"])
    with H2Client(r.ssl_port, ssl_context=ctx, server_hostname=host,
                  preamble=b"PROXY TCP4 203.0.113.10 127.0.0.1 40001 443\r\n") as c:
        resp = c.get("/echo?tls", host)
        assert resp.status == 200 and b'"203.0.113.10"' in bytes(resp.body)
    line = r.access_lines("/echo?tls")[0]
    assert "HTTP/2.0" in line and "203.0.113.10:40001" in line


def test_client_reset_stops_the_exchange_and_the_connection_carries_on(router, backend):
    host = unique_host("h2rst")
    router.register(host, backend.port)
    with H2Client(router.port) as c:
        sid = c.request("GET", "/slow?s=3", host)
        time.sleep(0.3)
        c.conn.reset_stream(sid, 8)     # CANCEL
        c._flush()
        assert c.get("/echo", host).status == 200
    line = router.access_lines("/slow?s=3")[0]
    assert '"GET /slow?s=3 HTTP/2.0" 499' in line


def test_concurrent_clients_on_threads(router, backend):
    host = unique_host("h2many")
    router.register(host, backend.port)

    def one(i: int) -> int:
        with H2Client(router.port) as c:
            sids = [c.request("GET", f"/echo?c={i}&s={j}", host) for j in range(10)]
            return sum(c.wait(s).status == 200 for s in sids)

    with ThreadPoolExecutor(4) as pool:
        assert sum(pool.map(one, range(8))) == 80
