# cython: annotation_typing=False
"""Connections to backends: dialing with a timeout, and a bounded idle pool per connection identity.

Pools are keyed by what a connection *is*, not by route: a plaintext connection by its address (`host:port`),
a TLS one by address, expected server name and the client context (trusted CAs and client certificate) its
handshake used. A connection verified for one server name is never handed to an endpoint that expects
another, and a plaintext connection never serves a TLS endpoint at the same address. A table with 100k routes
over a few hundred app instances still keeps only a few hundred idle connections, at most `max_idle` per key.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any, cast

from httptools import HttpParserError, HttpParserUpgrade, HttpResponseParser

from portico.proxy.backend_side import BackendSide, BackendSource, last_chunk
from portico.proxy.dial_errors import DialError, describe_dial_error, describe_read_error, describe_tls_error  # noqa: F401 (re-exported)
from portico.proxy.h2_upstream import H2Stream, H2Upstream, shared_dial_done
from portico.proxy.headers import HOP_BY_HOP
from portico.routes.endpoint import Endpoint

if TYPE_CHECKING:
    from portico.proxy.exchange import Exchange

log = logging.getLogger("portico.proxy")


class UpstreamConnection(BackendSide):
    """One connection to a backend. Serves one exchange at a time; its response callbacks go to that exchange.

    The HTTP/1.1 side of the Exchange's BackendSide interface (the HTTP/2 backend stream is the other); the
    response goes to the Exchange's `response_*` methods. An asyncio protocol by its methods, not by
    inheritance (asyncio and uvloop take any such object): compiled, a cdef class (upstream.pxd).
    """

    __slots__ = ("_head_count", "_headers", "_reason", "_stop_after_head", "address", "cf_block", "cf_endpoint",
                 "chunked", "closed", "connector", "exchange", "parser", "parser_keep_alive", "pool_key", "tls",
                 "transport", "tunnel", "uses", "write_full")

    def __init__(self, connector: Connector, address: str, tls: bool = False,
                 pool_key: Hashable | None = None) -> None:
        self.connector = connector
        self.address = address
        self.pool_key = address if pool_key is None else pool_key  # the idle pool it may return to
        self.transport: asyncio.Transport = None  # type: ignore[assignment]  # set by connection_made
        self.exchange: Exchange | None = None
        self.parser = HttpResponseParser(self)
        self.uses = 0             # requests sent on this connection; > 0 before a send means "reused"
        self.closed = False
        self._headers: list = []
        self._head_count = 0
        self._reason = b""
        self._stop_after_head = False
        self.parser_keep_alive = True
        self.tls = tls
        self.tunnel = None          # set when a 101 turned this connection into a byte tunnel
        self.chunked = False        # the request being sent is chunked: body chunks get chunk framing
        self.flow = None            # the Flow of the client it serves (set and cleared by the Flow)
        self.write_full = False     # our write buffer is over its high-water mark (never pooled so: see release)
        self.cf_endpoint: Endpoint | None = None   # the endpoint whose X-CF-* lines cf_block holds
        self.cf_block = b""

    # ---- the backend-connection interface (used by the Exchange and the Tunnel) -------------------------------

    def attach(self, ex: Exchange) -> None:
        """`ex` sends its request on this connection now; the response callbacks go to it."""
        self.exchange = ex
        self.uses += 1

    def detach(self) -> None:
        self.exchange = None

    def reused(self) -> bool:
        """True when an earlier request was sent on this connection (a pooled one the backend may have closed)."""
        return self.uses > 1

    def send_request(self, head: bytes, chunked: bool, body: list[bytes] | None, ended: bool,
                     trailers: list | None = None) -> None:
        """The request head (request line, headers, blank line), any body that waited, and its end if it came."""
        self.chunked = chunked
        if body:
            parts = [head]
            if chunked:
                for chunk in body:
                    if chunk:
                        parts.append(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            else:
                parts += body
            head = b"".join(parts)
        if ended and chunked:
            head += last_chunk(trailers)
        self.transport.write(head)

    def send_body(self, chunk: bytes) -> None:
        if self.chunked:
            if chunk:   # an empty chunk would read as the body's end (HTTP/2's END_STREAM often comes empty)
                self.transport.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        else:
            self.transport.write(chunk)

    def end_body(self, trailers: list | None = None) -> None:
        """The request body is complete: the last chunk (with any trailers) when chunked; else nothing to send
        (a Content-Length body ends by its length, and trailers cannot travel without chunking)."""
        if self.chunked:
            self.transport.write(last_chunk(trailers))

    def write(self, data: bytes) -> None:
        """Raw bytes, once this connection is a tunnel."""
        if not self.closed:
            self.transport.write(data)

    def pause_reading(self) -> None:
        """Called by the Flow only: the client cannot take more of the response."""
        if not self.closed:
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if not self.closed:
            self.transport.resume_reading()

    def release(self) -> None:
        """The exchange ended cleanly: back to the idle pool (or closed when the pool is full)."""
        self.connector.release(self)

    def endpoint_headers(self, endpoint: Endpoint) -> bytes:
        """The endpoint's X-CF-* lines, built again only when this connection serves another endpoint (a kept
        connection mostly serves the same one; the block is not kept per endpoint, see Endpoint.cf_headers)."""
        if endpoint is not self.cf_endpoint:
            self.cf_block = endpoint.cf_headers
            self.cf_endpoint = endpoint
        return self.cf_block

    # ---- asyncio.Protocol -----------------------------------------------------------------------------------

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self.tunnel is not None:
            self.tunnel.from_backend(data)
            return
        ex = self.exchange
        if ex is None:
            # A backend must not talk on an idle connection; it cannot be trusted for the next request.
            self.close()
            return
        client = ex.client
        client.cork()
        try:
            self.parser.feed_data(data)
        except Exception as exc:
            self._parse_failed(exc, data)
        finally:
            client.uncork()

    def _parse_failed(self, exc: Exception, data: bytes) -> None:
        """httptools stopped: our own stop after a HEAD response head, an upgrade, or a malformed response."""
        ex = self.exchange
        if self._stop_after_head:
            self._stop_after_head = False
            self.parser = HttpResponseParser(self)
            self._headers = []
            if ex is not None:
                ex.response_done(self, self.parser_keep_alive)
            return
        if ex is not None and isinstance(exc, HttpParserUpgrade):
            offset = exc.args[0] if exc.args else len(data)
            ex.response_upgraded(self, data[offset:])
            return
        cause = exc.__context__ if isinstance(exc, HttpParserError) else exc
        if cause is not None and not isinstance(cause, HttpParserError):
            log.error("internal error while relaying a response from %s", self.address, exc_info=cause)
        self.close()
        if ex is not None:
            ex.upstream_lost(self, exc, malformed=True)

    def eof_received(self):
        return False  # close our side too

    def connection_lost(self, exc) -> None:
        self.closed = True
        self.connector.forget(self)
        if self.tunnel is not None:
            self.tunnel.backend_closed()
            return
        ex = self.exchange
        if ex is not None:
            self.exchange = None
            ex.upstream_lost(self, exc)

    def pause_writing(self) -> None:
        """The backend is not taking the request (or tunnel) bytes fast enough: the client waits."""
        self.write_full = True
        flow = self.flow
        if flow is not None:
            flow.backend_write_full(self)

    def resume_writing(self) -> None:
        self.write_full = False
        flow = self.flow
        if flow is not None:     # None once released: a late call changes no client's reading
            flow.backend_write_drained(self)

    # ---- httptools callbacks ---------------------------------------------------------------------------------

    # No on_message_begin (httptools calls only the callbacks a protocol has): the header list is made afresh when
    # a response ends (on_message_complete, or the stop after a HEAD response's head), one Python call fewer.

    def on_status(self, reason: bytes) -> None:
        self._reason = reason

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        ex = self.exchange
        if ex is None:
            return
        status = self.parser.get_status_code()
        self._head_count = len(self._headers)     # fields after these are the body's trailers
        ex.response_head(self, status, self._reason, self._headers)
        if ex.is_head and status >= 200 and self.exchange is ex:
            # httptools cannot be told that a HEAD response has no body: stop it here and start afresh.
            self._stop_after_head = True
            self.parser_keep_alive = self.parser.should_keep_alive()
            raise _HeadDone()

    def on_body(self, body: bytes) -> None:
        ex = self.exchange
        if ex is not None:
            ex.response_body(body)

    def on_message_complete(self) -> None:
        headers = self._headers
        self._headers = []    # for the next response (response_done may hand this connection to another request)
        ex = self.exchange
        if ex is not None:
            if len(headers) > self._head_count:   # a chunked body's trailers (gRPC-style status)
                ex.response_trailers([(n, v) for n, v in headers[self._head_count:]
                                      if n.lower() not in _NOT_TRAILERS])
            ex.response_done(self, self.parser.should_keep_alive())

    # ---- pool use --------------------------------------------------------------------------------------------

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.connector.forget(self)
            if self.transport is not None:
                self.transport.close()

    def abort(self) -> None:
        if not self.closed:
            self.closed = True
            self.connector.forget(self)
            if self.transport is not None:
                self.transport.abort()


_NOT_TRAILERS = HOP_BY_HOP | {b"content-length"}


class _HeadDone(Exception):
    """Raised inside the parser callback to stop parsing after a HEAD response's head."""


class Connector(BackendSource):
    """Dials backends and keeps idle keep-alive connections, at most `max_idle` per connection identity.

    Endpoints registered with protocol `http2` get HTTP/2 (portico.proxy.h2_upstream) over TLS with ALPN `h2`
    (HTTP/1.1 when the endpoint's ALPN answer says so, as Go does), and in clear text only with `h2c` on
    (gorouter speaks HTTP/1.1 to them). One HTTP/2 connection per identity carries streams up to the backend's
    SETTINGS_MAX_CONCURRENT_STREAMS; past that a request opens another connection rather than waiting.
    Upgrade requests (WebSockets) always go over HTTP/1.1.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, metrics, *, dial_timeout: float, max_idle: int,
                 keep_alive: bool = True, tls_context_for: Callable[..., ssl.SSLContext] | None = None,
                 tls_handshake_timeout: float | None = None, h2c: bool = False) -> None:
        self.loop = loop
        self.dial_timeout = dial_timeout
        # As Go's transport: the TCP connect gets dial_timeout, a TLS handshake after it tls_handshake_timeout.
        self.tls_handshake_timeout = dial_timeout if tls_handshake_timeout is None else tls_handshake_timeout
        self.max_idle = max_idle if keep_alive else 0
        self.idle: dict[Hashable, list[UpstreamConnection]] = {}
        self.tls_context_for = tls_context_for
        self.metrics = metrics      # backend_connects / backend_reuses, shown by /varz and /metrics
        self.h2c = h2c              # HTTP/2 with prior knowledge to plaintext `http2` endpoints
        self.h2_conns: dict[Hashable, list[H2Upstream]] = {}
        self.h2_dialing: dict[Hashable, list] = {}   # identity -> (endpoint, done) waiting for its dial

    def speaks_h2(self, endpoint: Endpoint, upgrade: bool = False) -> bool:
        """Whether a request to `endpoint` goes over HTTP/2 (an upgrade request never does)."""
        return endpoint.protocol == "http2" and not upgrade and (endpoint.tls or self.h2c)

    def _identity(self, endpoint: Endpoint, h2: bool = False) -> tuple[Hashable, ssl.SSLContext | None, str | None]:
        """(pool key, client context, expected server name) of a connection to `endpoint`.

        Plaintext: the address alone. TLS: also the server name the certificate is verified for and the
        context (trusted CAs, client certificate) the handshake uses. The context object itself is in the key
        (not its id), so a key never matches a later context that happens to reuse a freed one's address.
        """
        if endpoint.tls and self.tls_context_for is not None:
            ctx = self.tls_context_for(endpoint, True) if h2 else self.tls_context_for(endpoint)
            server_name = endpoint.server_cert_domain_san or endpoint.host
            return ("tls", endpoint.address, server_name, ctx), ctx, server_name
        if h2:
            return ("h2c", endpoint.address), None, None
        return endpoint.address, None, None

    def pool_key(self, endpoint: Endpoint) -> Hashable:
        """The identity a reusable connection to `endpoint` must have (see _identity)."""
        if not endpoint.tls:
            return endpoint.address
        return self._identity(endpoint)[0]

    def take_idle_for(self, endpoint: Endpoint, upgrade: bool = False) -> BackendConnection | None:
        """An idle connection made for exactly this endpoint's identity (see pool_key), if one is kept; for an
        HTTP/2 endpoint, a new stream on a connection with room."""
        protocol = endpoint.protocol    # compiled: a str compared as one (upstream.pxd)
        if protocol == "http2" and self.speaks_h2(endpoint, upgrade):
            key = self._identity(endpoint, True)[0]
            for h2conn in self.h2_conns.get(key, ()):
                if h2conn.has_room():
                    self.metrics.backend_reuses += 1
                    return h2conn.new_stream()
            return self.take_idle(key)   # HTTP/1.1 connections of an endpoint whose ALPN chose http/1.1
        if endpoint.tls:
            return self.take_idle(self._identity(endpoint)[0])
        return self.take_idle(endpoint.address)    # pool_key's plaintext case, without the call

    def take_idle(self, key: Hashable) -> UpstreamConnection | None:
        conns = self.idle.get(key)
        while conns:
            conn = conns.pop()
            if not conn.closed and not conn.transport.is_closing():
                self.metrics.backend_reuses += 1
                return conn
        return None

    def release(self, conn: UpstreamConnection) -> None:
        """Keep a connection whose last exchange ended cleanly, or close it when the pool is full. (The Flow
        detached it first, so it reads again.) One whose write buffer is still over its high-water mark with
        the last request's body is closed, as Go's transport does not reuse a connection whose request write
        has not finished: it would send the next client's request behind it without pausing that client."""
        conn.exchange = None
        if conn.closed:
            return
        if conn.write_full:
            conn.close()
            return
        conns = self.idle.get(conn.pool_key)
        if conns is None:
            conns = self.idle[conn.pool_key] = []
        if len(conns) < self.max_idle:
            conns.append(conn)
        else:
            conn.close()

    def forget(self, conn: UpstreamConnection) -> None:
        conns = self.idle.get(conn.pool_key)
        if conns:
            try:
                conns.remove(conn)
            except ValueError:
                pass
            if not conns:
                del self.idle[conn.pool_key]

    def forget_h2(self, conn: H2Upstream) -> None:
        conns = self.h2_conns.get(conn.pool_key)
        if conns and conn in conns:
            conns.remove(conn)
            if not conns:
                del self.h2_conns[conn.pool_key]

    def dial(self, endpoint: Endpoint, done: Callable[[BackendConnection | None, DialError | None], None],
             upgrade: bool = False) -> asyncio.Task | None:
        """Open a connection to `endpoint` and call `done(conn, None)` or `done(None, error)` once (for HTTP/2,
        `conn` is the first stream of the new connection)."""
        self.metrics.backend_connects += 1
        address = endpoint.address
        h2 = self.speaks_h2(endpoint, upgrade)
        key, tls_context, server_hostname = self._identity(endpoint, h2)
        factory: Callable[[], Any]
        if h2:
            if key in self.h2_dialing:    # one HTTP/2 connection being opened serves every request waiting
                self.h2_dialing[key].append((endpoint, done))
                return None
            self.h2_dialing[key] = []
            done = shared_dial_done(self, key, done)
            factory = lambda: H2Upstream(self, address, key, endpoint.tls)  # noqa: E731
        else:
            factory = lambda: UpstreamConnection(self, address, tls=endpoint.tls, pool_key=key)  # noqa: E731
        coro = self.loop.create_connection(cast("Callable[[], asyncio.BaseProtocol]", factory),
                                           endpoint.host, endpoint.port, ssl=tls_context,
                                           server_hostname=server_hostname,
                                           ssl_handshake_timeout=self.tls_handshake_timeout if tls_context else None)
        task = self.loop.create_task(coro)
        limit = self.dial_timeout + (self.tls_handshake_timeout if tls_context else 0.0)
        timer = self.loop.call_later(limit, task.cancel)

        def finished(t: asyncio.Task) -> None:
            timer.cancel()
            if t.cancelled():
                done(None, DialError(f"dial tcp {address}: i/o timeout"))
                return
            exc = t.exception()
            if exc is not None:
                done(None, describe_dial_error(address, exc, server_hostname))
                return
            transport, conn = t.result()
            if transport.is_closing():   # closed by the endpoint before this ran: a failed dial, retried
                done(None, DialError(f"dial tcp {address}: connection closed by the endpoint"))
                return
            sock = transport.get_extra_info("socket")
            if sock is not None and not tls_context:
                try:
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                except OSError:
                    pass
            conn = transport.get_protocol()   # an H2Upstream hands over to HTTP/1.1 when ALPN chose it
            if isinstance(conn, H2Upstream):
                self.h2_conns.setdefault(key, []).append(conn)
                done(conn.new_stream(), None)
                return
            done(conn, None)

        task.add_done_callback(finished)
        return task

    def close_all(self) -> None:
        for h2conns in list(self.h2_conns.values()):
            for h2conn in list(h2conns):
                h2conn.close()
        self.h2_conns.clear()
        for conns in list(self.idle.values()):
            for conn in list(conns):
                conn.close()
        self.idle.clear()


# What the Exchange talks to: an HTTP/1.1 connection or a stream of an HTTP/2 one, with the same methods.
BackendConnection = UpstreamConnection | H2Stream
