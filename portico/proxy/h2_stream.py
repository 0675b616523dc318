"""One HTTP/2 stream as the Exchange's client: the same calls as the HTTP/1.1 ClientConnection.

The Exchange writes its response with `write(bytes)` exactly as it does for HTTP/1.1: first a complete
response head (or a whole local response), then body bytes. A stream turns the head into a HEADERS frame
(status and fields; hop-by-hop ones dropped) and the body into DATA frames. The Exchange never chunk-frames a
stream's body (`reframes_body` is False), so body bytes pass through untouched; only the head, which the router
built itself a moment earlier, is split into fields again (~1 µs, against the h2 library's ~50-100 µs per
stream: cheaper than a second head builder to keep in step with the HTTP/1.1 one).

Flow control, both ways, per stream:
- request body: DATA is acknowledged (WINDOW_UPDATE) only while the Exchange is not holding reading paused,
  i.e. once the backend connection has taken the bytes; while paused the count waits in `_unacked`.
- response body: what the client's window does not admit waits in `_out`, and reading from this stream's
  backend is paused until the window opens; the connection's own write buffer being full pauses every
  stream's backend (H2ClientConnection.pause_writing). The stream's Flow (portico.proxy.flow) does the pausing:
  it knows the backend attached now, and pauses the next one on attach while the window is still shut.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from h2.errors import ErrorCodes

from portico.proxy.client_base import ClientBase
from portico.proxy.flow import Flow

if TYPE_CHECKING:
    from portico.proxy.exchange import Exchange
    from portico.proxy.h2_front import H2ClientConnection

# Response fields that mean nothing (or are forbidden) in HTTP/2 (RFC 9113 8.2.2).
_DROPPED = frozenset({b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade"})
HTTP2 = b"HTTP/2.0"


class H2Stream(ClientBase):
    """The client side of one Exchange carried by an HTTP/2 stream (see the module docstring)."""

    reframes_body = False     # DATA frames delimit the body: the Exchange passes body bytes unframed
    tunnel = None

    __slots__ = (
        "_end_pending",
        "_head",
        "_head_sent",
        "_held",
        "_held_size",
        "_holding",
        "_out",
        "_out_size",
        "_read_paused",
        "_unacked",
        "active",
        "client_addr",
        "closed",
        "conn",
        "ctx",
        "request_ended",
        "response_ended",
        "stream_id",
    )

    def __init__(self, conn: H2ClientConnection, stream_id: int) -> None:
        self.conn = conn
        self.ctx = conn.ctx
        self.stream_id = stream_id
        self.client_ip = conn.client_ip
        self.client_ip_str = conn.client_ip_str
        self.client_addr = conn.client_addr
        self.client_addr_bytes = conn.client_addr_bytes
        self.log_protocol = HTTP2        # the access log's protocol field (ClientBase's slot: set, not a class value)
        self.active: Exchange | None = None
        self.http11 = True               # HTTP/1.1 semantics: never close-delimited (the router sets it too)
        self.closed = False              # reset, or its connection is gone: nothing more is written
        self.request_ended = False
        self.response_ended = False      # END_STREAM sent (or the stream reset)
        self._head_sent = False
        self._out: list = []             # response bytes (and queued trailers) the client's window has not admitted yet
        self._out_size = 0
        self._end_pending = False        # the response is complete once `_out` drains
        self._read_paused = 0
        self._unacked = 0                # request body bytes taken but not yet acknowledged (reading paused)
        self.flow = Flow(self)           # backpressure with the backend serving this stream
        self._held: list[bytes] | None = None     # body bytes to send when the connection next writes
        self._held_size = 0
        self._head: list | None = None            # the response head, likewise
        self._holding = False                     # registered for the connection's next write

    # ---- what the Exchange calls (the client-side interface, as ClientConnection) --------------------------------

    def write(self, data: bytes) -> None:
        if self.closed:
            return
        if not self._head_sent:
            self._write_head(data)
        elif data:
            self._send(data)

    def send_trailers(self, headers: list) -> None:
        """Response trailers: a HEADERS frame that ends the stream (after any body still waiting)."""
        if self.closed:
            return
        fields = [(name.lower(), value) for name, value in headers if name.lower() not in _DROPPED]
        if self._out:
            self._out.append(_Trailers(fields))   # after the body still waiting for the window
            return
        self._end(fields)

    def cork(self) -> None:
        """Nothing to do: the connection already writes once per loop iteration (H2ClientConnection.flush)."""

    def uncork(self) -> None:
        pass

    def attached(self, ex: Exchange) -> bool:
        return self.active is ex and not self.closed

    def peer_certificate(self) -> bytes | None:
        return self.conn.peer_certificate()

    def pause_reading(self) -> None:
        self._read_paused += 1

    def resume_reading(self) -> None:
        if self._read_paused > 0:
            self._read_paused -= 1
            if self._read_paused == 0 and self._unacked:
                unacked, self._unacked = self._unacked, 0
                self.conn.acknowledge(self.stream_id, unacked)

    def exchange_finished(self, ex: Exchange, aborted: bool = False) -> None:
        self.ctx.observe.exchange_done(ex, aborted)
        if self.closed:
            self.conn.stream_done(self)
            return
        if aborted:
            self.reset(ErrorCodes.INTERNAL_ERROR)
            return
        if self.response_ended:   # the Exchange's send_trailers() ended it already
            return
        if self._out:
            self._end_pending = True
            self._sync_backend()
            return
        self._end(None)

    def start_tunnel(self, ex: Exchange, conn, rest: bytes) -> None:
        """Never reached: Upgrade is refused in HTTP/2 heads, so no backend answers 101 to a stream."""
        conn.abort()
        self.reset(ErrorCodes.INTERNAL_ERROR)

    def close(self) -> None:
        self.reset(ErrorCodes.CANCEL)

    # ---- from the connection -------------------------------------------------------------------------------------

    def request_data(self, data: bytes, flow_controlled: int) -> None:
        """A DATA frame's payload: to the Exchange, acknowledged now unless the Exchange holds reading paused."""
        ex = self.active
        if ex is not None:
            ex.request_body(data)
        if self._read_paused and not self.closed:
            self._unacked += flow_controlled
        else:
            self.conn.acknowledge(self.stream_id, flow_controlled)

    def request_trailers(self, trailers: list) -> None:
        ex = self.active
        if ex is not None and not ex.finished:
            ex.request_trailers(trailers)

    def request_done(self) -> None:
        self.request_ended = True
        ex = self.active
        if ex is not None and not ex.finished:
            ex.request_done()

    def window_opened(self) -> None:
        """The client's window grew (WINDOW_UPDATE or SETTINGS): send what waits, then maybe the end."""
        if not self._out or self.closed:
            return
        out, self._out, self._out_size = self._out, [], 0
        for i, piece in enumerate(out):
            if isinstance(piece, _Trailers):
                if self._out:
                    self._out.extend(out[i:])
                    break
                self._end(piece.fields)
                return
            self._send(piece)
        if not self._out and self._end_pending:
            self._end_pending = False
            self._end(None)
            return
        self._sync_backend()

    def lost(self, reason_status: int = 499) -> None:
        """Reset by the client or its connection closed: the Exchange stops, its backend connection is dropped."""
        self.closed = True
        self._out = []
        self._held = None
        self._head = None
        self._resume_backend()
        ex = self.active
        if ex is not None and not ex.finished:
            ex.abandon_upstream()
            ex.finished = True
            ex.status = ex.status or reason_status
            self.ctx.observe.exchange_done(ex, aborted=True)

    def reset(self, code: int) -> None:
        if not self.closed:
            self.conn.reset_stream(self.stream_id, code)
        self.lost()
        self.conn.stream_done(self)

    def sync_backend(self) -> None:
        self._sync_backend()

    @property
    def waiting_for_window(self) -> bool:
        """Response bytes wait for the client to open its flow-control window (h2_guard times this)."""
        return bool(self._out) and not self.closed

    @property
    def busy(self) -> bool:
        """An answer is still owed or still being written."""
        return not self.response_ended and not self.closed

    # ---- internals -------------------------------------------------------------------------------------------------

    def _write_head(self, data: bytes) -> None:
        end = data.find(b"\r\n\r\n")
        if end < 0:        # the Exchange writes heads whole; anything else is a bug of ours
            self.reset(ErrorCodes.INTERNAL_ERROR)
            return
        lines = data[:end].split(b"\r\n")
        status = lines[0][9:12]
        fields = [(b":status", status)]
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.lower()
            if name not in _DROPPED:
                fields.append((name, value.strip()))
        if status[:1] == b"1":           # 100 Continue, 103 Early Hints: the final head follows
            self.conn.send_headers(self.stream_id, fields, False)
            return
        self._head_sent = True
        self._head = fields          # sent with the connection's next write: see _end for why
        self._hold()
        body = data[end + 4:]
        if body:
            self._send(body)

    def _send(self, data: bytes) -> None:
        """Body bytes wait (`_held`) until the connection writes, once per loop iteration: a response that
        ends in the same iteration then goes as one DATA frame carrying END_STREAM, not two frames."""
        if self._out:
            self._out.append(data)
            self._out_size += len(data)
            return
        if self._held is None:
            self._held = [data]
            self._held_size = len(data)
        else:
            self._held.append(data)
            self._held_size += len(data)
        self._hold()
        if self._held_size > _HOLD_LIMIT:
            # A fast backend can deliver many reads before the connection next writes; without this its
            # bytes would pile up here, acknowledged to the backend before the client's window was known.
            self._pause_backend()

    def _hold(self) -> None:
        if not self._holding:
            self._holding = True
            self.conn.hold(self)

    def release_held(self) -> None:
        """The connection is about to write: send the held head and body, as far as the window admits."""
        self._holding = False
        if self.closed:
            return
        self._send_head(False)
        held = self._take_held()
        if held and self._push(held, False) and self.flow.backend_stops:
            self._sync_backend()     # all of it went: a backend paused for holding too much reads again

    def _send_head(self, end: bool) -> None:
        head = self._head
        if head is not None:
            self._head = None
            self.conn.send_headers(self.stream_id, head, end)

    def _take_held(self) -> bytes:
        held, self._held = self._held, None
        self._held_size = 0
        if not held:
            return b""
        return held[0] if len(held) == 1 else b"".join(held)

    def _push(self, data: bytes, end: bool) -> bool:
        """DATA as the window admits (END_STREAM on the last frame when `end`); the rest waits in `_out`."""
        sent = self.conn.send_data(self.stream_id, data, end)
        if sent < len(data):
            self._out.append(data[sent:])
            self._out_size += len(data) - sent
            self._sync_backend()
            return False
        return True

    def _end(self, trailers: list | None) -> None:
        held = self._take_held()
        ended = False
        if self._head is not None and not held:
            # No body: one HEADERS frame with END_STREAM, trailers (if any) in it. gRPC's "trailers-only"
            # answer (an error status, or no message) must keep that shape: split in two, a client reads the
            # first block's fields as initial metadata, not as the trailing metadata they are.
            if trailers is not None:
                self._head += trailers
                trailers = None
            self._send_head(True)
            ended = True
        else:
            self._send_head(False)
        if held:
            if not self._push(held, trailers is None):
                if trailers is not None:
                    self._out.append(_Trailers(trailers))
                self._end_pending = trailers is None
                return
            ended = trailers is None
        self.response_ended = True
        self._end_pending = False
        self._resume_backend()
        self.conn.end_stream(self.stream_id, trailers, cancel_request=not self.request_ended, ended=ended)
        self.conn.stream_done(self)

    def _sync_backend(self) -> None:
        """Backend reading is paused while this stream's output waits or the connection's buffer is full."""
        if self._out or self.conn.write_blocked:
            self._pause_backend()
        else:
            self._resume_backend()

    def _pause_backend(self) -> None:
        self.flow.client_write_full()

    def _resume_backend(self) -> None:
        self.flow.client_write_drained()


_HOLD_LIMIT = 256 * 1024     # body bytes a stream holds between two writes of its connection before pausing its backend


class _Trailers:
    """Response trailers queued behind body bytes still waiting for the client's window."""

    __slots__ = ("fields",)

    def __init__(self, fields: list) -> None:
        self.fields = fields
