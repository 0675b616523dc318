"""HTTP/2 to backends: one connection per endpoint identity carries many streams, each one exchange.

An H2Upstream is the asyncio.Protocol of one HTTP/2 connection to a backend; the `h2` library does the
framing, HPACK and stream states, this module owns the socket. Each request gets an H2Stream, which
implements the same backend-connection interface as the HTTP/1.1 UpstreamConnection (attach, send_request,
send_body, end_body, pause/resume_reading, release, detach, close, abort), so the Exchange does not know
which protocol its backend speaks. No task per stream: everything runs in the connection's callbacks.

Flow control is end to end. Received DATA is acknowledged (the window reopened) only while the client takes
the bytes: a paused stream stops acknowledging and the backend stops sending. A stream that may not send
(window 0) keeps the one chunk it holds and pauses reading from the client until the window opens.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Hashable
from typing import TYPE_CHECKING

from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.errors import ErrorCodes
from h2.events import (
    ConnectionTerminated,
    DataReceived,
    InformationalResponseReceived,
    ResponseReceived,
    StreamEnded,
    StreamReset,
    TrailersReceived,
    WindowUpdated,
)
from h2.exceptions import H2Error
from h2.settings import SettingCodes, Settings

from portico.proxy.errors import reason

if TYPE_CHECKING:
    from portico.proxy.exchange import Exchange
    from portico.proxy.upstream import Connector

log = logging.getLogger("portico.proxy")

# Receive windows. A stream's bounds what one slow client can have in flight beyond its write buffer (Go's
# transport uses 4 MiB); the connection's is large, so one paused stream never starves the others.
STREAM_WINDOW = 1024 * 1024
CONNECTION_WINDOW = 16 * 1024 * 1024
# Request headers that are about one HTTP/1.1 connection and have no place in HTTP/2 (RFC 9113 8.2.2).
_CONNECTION_SPECIFIC = frozenset({b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding",
                                  b"upgrade", b"host"})


class StreamError(ConnectionResetError):
    """The backend reset a stream; reads like Go's http2 stream error in the access log and 502 body."""


def request_headers(head: bytes, scheme: bytes) -> list[tuple[bytes, bytes]]:
    """The HTTP/1.1 request head the router built for this request, as an HTTP/2 header list.

    The head is our own output (request line, forwarded headers, framing headers, blank line), so this reads
    it with a plain split: Host becomes :authority, connection-specific fields are left out, TE only as
    `trailers` (the one value HTTP/2 allows), names in lower case as HTTP/2 requires.
    """
    lines = head.split(b"\r\n")
    method, target, _ = lines[0].split(b" ", 2)
    authority = b""
    fields: list[tuple[bytes, bytes]] = []
    for line in lines[1:]:
        if not line:
            break
        name, _, value = line.partition(b":")
        lname = name.strip().lower()
        value = value.strip()
        if lname in _CONNECTION_SPECIFIC:
            if lname == b"host":
                authority = value
            continue
        if lname == b"te" and value.lower() != b"trailers":
            continue
        fields.append((lname, value))
    if target[:1] not in (b"/", b"*"):
        # absolute form (`GET http://host/path`): HTTP/2 carries the parts in pseudo-headers
        rest = target.split(b"://", 1)[-1]
        host, slash, path = rest.partition(b"/")
        authority = authority or host
        target = slash + path or b"/"
    return [(b":method", method), (b":scheme", scheme), (b":authority", authority), (b":path", target),
            *fields]


class _GracefulH2Connection(H2Connection):
    """h2's connection, except that a GOAWAY received does not end it at once.

    h2 closes its state machine on a GOAWAY, so the answers to streams the backend still finishes (those at or
    below last_stream_id, RFC 9113 6.8) would be protocol errors. Here the GOAWAY only becomes the
    ConnectionTerminated event; H2Upstream then opens no new stream on the connection and closes it when its
    last stream ends.
    """

    def _receive_goaway_frame(self, frame):
        event = ConnectionTerminated()
        try:
            event.error_code = ErrorCodes(frame.error_code)
        except ValueError:
            event.error_code = frame.error_code
        event.last_stream_id = frame.last_stream_id
        event.additional_data = frame.additional_data or None
        return [], [event]


class H2Upstream(asyncio.Protocol):
    """One HTTP/2 connection to a backend, shared by the streams of many exchanges."""

    def __init__(self, connector: Connector, address: str, pool_key: Hashable, tls: bool) -> None:
        self.connector = connector
        self.address = address
        self.pool_key = pool_key
        self.scheme = b"https" if tls else b"http"
        self.h2 = _GracefulH2Connection(H2Configuration(client_side=True, header_encoding=None))
        self.transport: asyncio.Transport = None  # type: ignore[assignment]  # set by connection_made
        self.streams: dict[int, H2Stream] = {}
        self.closed = False
        self.going_away = False      # GOAWAY received: no new streams; open ones at or below its id finish
        self.write_paused = False
        self.streams_started = 0

    # ---- capacity -------------------------------------------------------------------------------------------

    def has_room(self) -> bool:
        """True when one more stream fits under the backend's SETTINGS_MAX_CONCURRENT_STREAMS."""
        if self.closed or self.going_away or self.transport is None or self.transport.is_closing():
            return False
        return len(self.streams) < self.h2.remote_settings.max_concurrent_streams

    def new_stream(self) -> H2Stream:
        return H2Stream(self)

    # ---- asyncio.Protocol -----------------------------------------------------------------------------------

    def connection_made(self, transport) -> None:
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None and ssl_object.selected_alpn_protocol() != "h2":
            # The endpoint answered ALPN with http/1.1 (or nothing): speak HTTP/1.1 on it, as Go does.
            from portico.proxy.upstream import UpstreamConnection
            h1 = UpstreamConnection(self.connector, self.address, tls=True, pool_key=self.pool_key)
            transport.set_protocol(h1)
            h1.connection_made(transport)
            return
        self.transport = transport
        h2 = self.h2
        h2.local_settings = Settings(client=True, initial_values={SettingCodes.INITIAL_WINDOW_SIZE: STREAM_WINDOW,
                                                                  SettingCodes.ENABLE_PUSH: 0})
        h2.initiate_connection()
        h2.increment_flow_control_window(CONNECTION_WINDOW - 65535)
        transport.write(h2.data_to_send())

    def data_received(self, data: bytes) -> None:
        try:
            events = self.h2.receive_data(data)
        except H2Error as exc:
            log.warning("HTTP/2 protocol error from backend %s: %s", self.address, exc)
            self.flush()
            self._lost(exc, malformed=True)
            return
        for event in events:
            self._dispatch(event)
        self.flush()

    def _dispatch(self, event) -> None:
        if isinstance(event, WindowUpdated):
            self._window_opened(event.stream_id)
            return
        if isinstance(event, ConnectionTerminated):
            self._goaway(event.last_stream_id or 0, event.error_code)
            return
        stream = self.streams.get(getattr(event, "stream_id", 0))
        if stream is None:
            if isinstance(event, DataReceived):   # a stream we gave up on: keep the connection's window open
                self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            return
        if isinstance(event, DataReceived):
            stream.data(event.data, event.flow_controlled_length)
        elif isinstance(event, ResponseReceived):
            stream.head(event.headers)
        elif isinstance(event, TrailersReceived):
            stream.trailers(event.headers)
        elif isinstance(event, StreamEnded):
            stream.ended()
        elif isinstance(event, StreamReset):
            stream.reset(event.error_code)
        elif isinstance(event, InformationalResponseReceived):
            stream.head(event.headers)

    def flush(self) -> None:
        data = self.h2.data_to_send()
        if data and not self.closed:
            self.transport.write(data)

    def _window_opened(self, stream_id: int) -> None:
        if stream_id:
            stream = self.streams.get(stream_id)
            if stream is not None:
                stream.window_opened()
            return
        for stream in list(self.streams.values()):
            stream.window_opened()

    def _goaway(self, last_stream_id: int, error_code) -> None:
        """In-flight streams up to last_stream_id finish; later ones were never processed and may be retried."""
        self.going_away = True
        self.connector.forget_h2(self)
        for stream_id, stream in list(self.streams.items()):
            if stream_id > last_stream_id:
                stream.refused = True
                stream.lost(StreamError(f"http2: server sent GOAWAY and closed the connection; "
                                        f"LastStreamID={last_stream_id}, ErrCode={_code_name(error_code)}"))
        if not self.streams:
            self.close()

    def eof_received(self):
        return False

    def connection_lost(self, exc) -> None:
        self._lost(exc)

    def _lost(self, exc: BaseException | None, malformed: bool = False) -> None:
        was_closed = self.closed
        self.closed = True
        self.connector.forget_h2(self)
        for stream in list(self.streams.values()):
            stream.lost(exc, malformed)
        self.streams.clear()
        if not was_closed and self.transport is not None:
            self.transport.abort() if malformed else self.transport.close()

    def pause_writing(self) -> None:
        """The backend is not reading: stop reading the request bodies of every stream's client."""
        self.write_paused = True
        for stream in self.streams.values():
            stream.pause_client()

    def resume_writing(self) -> None:
        self.write_paused = False
        for stream in list(self.streams.values()):
            stream.resume_client()

    # ---- stream bookkeeping ---------------------------------------------------------------------------------

    def stream_done(self, stream: H2Stream) -> None:
        self.streams.pop(stream.stream_id, None)
        if self.going_away and not self.streams:
            self.close()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.connector.forget_h2(self)
            if self.transport is not None:
                try:
                    self.h2.close_connection()
                    self.transport.write(self.h2.data_to_send())
                except H2Error:
                    pass
                self.transport.close()


class H2Stream:
    """One request/response on an H2Upstream: the HTTP/2 side of the backend-connection interface."""

    __slots__ = ("client_paused", "conn", "end_pending", "exchange", "held", "reading_paused", "refused",
                 "remote_ended", "sent_end", "stream_id", "trailers_pending", "unacked")

    def __init__(self, conn: H2Upstream) -> None:
        self.conn = conn
        self.stream_id = 0
        self.exchange: Exchange | None = None
        self.held = b""               # body bytes the flow-control window did not let out yet
        self.end_pending = False      # the body ended while bytes were still held
        self.trailers_pending: list | None = None
        self.sent_end = False
        self.remote_ended = False
        self.reading_paused = False   # the client is slow: received DATA is not acknowledged
        self.unacked = 0
        self.client_paused = False    # we paused reading from the client (window 0 or backend not reading)
        self.refused = False          # GOAWAY said the backend never processed it: safe to retry

    # ---- the backend-connection interface -------------------------------------------------------------------

    def attach(self, ex: Exchange) -> None:
        self.exchange = ex

    def detach(self) -> None:
        self.exchange = None

    def reused(self) -> bool:
        """True when the backend did not process the request (GOAWAY past it): the Exchange may retry."""
        return self.refused

    def send_request(self, head: bytes, chunked: bool, body: list[bytes] | None, ended: bool,
                     trailers: list | None = None) -> None:
        conn = self.conn
        h2 = conn.h2
        self.stream_id = h2.get_next_available_stream_id()
        conn.streams[self.stream_id] = self
        conn.streams_started += 1
        end_now = ended and not body and not trailers
        h2.send_headers(self.stream_id, request_headers(head, conn.scheme), end_stream=end_now)
        self.sent_end = end_now
        if body:
            for chunk in body:
                self._send(chunk)
        if ended and not end_now:
            self.end_body(trailers)
        conn.flush()
        if conn.write_paused:
            self.pause_client()

    def send_body(self, chunk: bytes) -> None:
        if self.sent_end or self.conn.closed:
            return
        self._send(chunk)
        self.conn.flush()

    def _send(self, chunk: bytes) -> None:
        if self.held:
            self.held += chunk
            return
        self.held = chunk
        self._push()

    def _push(self) -> None:
        """Send as much of the held body as the window allows; hold the rest and pause the client."""
        h2 = self.conn.h2
        data = self.held
        sid = self.stream_id
        try:
            while data:
                room = min(h2.local_flow_control_window(sid), h2.max_outbound_frame_size)
                if room <= 0:
                    break
                h2.send_data(sid, data[:room])
                data = data[room:]
        except H2Error:
            data = b""   # the stream closed under us (reset): its end arrives as an event
        self.held = data
        if data:
            self.pause_client()
            return
        if self.end_pending:
            self.end_pending = False
            self._end(self.trailers_pending)
        if not self.conn.write_paused:
            self.resume_client()

    def end_body(self, trailers: list | None = None) -> None:
        if self.sent_end or self.conn.closed or not self.stream_id:
            return
        if self.held:
            self.end_pending = True
            self.trailers_pending = trailers
            return
        self._end(trailers)
        self.conn.flush()

    def _end(self, trailers: list | None) -> None:
        self.sent_end = True
        h2 = self.conn.h2
        try:
            if trailers:
                h2.send_headers(self.stream_id, [(n.lower(), v) for n, v in trailers], end_stream=True)
            else:
                h2.end_stream(self.stream_id)
        except H2Error:
            pass

    def window_opened(self) -> None:
        if self.held:
            self._push()

    def write(self, data: bytes) -> None:
        raise RuntimeError("an HTTP/2 stream cannot become a byte tunnel (upgrades go over HTTP/1.1)")

    def pause_reading(self) -> None:
        self.reading_paused = True

    def resume_reading(self) -> None:
        self.reading_paused = False
        if self.unacked and self.stream_id in self.conn.streams:
            n, self.unacked = self.unacked, 0
            self._acknowledge(n)
            self.conn.flush()

    def release(self) -> None:
        """The exchange ended cleanly; the connection stays for other streams."""
        self.exchange = None
        self._finish()

    def close(self) -> None:
        self.abort()

    def abort(self) -> None:
        """The exchange gave up on this stream: cancel it if it is still open; the connection stays."""
        self.exchange = None
        conn = self.conn
        if self.stream_id in conn.streams and not (self.sent_end and self.remote_ended) and not conn.closed:
            try:
                conn.h2.reset_stream(self.stream_id, ErrorCodes.CANCEL)
            except H2Error:
                pass
            conn.flush()
        self._finish()

    def _finish(self) -> None:
        self.held = b""
        self.resume_client()
        if self.stream_id:
            self.conn.stream_done(self)

    # ---- events from the connection -------------------------------------------------------------------------

    def head(self, headers: list) -> None:
        ex = self.exchange
        if ex is None:
            return
        status = 0
        fields = []
        for name, value in headers:
            if name[:1] == b":":
                if name == b":status":
                    status = int(value)
                continue
            fields.append((name, value))
        ex.response_head(self, status, reason(status), fields)

    def data(self, chunk: bytes, flow_controlled: int) -> None:
        ex = self.exchange
        if ex is not None and chunk:
            ex.response_body(chunk)
        if self.reading_paused and ex is not None:
            self.unacked += flow_controlled
        else:
            self._acknowledge(flow_controlled)

    def _acknowledge(self, n: int) -> None:
        if n:
            try:
                self.conn.h2.acknowledge_received_data(n, self.stream_id)
            except H2Error:
                pass

    def trailers(self, headers: list) -> None:
        ex = self.exchange
        if ex is not None:
            ex.response_trailers([(n, v) for n, v in headers if n[:1] != b":"])

    def ended(self) -> None:
        self.remote_ended = True
        ex = self.exchange
        if ex is not None:
            # Like HTTP/1.1, the stream is reusable only if the request body was sent whole.
            ex.response_done(self, True)

    def reset(self, error_code) -> None:
        if error_code == ErrorCodes.REFUSED_STREAM:
            self.refused = True
        self.remote_ended = self.sent_end = True
        self.lost(StreamError(f"stream error: stream ID {self.stream_id}; {_code_name(error_code)}; "
                              f"received from peer"))

    def lost(self, exc: BaseException | None, malformed: bool = False) -> None:
        ex = self.exchange
        self.exchange = None
        self.held = b""
        self.resume_client()
        self.conn.streams.pop(self.stream_id, None)
        if ex is not None:
            ex.upstream_lost(self, exc if exc is not None else StreamError("http2: connection closed"),
                             malformed)

    # ---- client reading, paused while this stream cannot send ------------------------------------------------

    def pause_client(self) -> None:
        ex = self.exchange
        if not self.client_paused and ex is not None:
            self.client_paused = True
            ex.pause_client_reading()

    def resume_client(self) -> None:
        ex = self.exchange
        if self.client_paused and ex is not None:
            self.client_paused = False
            ex.resume_client_reading()


def _code_name(code) -> str:
    return getattr(code, "name", str(code))
