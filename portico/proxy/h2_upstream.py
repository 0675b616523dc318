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
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING

from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.errors import ErrorCodes
from h2.events import (
    ConnectionTerminated,
    DataReceived,
    InformationalResponseReceived,
    RemoteSettingsChanged,
    ResponseReceived,
    StreamEnded,
    StreamReset,
    TrailersReceived,
    WindowUpdated,
)
from h2.exceptions import H2Error
from h2.settings import SettingCodes, Settings

from portico.proxy.h2_backend_stream import H2Stream, StreamError, code_name

if TYPE_CHECKING:
    from portico.proxy.upstream import Connector

log = logging.getLogger("portico.proxy")

# Receive windows. A stream's bounds what one slow client can have in flight beyond its write buffer (Go's
# transport uses 4 MiB); the connection's is large, so one paused stream never starves the others.
STREAM_WINDOW = 1024 * 1024
CONNECTION_WINDOW = 16 * 1024 * 1024
_LAST_STREAM_ID = 2**31 - 101   # stream ids run out: a new connection takes over well before


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
        # Outbound fields need no second check: they come from a request head llhttp (or the HTTP/2 front)
        # already validated, lower-cased and stripped by request_headers (that check cost ~15% of the CPU
        # of a stream). Inbound fields from backends are still validated: they reach clients.
        self.h2 = _GracefulH2Connection(H2Configuration(client_side=True, header_encoding=None,
                                                        validate_outbound_headers=False,
                                                        normalize_outbound_headers=False))
        self.transport: asyncio.Transport = None  # type: ignore[assignment]  # set by connection_made
        self.streams: dict[int, H2Stream] = {}
        self.closed = False
        self.going_away = False      # GOAWAY received: no new streams; open ones at or below its id finish
        self.write_paused = False
        self.streams_started = 0
        self.corked: list = []       # clients whose writes wait for the end of the current read
        self.settings_known = False  # the backend's first SETTINGS arrived (its stream limit is known)
        self._after_settings: list[Callable[[], None]] = []

    # ---- capacity -------------------------------------------------------------------------------------------

    def has_room(self) -> bool:
        """True when one more stream fits under the backend's SETTINGS_MAX_CONCURRENT_STREAMS."""
        if (self.closed or self.going_away or not self.settings_known or self.transport is None
                or self.transport.is_closing()):
            return False
        h2 = self.h2
        limit = h2.remote_settings.max_concurrent_streams
        # (h2 counts its open streams again when a stream starts: a miscount is refused there and retried)
        return len(self.streams) < limit and h2.highest_outbound_stream_id < _LAST_STREAM_ID

    def after_settings(self, callback: Callable[[], None]) -> None:
        """Call `callback` once the backend's SETTINGS arrived, or the connection was lost before them."""
        if self.settings_known or self.closed:
            callback()
        else:
            self._after_settings.append(callback)

    def _settings_arrived(self) -> None:
        self.settings_known = True
        callbacks, self._after_settings = self._after_settings, []
        for callback in callbacks:
            callback()

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
        corked = self.corked
        try:
            for event in events:
                self._dispatch(event)
        finally:
            if corked:
                self.corked = []
                for client in corked:   # a head and body from one read leave in one send per client
                    client.uncork()
        self.flush()

    def cork(self, client) -> None:
        """Hold `client`'s writes until this read's frames are handled (HTTP/1.1 does it per parse too)."""
        if client not in self.corked:
            client.cork()
            self.corked.append(client)

    def _dispatch(self, event) -> None:
        if isinstance(event, WindowUpdated):
            self._window_opened(event.stream_id)
            return
        if isinstance(event, RemoteSettingsChanged):
            if not self.settings_known:
                self._settings_arrived()
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
            stream.head(event.headers, event.stream_ended is not None)
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
                                        f"LastStreamID={last_stream_id}, ErrCode={code_name(error_code)}"))
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
            if not malformed and stream.on_used_conn:
                stream.refused = True   # a pooled connection the backend closed: as HTTP/1.1, retry if safe
            stream.lost(exc, malformed)
        self.streams.clear()
        if not was_closed and self.transport is not None:
            self.transport.abort() if malformed else self.transport.close()
        callbacks, self._after_settings = self._after_settings, []
        for callback in callbacks:   # requests waiting for this connection's SETTINGS dial for themselves
            callback()

    def pause_writing(self) -> None:
        """The backend is not reading: stop reading the request bodies of every stream's client."""
        self.write_paused = True
        for stream in self.streams.values():
            stream.pause_client()

    def resume_writing(self) -> None:
        self.write_paused = False
        for stream in list(self.streams.values()):
            if not stream.held:   # a stream still waiting for its window keeps its client paused
                stream.resume_client()

    # ---- stream bookkeeping ---------------------------------------------------------------------------------

    def stream_done(self, stream: H2Stream) -> None:
        self.streams.pop(stream.stream_id, None)
        if not self.streams and (self.going_away or self.connector.max_idle == 0
                                 or len(self.connector.h2_conns.get(self.pool_key, ())) > 1):
            # Idle: kept only as the one connection of its identity (none with disable_keep_alives); the
            # extra ones a burst past the stream limit opened are closed once they have nothing to carry.
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


def shared_dial_done(connector: Connector, key: Hashable, first: Callable) -> Callable:
    """The `done` of a dial that other requests to the same identity wait on (as Go's transport, a burst of
    requests opens one connection, not one each). The first request's stream goes at once; the others wait
    for the backend's SETTINGS (its stream limit), then each gets a stream while there is room. Past the
    limit, or when ALPN chose HTTP/1.1, they dial for themselves; a failed dial fails them all."""

    def serve_waiting() -> None:
        for endpoint, done in connector.h2_dialing.pop(key, []):
            for h2conn in connector.h2_conns.get(key, ()):
                if h2conn.has_room():
                    connector.metrics.backend_reuses += 1
                    done(h2conn.new_stream(), None)
                    break
            else:
                connector.dial(endpoint, done)

    def finished(conn, err) -> None:
        if err is not None or not isinstance(conn, H2Stream):
            waiting = connector.h2_dialing.pop(key, [])
            first(conn, err)
            for endpoint, done in waiting:
                if err is not None:
                    done(None, err)
                else:
                    connector.dial(endpoint, done)
            return
        try:
            first(conn, None)
        finally:
            conn.conn.after_settings(serve_waiting)   # meanwhile new requests for this identity queue too

    return finished
