"""The HTTP/2 guard against a real h2 server-side connection, fed real frames in memory (no sockets needed:
the guard's job is what it decides about frames; tests/e2e/test_h2_attacks.py runs the attacks over TCP)."""

from __future__ import annotations

import logging

import pytest
from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.errors import ErrorCodes
from h2.events import DataReceived, RequestReceived
from h2.exceptions import ProtocolError
from hpack import Encoder
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    ExtensionFrame,
    Frame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    PriorityFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

from portico.observe.metrics import RouterMetrics
from portico.proxy.h2_guard import H2Abuse, H2Guard

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
REQUEST = [(":method", "GET"), (":scheme", "http"), (":authority", "a.com"), (":path", "/")]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def server(max_header_bytes: int = 65536, clock: FakeClock | None = None,
           preface: bool = True) -> tuple[H2Connection, H2Guard]:
    conn = H2Connection(H2Configuration(client_side=False))
    guard = H2Guard(max_header_bytes, stall_timeout=5.0, clock=clock or FakeClock())
    guard.install(conn)
    conn.initiate_connection()
    conn.data_to_send()
    if preface:
        conn.receive_data(PREFACE + SettingsFrame(0).serialize())
        conn.data_to_send()
    return conn, guard


def block(encoder: Encoder, headers: list[tuple[str, str]] | None = None) -> bytes:
    return encoder.encode(headers or REQUEST)


def headers_frame(stream_id: int, data: bytes, *flags: str) -> bytes:
    return HeadersFrame(stream_id, data, flags=flags).serialize()


def feed_until_cut(conn: H2Connection, frames: list[bytes]) -> H2Abuse | ProtocolError:
    """Feed frames one by one; the error h2 raised, with GOAWAY queued for the client."""
    with pytest.raises(ProtocolError) as caught:
        for data in frames:
            conn.receive_data(data)
    return caught.value


def goaway_code(conn: H2Connection) -> int:
    out = conn.data_to_send()
    # the last frame queued is the GOAWAY
    frame, length = Frame.parse_frame_header(memoryview(out[-17:][:9]))
    assert isinstance(frame, GoAwayFrame), out[-40:]
    frame.parse_body(memoryview(out[-17 + 9:][:length]))
    return frame.error_code


def test_the_guard_sees_every_frame_and_well_behaved_traffic_passes() -> None:
    """Fails if a new h2 stops passing frames through the hook the guard relies on."""
    conn, guard = server(preface=False)
    client = H2Connection()
    client.initiate_connection()
    conn.receive_data(client.data_to_send())
    for stream_id in range(1, 40, 2):
        client.send_headers(stream_id, REQUEST, end_stream=False)
        client.send_data(stream_id, b"x" * 100, end_stream=True)
        events = conn.receive_data(client.data_to_send())
        assert any(isinstance(e, RequestReceived) for e in events)
        assert any(isinstance(e, DataReceived) for e in events)
        client.ping(b"12345678")
        conn.receive_data(client.data_to_send())
    assert guard.streams_opened == 20
    assert guard.pings.level > 0
    assert conn.decoder.max_header_list_size == 65536
    assert conn.local_settings.max_header_list_size == 65536


def test_rapid_reset_is_cut_off_with_enhance_your_calm() -> None:
    conn, guard = server()
    enc = Encoder()
    frames = []
    for i in range(300):
        stream_id = 1 + 2 * i
        frames.append(headers_frame(stream_id, block(enc), "END_HEADERS", "END_STREAM")
                      + RstStreamFrame(stream_id, error_code=ErrorCodes.CANCEL).serialize())
    exc = feed_until_cut(conn, frames)
    assert isinstance(exc, H2Abuse) and exc.reason == "rapid_reset"
    assert guard.reason_for(exc) == "rapid_reset"
    assert 100 <= guard.streams_reset <= 102
    assert goaway_code(conn) == ErrorCodes.ENHANCE_YOUR_CALM


def test_a_client_cancelling_some_calls_is_not_cut_off() -> None:
    """A busy gRPC client whose deadlines expire on a tenth of its calls, all at once: normal, not an attack."""
    conn, guard = server()
    enc = Encoder()
    for i in range(2000):
        stream_id = 1 + 2 * i
        data = headers_frame(stream_id, block(enc), "END_HEADERS", "END_STREAM")
        if i % 10 == 0:
            data += RstStreamFrame(stream_id, error_code=ErrorCodes.CANCEL).serialize()
        conn.receive_data(data)
        if i % 10:
            conn.send_headers(stream_id, [(":status", "200")], end_stream=True)
    assert guard.streams_reset == 200
    assert not guard.cut_off_reason


@pytest.mark.parametrize("make, reason", [
    (lambda: SettingsFrame(0, settings={SettingsFrame.MAX_CONCURRENT_STREAMS: 100}).serialize(),
     "settings_flood"),
    (lambda: PingFrame(0, opaque_data=b"abcdefgh").serialize(), "ping_flood"),
    (lambda: DataFrame(1, b"").serialize(), "empty_frames"),
    (lambda: PriorityFrame(3, depends_on=0, stream_weight=10).serialize(), "empty_frames"),
    (lambda: ExtensionFrame(0x42, 0, 0, b"").serialize(), "empty_frames"),
    (lambda: WindowUpdateFrame(0, window_increment=1).serialize(), "window_update_flood"),
    (lambda: WindowUpdateFrame(1, window_increment=1).serialize(), "window_update_flood"),
])
def test_floods_of_frames_that_carry_no_request_are_cut_off(make, reason) -> None:
    conn, guard = server()
    # stream 1 open (for the empty DATA frames)
    conn.receive_data(headers_frame(1, block(Encoder()), "END_HEADERS"))
    exc = feed_until_cut(conn, [make() for _ in range(1000)])
    assert guard.reason_for(exc) == reason
    assert goaway_code(conn) == ErrorCodes.ENHANCE_YOUR_CALM


def test_frames_at_a_steady_modest_rate_never_run_a_budget_out() -> None:
    clock = FakeClock()
    conn, guard = server(clock=clock)
    for _ in range(5000):   # 10 PINGs a second for 500 s, and a SETTINGS every second
        clock.now += 0.1
        conn.receive_data(PingFrame(0, opaque_data=b"abcdefgh").serialize())
    for _ in range(500):
        clock.now += 1.0
        conn.receive_data(SettingsFrame(0).serialize())
    assert not guard.cut_off_reason


def test_a_window_update_for_each_data_frame_we_send_is_never_too_many() -> None:
    """A client that returns the window of every DATA frame at once (for the stream and the connection) reads
    a long response at full speed; the updates its DATA frames did not earn are still bounded."""
    conn, guard = server()
    conn.receive_data(headers_frame(1, block(Encoder()), "END_HEADERS", "END_STREAM"))
    conn.send_headers(1, [(":status", "200")])
    for _ in range(3000):                       # 3,000 DATA frames and 6,000 updates, all in the same instant
        conn.send_data(1, b"x" * 1000)
        guard.data_frames_sent(1)
        conn.receive_data(WindowUpdateFrame(1, window_increment=1000).serialize()
                          + WindowUpdateFrame(0, window_increment=1000).serialize())
    assert not guard.cut_off_reason
    for _ in range(3000):                       # earned ahead, then spent: at most WINDOW_UPDATE_CREDIT_CAP of it
        conn.send_data(1, b"x")
        guard.data_frames_sent(1)
    accepted = 0
    with pytest.raises(ProtocolError) as caught:
        for _ in range(6000):
            conn.receive_data(WindowUpdateFrame(0, window_increment=1).serialize())
            accepted += 1
    assert guard.reason_for(caught.value) == "window_update_flood"
    assert accepted == 4096 + 200               # the capped credit, then the burst


def test_h2s_own_continuation_bound_is_reported_as_a_continuation_flood() -> None:
    conn, guard = server()
    data = block(Encoder())
    frames = [headers_frame(1, data[:5])] + [ContinuationFrame(1, data[5:6]).serialize() for _ in range(100)]
    exc = feed_until_cut(conn, frames)
    assert guard.reason_for(exc) == "continuation_flood"


def test_a_header_block_larger_than_the_limit_is_cut_before_it_ends() -> None:
    conn, guard = server(max_header_bytes=4096)
    frames = [headers_frame(1, b"\x00" * 1000)] + [ContinuationFrame(1, b"\x00" * 8000).serialize()
                                                    for _ in range(10)]
    exc = feed_until_cut(conn, frames)
    assert isinstance(exc, H2Abuse) and exc.reason == "continuation_flood"
    assert guard.header_block <= 4096 + 16384 + 8000


def test_empty_continuation_frames_are_cut_off() -> None:
    conn, guard = server()
    frames = [headers_frame(1, b"\x82")] + [ContinuationFrame(1, b"").serialize() for _ in range(1000)]
    exc = feed_until_cut(conn, frames)
    assert guard.reason_for(exc) == "continuation_flood"


def test_hpack_bomb_is_cut_off_before_the_client_acks_our_settings() -> None:
    conn, guard = server(max_header_bytes=16384)
    enc = Encoder()
    big = ("x-bomb", "b" * 4000)
    first = enc.encode([*REQUEST, big])            # puts the 4 kB header in the dynamic table
    conn.receive_data(headers_frame(1, first, "END_HEADERS", "END_STREAM"))
    # each reference to it is one byte on the wire and 4 kB decoded
    bomb = enc.encode(REQUEST) + enc.encode([big]) * 200
    exc = feed_until_cut(conn, [headers_frame(3, bomb, "END_HEADERS", "END_STREAM")])
    assert guard.reason_for(exc) == "hpack_bomb"
    assert goaway_code(conn) == ErrorCodes.ENHANCE_YOUR_CALM


def test_streams_whose_window_stays_shut_past_the_stall_timeout_are_reported() -> None:
    conn, guard = server()              # stall timeout 5 s
    enc = Encoder()
    conn.receive_data(headers_frame(1, block(enc), "END_HEADERS", "END_STREAM")
                      + headers_frame(3, block(enc), "END_HEADERS", "END_STREAM"))
    assert guard.stalled_streams([1, 3], 100.0) == []
    assert guard.stalled_streams([1, 3], 104.0) == []
    conn.receive_data(WindowUpdateFrame(3, window_increment=10).serialize())   # the client reads stream 3
    assert guard.stalled_streams([1, 3], 105.5) == [1]
    assert guard.stalled_streams([1, 3], 109.0) == [1]
    assert guard.stalled_streams([1, 3], 111.0) == [1, 3]
    conn.receive_data(WindowUpdateFrame(0, window_increment=10).serialize())   # the whole connection
    assert guard.stalled_streams([1, 3], 112.0) == []
    assert guard.stalled_streams([3], 118.0) == [3]
    assert guard.stalled_streams([], 119.0) == []
    assert guard.stalled_streams([1], 120.0) == []    # waiting again: a new stall starts


def test_cut_off_counts_and_logs_once(caplog) -> None:
    guard = H2Guard(1024, 5.0)
    metrics = RouterMetrics()
    with caplog.at_level(logging.WARNING, logger="portico.proxy"):
        assert guard.cut_off("ping_flood", "too many", "127.0.0.1:5555", metrics)
        assert not guard.cut_off("protocol_error", "then closed", "127.0.0.1:5555", metrics)
    assert metrics.snapshot()["counters"]["http2_cutoff_ping_flood"] == 1
    assert metrics.snapshot()["counters"]["http2_cutoff_protocol_error"] == 0
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "127.0.0.1:5555" in lines[0] and "ping_flood" in lines[0]


def test_http2_stall_timeout_is_read_from_the_config_file(tmp_path) -> None:
    from portico.config.loader import ConfigError, load_config

    path = tmp_path / "gorouter.yml"
    path.write_text("http2_stall_timeout: 2500ms\n")
    assert load_config(path).http2_stall_timeout == 2.5
    path.write_text("port: 8081\n")
    assert load_config(path).http2_stall_timeout == 60.0
    path.write_text("port: 8081\nhttp2_stall_timeout: soon\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "gorouter.yml:2:" in str(info.value) and "http2_stall_timeout" in str(info.value)


def test_a_dynamic_table_larger_than_we_advertised_is_refused() -> None:
    """The other half of HPACK bombs: the decoder's table stays at the 4 KiB we advertise."""
    conn, guard = server()
    enc = Encoder()
    enc.header_table_size = 1 << 20           # announces a 1 MiB table in the block
    exc = feed_until_cut(conn, [headers_frame(1, enc.encode(REQUEST), "END_HEADERS", "END_STREAM")])
    assert guard.reason_for(exc) == "protocol_error"
    assert goaway_code(conn) == ErrorCodes.PROTOCOL_ERROR      # how h2 answers any HPACK decoding error


def test_streams_we_refuse_count_like_the_clients_resets() -> None:
    conn, guard = server()
    enc = Encoder()
    with pytest.raises(H2Abuse) as caught:
        for i in range(300):
            conn.receive_data(headers_frame(1 + 2 * i, block(enc), "END_HEADERS", "END_STREAM"))
            conn.reset_stream(1 + 2 * i)
            guard.stream_refused()
    assert caught.value.reason == "rapid_reset"
    assert guard.streams_reset == 101
