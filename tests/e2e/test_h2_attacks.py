"""The known HTTP/2 attacks against a real router process, over real sockets (h2c with prior knowledge on the
plain port): each abuser gets GOAWAY and is closed, while a well-behaved HTTP/2 client and an HTTP/1.1 client
on other connections keep getting 200s, during the attack and after it. And SIGUSR1's drain: GOAWAY, open
streams finish, new ones are refused.

The attackers write frames by hand with hyperframe (the h2 library refuses to misbehave); the good HTTP/2 client
is the h2 library's client side.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import trustme
from h2.connection import H2Connection
from h2.errors import ErrorCodes
from h2.events import ResponseReceived, StreamEnded, StreamReset
from hpack import Decoder, Encoder
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    Frame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)
from support import Router, get, signal, unique_host, wait_for

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
MAX_HEADER_BYTES = 65536


def request_headers(host: str, path: str = "/echo", method: str = "GET") -> list[tuple[str, str]]:
    return [(":method", method), (":scheme", "http"), (":authority", host), (":path", path)]


# ---- a raw attacker --------------------------------------------------------------------------------------------


class RawH2:
    """A client connection that writes whatever frames it is given and reads frames back."""

    def __init__(self, port: int, settings: dict[int, int] | None = None, tls: ssl.SSLContext | None = None,
                 server_hostname: str = "") -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        if tls is not None:
            self.sock = tls.wrap_socket(self.sock, server_hostname=server_hostname)
            assert self.sock.selected_alpn_protocol() == "h2"
        self.encoder = Encoder()
        self.buffer = b""
        self.goaway: GoAwayFrame | None = None
        self.frames: list[Frame] = []
        self.closed = False
        self.send(PREFACE + SettingsFrame(0, settings=settings or {}).serialize())

    def send(self, data: bytes) -> bool:
        """False once the router has closed the connection."""
        try:
            self.sock.sendall(data)
            return True
        except OSError:
            return False

    def headers(self, stream_id: int, headers: list[tuple[str, str]], *flags: str) -> bytes:
        return HeadersFrame(stream_id, self.encoder.encode(headers), flags=flags).serialize()

    def read_until_closed(self, timeout: float = 15.0) -> None:
        """Read (and parse) everything the router sends until it closes the connection."""
        if not self.read_frames(None, timeout):
            raise AssertionError("the router did not close the connection")

    def read_frames(self, stop: Callable[[Frame], bool] | None, timeout: float = 15.0) -> bool:
        """Read until a frame satisfies `stop` (True), or the router closes the connection (True, `closed`);
        False when time runs out first."""
        self.sock.settimeout(timeout)
        deadline = time.monotonic() + timeout
        seen = len(self.frames)
        while time.monotonic() < deadline:
            if stop is not None:
                for frame in self.frames[seen:]:
                    if stop(frame):
                        return True
                seen = len(self.frames)
            try:
                data = self.sock.recv(65536)
            except ConnectionResetError:
                data = b""
            if not data:
                self.closed = True
                self.sock.close()
                return True
            self.buffer += data
            self._parse()
        return False

    def _parse(self) -> None:
        while len(self.buffer) >= 9:
            frame, length = Frame.parse_frame_header(memoryview(self.buffer[:9]))
            if len(self.buffer) < 9 + length:
                return
            frame.parse_body(memoryview(self.buffer[9:9 + length]))
            self.buffer = self.buffer[9 + length:]
            self.frames.append(frame)
            if isinstance(frame, GoAwayFrame):
                self.goaway = frame

    def flood(self, frames: Iterator[bytes], batch: int = 100) -> None:
        """Send frames in batches until they run out or the router closes the connection, then read the rest."""
        chunk: list[bytes] = []
        for data in frames:
            chunk.append(data)
            if len(chunk) == batch:
                if not self.send(b"".join(chunk)):
                    break
                chunk = []
        else:
            self.send(b"".join(chunk))
        self.read_until_closed()


# ---- well-behaved clients -------------------------------------------------------------------------------------


class GoodH2:
    """A well-behaved HTTP/2 client (the h2 library) on one connection, one request at a time."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.conn = H2Connection()
        self.conn.initiate_connection()
        self.sock.sendall(self.conn.data_to_send())

    def get(self, host: str, path: str = "/echo") -> int:
        conn = self.conn
        stream_id = conn.get_next_available_stream_id()
        conn.send_headers(stream_id, request_headers(host, path), end_stream=True)
        self.sock.sendall(conn.data_to_send())
        status = 0
        while True:
            data = self.sock.recv(65536)
            assert data, "the router closed a well-behaved HTTP/2 connection"
            for event in conn.receive_data(data):
                if isinstance(event, ResponseReceived) and event.stream_id == stream_id:
                    status = int(dict(event.headers)[b":status"])
                elif getattr(event, "flow_controlled_length", 0):
                    conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                elif isinstance(event, StreamReset) and event.stream_id == stream_id:
                    raise AssertionError(f"stream reset: {event.error_code!r}")
                elif isinstance(event, StreamEnded) and event.stream_id == stream_id:
                    self.sock.sendall(conn.data_to_send())
                    return status
            self.sock.sendall(conn.data_to_send())

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def guarded(router_factory, backend_factory, ca):
    cert = ca.issue_cert("guard.test", "*.guard.test")
    pem = {"cert_chain": "".join(b.bytes().decode() for b in cert.cert_chain_pems),
           "private_key": cert.private_key_pem.bytes().decode()}
    router = router_factory(max_request_header_bytes=MAX_HEADER_BYTES, http2_stall_timeout="2s", enable_ssl=True,
                            tls_pem=[pem])
    backend = backend_factory("h2guard")
    host = unique_host("h2guard").split(".")[0] + ".guard.test"
    router.register(host, backend.port)
    return router, backend, host


def h2_tls(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    ctx.set_alpn_protocols(["h2"])
    return ctx


def check_others_unaffected(router: Router, host: str, attack: Callable[[], None]) -> None:
    """Run `attack` (again and again) in a thread while the good clients ask; they get 200s during and after."""
    good = GoodH2(router.port)
    stop = threading.Event()
    runs: list[int] = []
    errors: list[BaseException] = []

    def attacker() -> None:
        try:
            while not stop.is_set():
                attack()
                runs.append(1)
        except BaseException as exc:  # reported in the test's thread
            errors.append(exc)

    thread = threading.Thread(target=attacker, daemon=True)
    thread.start()
    try:
        wait_for(lambda: runs or errors, timeout=60, message="a first attack run")
        for _ in range(5):      # during
            assert good.get(host) == 200
            assert get(router.port, host, "/echo").status == 200
    finally:
        stop.set()
        thread.join(60)
    if errors:
        raise errors[0]
    assert good.get(host) == 200   # after, on the same connection
    assert get(router.port, host, "/echo").status == 200
    good.close()


def assert_cut_off(router: Router, raw: RawH2, reason: str, code: int = ErrorCodes.ENHANCE_YOUR_CALM) -> None:
    assert raw.closed
    assert raw.goaway is not None, f"no GOAWAY among {[type(f).__name__ for f in raw.frames[-5:]]}"
    assert raw.goaway.error_code == code
    wait_for(lambda: router.varz().get(f"http2_cutoff_{reason}", 0) > 0, timeout=10,
             message=f"http2_cutoff_{reason} counted")
    status, _, body = router._get_status(router.status_port, "/metrics", auth=False)
    assert status == 200
    line = next(x for x in body.decode().splitlines()
                if x.startswith(f'portico_http2_cutoffs_total{{reason="{reason}"}}'))
    assert float(line.split()[-1]) > 0
    assert wait_for(lambda: f"cut off ({reason})" in router.output(), timeout=10, message="the warning line")


def test_rapid_reset_is_cut_off(guarded) -> None:
    router, _, host = guarded
    last: list[RawH2] = []

    def attack() -> None:
        raw = RawH2(router.port)
        last.append(raw)
        raw.flood(raw.headers(sid, request_headers(host), "END_HEADERS", "END_STREAM")
                  + RstStreamFrame(sid, error_code=ErrorCodes.CANCEL).serialize() for sid in range(1, 4001, 2))

    check_others_unaffected(router, host, attack)
    assert_cut_off(router, last[-1], "rapid_reset")


def malformed_flood(raw: RawH2, host: str) -> None:
    bad = [*request_headers(host), ("connection", "keep-alive")]     # connection-specific: malformed in HTTP/2
    raw.flood(raw.headers(sid, bad, "END_HEADERS", "END_STREAM") for sid in range(1, 4001, 2))
    refused = [f for f in raw.frames if isinstance(f, RstStreamFrame)]
    assert refused and all(f.error_code == ErrorCodes.PROTOCOL_ERROR for f in refused)


def continuation_flood(raw: RawH2, host: str) -> None:
    start = raw.headers(1, request_headers(host))           # no END_HEADERS: a block that never ends
    raw.flood(iter([start] + [ContinuationFrame(1, b"\x00" * 16000).serialize() for _ in range(200)]), batch=4)


def hpack_bomb(raw: RawH2, host: str) -> None:
    big = ("x-bomb", "b" * 3900)
    raw.send(raw.headers(1, [*request_headers(host), big], "END_HEADERS", "END_STREAM"))  # into the table
    # 1 byte on the wire per reference to it, 4 kB decoded each: 100 bytes decode to 400 kB (the decoder counts
    # the size as it goes, so nothing but references is needed)
    bomb = raw.encoder.encode([big]) * 100
    assert len(bomb) == 100
    raw.flood(iter([HeadersFrame(3, bomb, flags=("END_HEADERS", "END_STREAM")).serialize()]))


@pytest.mark.parametrize("reason, attack", [
    ("rapid_reset", malformed_flood),           # refused streams count like the client's own resets
    ("continuation_flood", continuation_flood),
    ("hpack_bomb", hpack_bomb),
])
def test_malformed_requests_continuation_floods_and_hpack_bombs_are_cut_off(guarded, reason, attack) -> None:
    router, _, host = guarded
    last: list[RawH2] = []

    def run() -> None:
        raw = RawH2(router.port)
        last.append(raw)
        attack(raw, host)

    check_others_unaffected(router, host, run)
    assert_cut_off(router, last[-1], reason)


@pytest.mark.parametrize("reason, make", [
    ("settings_flood", lambda raw, host: (SettingsFrame(0, settings={SettingsFrame.ENABLE_PUSH: 0}).serialize()
                                          for _ in range(5000))),
    ("ping_flood", lambda raw, host: (PingFrame(0, opaque_data=b"%08d" % i).serialize() for i in range(20000))),
    ("empty_frames", lambda raw, host: iter([raw.headers(1, request_headers(host, method="POST"), "END_HEADERS")]
                                            + [DataFrame(1, b"").serialize() for _ in range(20000)])),
    ("window_update_flood", lambda raw, host: (WindowUpdateFrame(0, window_increment=1).serialize()
                                               for _ in range(20000))),
])
def test_floods_of_control_and_empty_frames_are_cut_off(guarded, reason, make) -> None:
    router, _, host = guarded
    last: list[RawH2] = []

    def attack() -> None:
        raw = RawH2(router.port)
        last.append(raw)
        raw.flood(make(raw, host))

    check_others_unaffected(router, host, attack)
    assert_cut_off(router, last[-1], reason)


def test_a_client_returning_the_window_of_every_data_frame_reads_a_long_response(guarded) -> None:
    """Two WINDOW_UPDATEs (stream and connection) per DATA frame, hundreds of them within a second or two, are
    what a reading client sends: the WINDOW_UPDATE budget counts only updates beyond those."""
    router, _, host = guarded
    raw = RawH2(router.port, settings={SettingsFrame.INITIAL_WINDOW_SIZE: 16384})
    raw.send(raw.headers(1, request_headers(host, "/big?mb=4"), "END_HEADERS", "END_STREAM"))
    got = [0, 0]                                # DATA frames, bytes

    def read(frame: Frame) -> bool:
        if isinstance(frame, DataFrame) and frame.stream_id == 1:
            got[0] += 1
            got[1] += len(frame.data)
            if frame.data:
                raw.send(WindowUpdateFrame(1, window_increment=len(frame.data)).serialize()
                         + WindowUpdateFrame(0, window_increment=len(frame.data)).serialize())
        return frame.stream_id == 1 and "END_STREAM" in frame.flags

    assert raw.read_frames(read, timeout=60)
    assert raw.goaway is None and not raw.closed
    assert got[1] == 4 << 20 and got[0] >= 256      # at least 512 updates sent, far past the plain budget
    raw.sock.close()


def test_a_client_that_never_opens_its_window_is_cut_off_and_its_backend_released(guarded, backend_factory) -> None:
    router, _, host = guarded
    backend = backend_factory("h2stall")        # its own backend: every connection it holds is a stalled stream's
    stall_host = unique_host("h2stall")
    router.register(stall_host, backend.port)
    raw = RawH2(router.port, settings={SettingsFrame.INITIAL_WINDOW_SIZE: 0})
    raw.send(b"".join(raw.headers(sid, request_headers(stall_host, "/big?mb=4"), "END_HEADERS", "END_STREAM")
                      for sid in (1, 3, 5)))
    wait_for(lambda: len(backend.open_writers) == 3, timeout=10, message="the backend answering the three streams")
    check_others_unaffected(router, host, lambda: time.sleep(0.2))   # while the stalled streams hold on
    raw.read_until_closed(timeout=20)                                  # 2 s stall timeout, 1 s sweeps
    assert_cut_off(router, raw, "zero_window")
    wait_for(lambda: not backend.open_writers, timeout=10, message="the stalled streams' backend connections closed")


def test_one_stalled_stream_is_reset_while_the_connection_carries_on(guarded, backend_factory) -> None:
    """A stream whose window stays shut is reset and its backend released; the client's other stream, still
    busy, is answered on the same connection."""
    router, _, host = guarded
    backend = backend_factory("h2stall1")
    stall_host = unique_host("h2stall1")
    router.register(stall_host, backend.port)
    raw = RawH2(router.port, settings={SettingsFrame.INITIAL_WINDOW_SIZE: 0})
    raw.send(raw.headers(1, request_headers(stall_host, "/big?mb=4"), "END_HEADERS", "END_STREAM")
             + raw.headers(3, request_headers(host, "/slow?s=4"), "END_HEADERS", "END_STREAM")
             + WindowUpdateFrame(3, window_increment=1 << 20).serialize())
    assert raw.read_frames(lambda f: isinstance(f, RstStreamFrame) and f.stream_id == 1, timeout=15)
    reset = next(f for f in raw.frames if isinstance(f, RstStreamFrame) and f.stream_id == 1)
    assert reset.error_code == ErrorCodes.CANCEL and raw.goaway is None
    wait_for(lambda: not backend.open_writers, timeout=10, message="the stalled stream's backend connection closed")
    assert "stream 1 waited over 2s for its window; reset" in router.output()
    assert raw.read_frames(lambda f: f.stream_id == 3 and "END_STREAM" in f.flags, timeout=15)
    assert raw.goaway is None and not raw.closed
    decoder = Decoder()
    heads = [(f.stream_id, dict(decoder.decode(f.data))) for f in raw.frames if isinstance(f, HeadersFrame)]
    assert [h[":status"] for sid, h in heads if sid == 3] == ["200"]
    raw.sock.close()


def test_drain_sends_goaway_finishes_open_streams_and_refuses_new_ones(router_factory, backend_factory) -> None:
    router = router_factory(drain_timeout="20s")
    backend = backend_factory("h2drain")
    host = unique_host("h2drain")
    router.register(host, backend.port)
    raw = RawH2(router.port)
    raw.send(raw.headers(1, request_headers(host, "/slow?s=3"), "END_HEADERS", "END_STREAM"))
    wait_for(lambda: any(r["path"].startswith("/slow") for r in backend.requests), timeout=10,
             message="the slow request at the backend")
    router.process.send_signal(signal.SIGUSR1)
    assert raw.read_frames(lambda f: isinstance(f, GoAwayFrame), timeout=10) and raw.goaway is not None
    assert raw.goaway.error_code == ErrorCodes.NO_ERROR
    assert raw.goaway.last_stream_id == 1
    raw.send(raw.headers(3, request_headers(host), "END_HEADERS", "END_STREAM"))   # after GOAWAY: refused
    raw.read_until_closed(timeout=20)                                                # once stream 1 is done
    refused = [f for f in raw.frames if isinstance(f, RstStreamFrame) and f.stream_id == 3]
    assert refused and refused[0].error_code == ErrorCodes.REFUSED_STREAM
    decoder = Decoder()
    heads = [dict(decoder.decode(f.data)) for f in raw.frames if isinstance(f, HeadersFrame) and f.stream_id == 1]
    assert heads and heads[0][":status"] == "200"
    assert any(f.stream_id == 1 and "END_STREAM" in f.flags for f in raw.frames
               if isinstance(f, (DataFrame, HeadersFrame)))
    assert not any(r["path"] == "/echo" for r in backend.requests)
    wait_for(lambda: not router.process.running(), timeout=30, message="the drained router exits")


def test_an_abuser_on_the_tls_port_is_cut_off_too(guarded, ca) -> None:
    """ALPN h2 on ssl_port: the same guard (here a PING flood), and the good clients still served."""
    router, _, host = guarded
    last: list[RawH2] = []

    def attack() -> None:
        raw = RawH2(router.ssl_port, tls=h2_tls(ca), server_hostname=host)
        last.append(raw)
        raw.flood(PingFrame(0, opaque_data=b"%08d" % i).serialize() for i in range(20000))

    check_others_unaffected(router, host, attack)
    assert_cut_off(router, last[-1], "ping_flood")


def test_streams_opened_and_reset_in_one_read_never_reach_the_backend(guarded) -> None:
    """The rapid-reset shape (HEADERS then RST_STREAM) below the guard's bound: no request reaches the app,
    and a request after it on the same connection is answered."""
    router, backend, host = guarded
    raw = RawH2(router.port)
    connections = backend.connections
    pairs = b"".join(raw.headers(sid, request_headers(host, "/reset-probe"), "END_HEADERS", "END_STREAM")
                     + RstStreamFrame(sid, error_code=ErrorCodes.CANCEL).serialize() for sid in range(1, 61, 2))
    assert raw.send(pairs)          # 30 pairs, about 2 KB: one read at the router
    assert raw.send(raw.headers(61, request_headers(host, "/echo"), "END_HEADERS", "END_STREAM"))
    assert raw.read_frames(lambda f: isinstance(f, HeadersFrame) and f.stream_id == 61)
    assert not raw.closed
    probes = [r for r in backend.requests if r["path"] == "/reset-probe"]
    assert len(probes) <= 2, f"{len(probes)} reset streams reached the backend"
    assert backend.connections - connections <= 2, "reset streams made the router dial the backend"
    raw.sock.close()
