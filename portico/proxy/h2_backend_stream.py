"""One request/response on an HTTP/2 backend connection (portico.proxy.h2_upstream.H2Upstream).

H2Stream is the HTTP/2 side of the backend-connection interface the Exchange uses; see h2_upstream for the
connection and for how flow control runs end to end.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from h2.errors import ErrorCodes
from h2.exceptions import H2Error

from portico.proxy.backend_side import BackendSide
from portico.proxy.errors import reason

if TYPE_CHECKING:
    from portico.proxy.exchange import Exchange
    from portico.proxy.h2_upstream import H2Upstream

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


class H2Stream(BackendSide):
    """One request/response on an H2Upstream: the HTTP/2 side of the backend-connection interface."""

    __slots__ = ("conn", "end_pending", "exchange", "held", "on_used_conn", "reading_paused",
                 "refused", "remote_ended", "sent_end", "stream_id", "trailers_pending", "unacked")

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
        self.flow = None              # the client's Flow while attached: told when this stream cannot send
        self.refused = False          # GOAWAY said the backend never processed it: safe to retry
        self.on_used_conn = False     # sent on a connection that had carried streams before

    # ---- the backend-connection interface -------------------------------------------------------------------

    def attach(self, ex: Exchange) -> None:
        self.exchange = ex

    def detach(self) -> None:
        self.exchange = None

    def reused(self) -> bool:
        """True when the request may not have been processed and may be retried (if idempotent, no body):
        refused (REFUSED_STREAM, GOAWAY past it), or on an earlier-used connection that then went away, as a
        pooled HTTP/1.1 connection the backend had closed."""
        return self.refused

    def send_request(self, head: bytes, chunked: bool, body: list[bytes] | None, ended: bool,
                     trailers: list | None = None) -> None:
        conn = self.conn
        h2 = conn.h2
        self.stream_id = h2.get_next_available_stream_id()
        conn.streams[self.stream_id] = self
        conn.streams_started += 1
        self.on_used_conn = conn.streams_started > 1
        end_now = ended and not body and not trailers
        try:
            h2.send_headers(self.stream_id, request_headers(head, conn.scheme), end_stream=end_now)
        except H2Error as exc:    # the connection cannot take it after all: never sent, so safe to retry
            self.refused = True
            self.lost(StreamError(f"http2: {exc}"))
            return
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
        self._return_unacked()
        if self.stream_id:
            self.conn.stream_done(self)

    def _return_unacked(self) -> None:
        """Bytes held back from a paused client's stream go back to the connection's window when the stream
        ends, or every such stream would shrink the window the connection's other streams share."""
        n, self.unacked = self.unacked, 0
        if n and not self.conn.closed:
            try:
                self.conn.h2.increment_flow_control_window(n)
            except H2Error:
                return
            self.conn.flush()

    # ---- events from the connection -------------------------------------------------------------------------

    def head(self, headers: list, ends_stream: bool = False) -> None:
        ex = self.exchange
        if ex is None:
            return
        self.conn.cork(ex.client)
        status = 0
        fields = []
        canonical = ex.client.reframes_body   # an HTTP/1.1 client: names as Go writes them (Content-Type)
        for name, value in headers:
            if name[:1] == b":":
                if name == b":status":
                    status = int(value)
                continue
            fields.append((canonical_name(name) if canonical else name, value))
        if status == 101:   # RFC 9113 8.6: no 101 in HTTP/2; a backend sending one is broken
            self.abort()
            ex.upstream_lost(self, StreamError("http2: 101 Switching Protocols on a stream"), True)
            return
        status_fields: list = []
        if ends_stream and any(name.lower() in _GRPC_STATUS_FIELDS for name, _ in fields):
            # gRPC's "Trailers-Only" answer (an error with no message) puts its status and all its trailing
            # metadata in the one HEADERS frame. Passed on as trailers (all but content-type), so every client
            # finds them where it looks: an HTTP/2 client gets HEADERS then trailing HEADERS (the usual gRPC
            # shape), an HTTP/1.1 client the last chunk.
            status_fields = [(n, v) for n, v in fields if n.lower() != b"content-type"]
            fields = [(n, v) for n, v in fields if n.lower() == b"content-type"]
        ex.response_head(self, status, reason(status), fields)
        if status_fields and self.exchange is ex:
            ex.response_trailers(status_fields)

    def data(self, chunk: bytes, flow_controlled: int) -> None:
        ex = self.exchange
        if ex is not None and chunk:
            self.conn.cork(ex.client)
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
            canonical = ex.client.reframes_body
            ex.response_trailers([(canonical_name(n) if canonical else n, v) for n, v in headers if n[:1] != b":"])

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
        self.lost(StreamError(f"stream error: stream ID {self.stream_id}; {code_name(error_code)}; "
                              f"received from peer"))

    def lost(self, exc: BaseException | None, malformed: bool = False) -> None:
        ex = self.exchange
        self.exchange = None
        self.held = b""
        self.resume_client()
        self._return_unacked()
        self.conn.streams.pop(self.stream_id, None)
        if ex is not None:
            ex.upstream_lost(self, exc if exc is not None else StreamError("http2: connection closed"),
                             malformed)

    # ---- client reading, paused while this stream cannot send ------------------------------------------------

    def pause_client(self) -> None:
        """Window 0 or the connection's buffer full: the client's Flow stops reading the request body."""
        flow = self.flow
        if flow is not None:
            flow.backend_write_full(self)

    def resume_client(self) -> None:
        """Once detached the Flow took back this stream's pause itself (flow is None then)."""
        flow = self.flow
        if flow is not None:
            flow.backend_write_drained(self)


def canonical_name(name: bytes) -> bytes:
    """`content-type` -> `Content-Type`: HTTP/2's lower-case names as HTTP/1.1 clients get them from Go."""
    known = _CANONICAL.get(name)
    if known is None:
        known = b"-".join(part[:1].upper() + part[1:] for part in name.split(b"-"))
        if len(_CANONICAL) < 4096:   # the names a router sees are few; never grow without bound
            _CANONICAL[name] = known
    return known


_CANONICAL: dict[bytes, bytes] = {}
_GRPC_STATUS_FIELDS = frozenset({b"grpc-status", b"grpc-message", b"grpc-status-details-bin"})


def code_name(code) -> str:
    return getattr(code, "name", str(code))
