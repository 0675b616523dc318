"""Clients speaking HTTP/2 to the router: one asyncio.Protocol per connection, the h2 library for the framing.

A connection arrives here in one of two ways, decided once per connection so HTTP/1.1 pays nothing per request:
ALPN chose `h2` in the TLS handshake (TlsClientConnection), or the first bytes on the plain port were the
HTTP/2 connection preface (ClientConnection hands itself over, PROXY header already read). Each request stream
becomes an Exchange through the same RequestRouter.route as HTTP/1.1, with an H2Stream as its client; no task
is made per stream or per connection.

The abuse defences (portico.proxy.h2_guard) see every frame inside h2's frame buffer and stop an abuser by
raising from `receive_data`; this class then cuts the client off (`cut_off`), and its once-a-second sweep asks
the guard which streams have waited too long for the client's window.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from h2.errors import ErrorCodes
from h2.events import (
    ConnectionTerminated,
    DataReceived,
    RemoteSettingsChanged,
    RequestReceived,
    StreamEnded,
    StreamReset,
    TrailersReceived,
    WindowUpdated,
)
from h2.exceptions import FlowControlError, ProtocolError, StreamClosedError
from h2.settings import SettingCodes
from hyperframe.frame import GoAwayFrame

from portico.proxy.downstream import ClientConnection
from portico.proxy.h2_guard import H2Abuse, H2Guard
from portico.proxy.h2_request import MalformedRequest, NotOffered, RequestHead, request_fields, trailer_fields
from portico.proxy.h2_server import CONNECTION_WINDOW, server_connection
from portico.proxy.h2_stream import H2Stream

if TYPE_CHECKING:
    from portico.proxy.context import ProxyContext

log = logging.getLogger("portico.proxy")

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def starts_with_preface(data: bytes) -> bool:
    """True when the first bytes of a plain connection are (the start of) the HTTP/2 preface."""
    n = len(data)
    return data[:24] == PREFACE if n >= 24 else n >= 3 and PREFACE[:n] == data


class H2ClientConnection(asyncio.Protocol):
    """One client connection speaking HTTP/2 (see the module docstring)."""

    tunnel = None
    log_protocol = b"HTTP/2.0"

    def __init__(self, ctx: ProxyContext) -> None:
        self.ctx = ctx
        self.transport: asyncio.Transport = None  # type: ignore[assignment]  # set by start()
        config = ctx.config
        self.h2 = server_connection(config.http2_max_concurrent_streams, config.max_request_header_bytes)
        # sees every frame before h2 acts on it, caps header decoding, times window stalls (h2_guard)
        self.guard = H2Guard(config.max_request_header_bytes, config.http2_stall_timeout)
        self.guard.install(self.h2)
        self.streams: dict[int, H2Stream] = {}
        self._reset_now: set[int] | tuple = ()       # streams the client reset in the read being handled
        self.client_ip = b""
        self.client_ip_str = ""
        self.client_addr = ""
        self.client_addr_bytes = b""
        self.closed = False
        self.write_blocked = False     # our transport's write buffer is full
        self.draining = False          # GOAWAY sent: no new streams, close when the open ones end
        self.last_activity = 0.0
        self.started_at = 0.0
        self._holding: list[H2Stream] = []     # streams with body bytes for the next write_out
        self._flush_handle: asyncio.Handle | None = None     # a write_out() scheduled for this loop iteration
        self._last_stream_id = 0       # the highest stream id accepted (GOAWAY names it)

    # ---- starting: from a listener or handed over by an HTTP/1.1 connection -------------------------------------

    def connection_made(self, transport) -> None:
        """A connection accepted for HTTP/2 directly (TLS with ALPN h2)."""
        peer = transport.get_extra_info("peername")
        if peer:
            self.set_client_address(peer[0], peer[1])
        self.ctx.metrics.open_client_connections += 1
        self.ctx.admission.opened()
        self.start(transport)

    def take_over(self, old, data: bytes) -> None:
        """Continue a connection accepted as HTTP/1.1 (already counted) whose first bytes are the preface."""
        self.client_ip, self.client_ip_str = old.client_ip, old.client_ip_str
        self.client_addr, self.client_addr_bytes = old.client_addr, old.client_addr_bytes
        transport = old.transport
        self.ctx.connections.discard(old)
        old.closed = True
        transport.set_protocol(self)
        self.start(transport)
        self.data_received(data)

    def start(self, transport) -> None:
        self.transport = transport
        self.last_activity = self.started_at = self.ctx.loop.time()
        self.ctx.connections.add(self)
        self.h2.initiate_connection()
        self.h2.increment_flow_control_window(CONNECTION_WINDOW - 65535)
        self.flush()

    def set_client_address(self, ip: str, port: int) -> None:
        self.client_ip = ip.encode()
        self.client_ip_str = ip
        self.client_addr = f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"
        self.client_addr_bytes = self.client_addr.encode()

    def peer_certificate(self) -> bytes | None:
        ssl_object = self.transport.get_extra_info("ssl_object") if self.transport is not None else None
        if ssl_object is None:
            return None
        return ssl_object.getpeercert(binary_form=True) or b""

    # ---- asyncio.Protocol -------------------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        self.last_activity = self.ctx.loop.time()
        try:
            events = self.h2.receive_data(data)
        except ProtocolError as exc:
            # A connection error (bad preface, bad frame...) or abuse the guard stopped: h2 has queued GOAWAY
            # with the fitting code; it goes out as the connection closes.
            self.cut_off(self.guard.reason_for(exc), str(exc))
            return
        # A stream opened and reset in the same read never reaches routing: a rapid-reset flood (HEADERS then
        # RST_STREAM) costs the backends nothing, and the guard still counts every reset.
        self._reset_now = {e.stream_id for e in events if type(e) is StreamReset} if len(events) > 1 else ()
        for event in events:
            if self.closed:     # cut off while handling this read
                return
            self._on_event(event)
        self.flush()

    def connection_lost(self, exc) -> None:
        self.closed = True
        self.ctx.connections.discard(self)
        self.ctx.metrics.open_client_connections -= 1
        self.ctx.admission.closed()
        for stream in list(self.streams.values()):
            stream.lost()
        self.streams.clear()

    def pause_writing(self) -> None:
        self.write_blocked = True
        for stream in self.streams.values():
            stream.sync_backend()

    def resume_writing(self) -> None:
        self.write_blocked = False
        for stream in list(self.streams.values()):
            stream.sync_backend()

    # ---- h2 events ----------------------------------------------------------------------------------------------

    def _on_event(self, event) -> None:
        kind = type(event)
        if kind is RequestReceived:
            self._request_received(event)
        elif kind is DataReceived:
            stream = self.streams.get(event.stream_id)
            if stream is not None:
                stream.request_data(event.data, event.flow_controlled_length)
            else:   # a stream we already answered or reset: keep the connection's window open
                self.acknowledge(event.stream_id, event.flow_controlled_length)
        elif kind is StreamEnded:
            stream = self.streams.get(event.stream_id)
            if stream is not None and not stream.request_ended:
                stream.request_done()
        elif kind is TrailersReceived:
            stream = self.streams.get(event.stream_id)
            if stream is not None:
                try:
                    trailers = trailer_fields(event.headers)
                except MalformedRequest:
                    self.ctx.metrics.bad_requests += 1
                    stream.reset(ErrorCodes.PROTOCOL_ERROR)
                    return
                stream.request_trailers(trailers)   # StreamEnded follows
        elif kind is WindowUpdated:
            if event.stream_id == 0:
                self._windows_opened()
            else:
                stream = self.streams.get(event.stream_id)
                if stream is not None:
                    stream.window_opened()
        elif kind is RemoteSettingsChanged:
            if SettingCodes.INITIAL_WINDOW_SIZE in event.changed_settings:
                self._windows_opened()
        elif kind is StreamReset:
            stream = self.streams.pop(event.stream_id, None)
            if stream is not None:
                stream.lost()
        elif kind is ConnectionTerminated:
            self.draining = True     # the client said GOAWAY: finish what is open, then close
            if not self.streams:
                self.close()

    def _request_received(self, event: RequestReceived) -> None:
        stream_id = event.stream_id
        if stream_id in self._reset_now:
            return
        if self.draining:
            self.reset_stream(stream_id, ErrorCodes.REFUSED_STREAM)
            return
        self._last_stream_id = stream_id
        ctx = self.ctx
        if len(self.streams) >= ctx.config.http2_max_concurrent_streams:
            self.reset_stream(stream_id, ErrorCodes.REFUSED_STREAM)    # the client may retry it: never began
            return
        stream = H2Stream(self, stream_id)
        try:
            method, target, headers = request_fields(event.headers, event.stream_ended is None)
        except NotOffered:
            self.send_headers(stream_id, [(b":status", b"405"), (b"content-length", b"0")], True)
            return
        except MalformedRequest as exc:
            ctx.metrics.bad_requests += 1
            log.info("malformed HTTP/2 request from %s on stream %d: %s", self.client_addr, stream_id, exc)
            self.reset_stream(stream_id, ErrorCodes.PROTOCOL_ERROR)
            try:
                self.guard.stream_refused()
            except H2Abuse as abuse:
                self.cut_off(abuse.reason, f"{abuse} (malformed requests)", ErrorCodes.ENHANCE_YOUR_CALM)
            return
        if len(target) > ctx.max_uri_bytes:
            self.send_headers(stream_id, [(b":status", b"414"), (b"content-length", b"0")], True)
            return
        if len(headers) > ctx.max_header_count:
            self.send_headers(stream_id, [(b":status", b"431"), (b"content-length", b"0")], True)
            return
        self.streams[stream_id] = stream
        ex = ctx.router.route(stream, RequestHead(method), target, headers)
        stream.active = ex
        ex.start()      # a request without body: h2 reports StreamEnded next, which ends it

    def _windows_opened(self) -> None:
        for stream in list(self.streams.values()):
            stream.window_opened()

    # ---- used by streams ---------------------------------------------------------------------------------------

    def send_headers(self, stream_id: int, fields: list, end: bool) -> None:
        try:
            self.h2.send_headers(stream_id, fields, end_stream=end)
        except (StreamClosedError, ProtocolError):
            return
        self.flush()

    def send_data(self, stream_id: int, data: bytes, end: bool = False) -> int:
        """Send what the client's windows admit now (END_STREAM with the last byte when `end`); returns how
        many bytes went."""
        h2 = self.h2
        try:
            room = h2.local_flow_control_window(stream_id)
        except (StreamClosedError, ProtocolError):
            return len(data)       # the stream is gone: nothing more goes out on it
        frame = h2.max_outbound_frame_size
        sent = frames = 0
        size = len(data)
        while sent < size and room > 0:
            n = min(size - sent, room, frame)
            try:
                h2.send_data(stream_id, data[sent:sent + n] if n < size else data, end_stream=end and sent + n == size)
            except (StreamClosedError, FlowControlError, ProtocolError):
                return size
            sent += n
            room -= n
            frames += 1
        self.guard.data_frames_sent(frames)
        self.flush()
        return sent

    def end_stream(self, stream_id: int, trailers: list | None, cancel_request: bool, ended: bool = False) -> None:
        h2 = self.h2
        try:
            if trailers is not None:
                h2.send_headers(stream_id, trailers, end_stream=True)
            elif not ended:       # (ended: the last DATA frame carried END_STREAM)
                h2.end_stream(stream_id)
            if cancel_request:
                # RFC 9113 8.1: the response is complete; the client may stop sending its body
                h2.reset_stream(stream_id, ErrorCodes.NO_ERROR)
        except (StreamClosedError, ProtocolError):
            pass
        self.flush()

    def reset_stream(self, stream_id: int, code: int) -> None:
        try:
            self.h2.reset_stream(stream_id, code)
        except (StreamClosedError, ProtocolError):
            pass
        self.flush()

    def acknowledge(self, stream_id: int, size: int) -> None:
        if size and not self.closed:
            try:
                self.h2.acknowledge_received_data(size, stream_id)
            except ProtocolError:
                pass
            self.flush()

    def stream_done(self, stream: H2Stream) -> None:
        if self.streams.get(stream.stream_id) is stream:
            del self.streams[stream.stream_id]
        self.last_activity = self.ctx.loop.time()
        if self.draining and not self.streams:
            self.close()

    def flush(self) -> None:
        """Write what h2 has queued, once per loop iteration: the frames of every stream answered in this
        iteration (each from its own backend read) leave in one send instead of one send per response."""
        if self._flush_handle is None and self.transport is not None:
            self._flush_handle = self.ctx.loop.call_soon(self.write_out)

    def hold(self, stream: H2Stream) -> None:
        """`stream` holds body bytes until write_out (see H2Stream._send)."""
        self._holding.append(stream)
        self.flush()

    def write_out(self) -> None:
        if self._holding:       # (the handle stays set meanwhile: their sends schedule no second write_out)
            holding, self._holding = self._holding, []
            for stream in holding:
                stream.release_held()
        self._flush_handle = None
        data = self.h2.data_to_send()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    # ---- the server's sweep, drain and stop ----------------------------------------------------------------------

    def sweep(self, now: float, idle_limit: float, head_limit: float) -> None:
        """Once a second: backend response timeouts per stream; an idle connection (no streams) closes."""
        if self.closed:
            return
        for stream in list(self.streams.values()):
            ex = stream.active
            if ex is not None and ex.deadline and now > ex.deadline and not ex.response_started and not ex.finished:
                ex.timed_out()
        if self.streams and self.guard.stall_timeout:
            self._check_stalls(now)
        if not self.streams and idle_limit and now - self.last_activity > idle_limit:
            self.goaway()
            self.close()
        elif not self.streams and head_limit and not self._last_stream_id and now - self.started_at > head_limit:
            # as an HTTP/1.1 connection that never finishes a request head: no request in read_header_timeout
            self.goaway()
            self.close()

    def _check_stalls(self, now: float) -> None:
        """Streams whose response waited for the client's window past http2_stall_timeout are reset (their
        backends released); when every busy stream is stalled, the client is cut off."""
        streams = self.streams
        stalled = self.guard.stalled_streams([i for i, s in streams.items() if s.waiting_for_window], now)
        if stalled and len(stalled) >= sum(1 for s in streams.values() if s.busy):
            self.cut_off("zero_window", f"{len(stalled)} streams waited over {self.guard.stall_timeout:g}s for "
                         "the client's flow-control window", ErrorCodes.ENHANCE_YOUR_CALM)
            return
        for stream_id in stalled:
            log.info("HTTP/2 client %s: stream %d waited over %gs for its window; reset", self.client_addr,
                     stream_id, self.guard.stall_timeout)
            streams[stream_id].reset(ErrorCodes.CANCEL)

    def cut_off(self, reason: str, detail: str, code: int | None = None) -> None:
        """An abusive or broken client: counted and logged once (h2_guard), GOAWAY (h2's queued one, or
        `code`), closed. Its streams end and their backend connections are dropped."""
        if self.guard.cut_off(reason, detail, self.client_addr, self.ctx.metrics) and reason == "protocol_error":
            self.ctx.metrics.bad_requests += 1
        if code is not None:
            self.goaway(code)
        self.close()

    def close_if_idle(self) -> None:
        """Drain: GOAWAY once (open streams finish), closed when no stream is left."""
        if self.closed:
            return
        if not self.draining:
            self.goaway()
        if not self.streams:
            self.close()

    def in_flight(self) -> int:
        return sum(1 for stream in self.streams.values() if stream.busy)

    def goaway(self, code: int = 0) -> None:
        """GOAWAY naming the last stream we accepted. Written as a frame of our own: h2 refuses to send on open
        streams once it has sent GOAWAY itself, and open streams must finish."""
        if self.draining and code == 0:
            return
        self.draining = True
        self.write_out()
        frame = GoAwayFrame(0)
        frame.last_stream_id = self._last_stream_id
        frame.error_code = code
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(frame.serialize())

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            for stream in list(self.streams.values()):
                stream.lost()
            self.streams.clear()
            if self.transport is not None:
                self.write_out()   # what is owed goes out first (a last response, GOAWAY); then the close
                self.transport.close()


class TlsClientConnection(ClientConnection):
    """A TLS client connection that becomes an H2ClientConnection when ALPN chose h2 (enable_http2)."""

    became: H2ClientConnection | None = None

    def connection_made(self, transport) -> None:
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None and ssl_object.selected_alpn_protocol() == "h2":
            h2conn = self.became = H2ClientConnection(self.ctx)
            transport.set_protocol(h2conn)
            h2conn.connection_made(transport)
            return
        ClientConnection.connection_made(self, transport)

    def set_client_address(self, ip: str, port: int) -> None:
        """A PROXY header's address (enable_proxy on the TLS port) arrives just after connection_made."""
        if self.became is not None:
            self.became.set_client_address(ip, port)
        else:
            ClientConnection.set_client_address(self, ip, port)
