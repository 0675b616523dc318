# cython: annotation_typing=False
"""The client side of the proxy: an asyncio protocol fed by httptools callbacks.

Each request head becomes an Exchange. Pipelined requests wait in order behind the one being answered; their
bodies are buffered only up to a bound, then reading from the client pauses. Nothing here waits on a task:
all work happens in callbacks, so a request costs no coroutine and no task. ClientConnection is an asyncio
protocol by its methods (asyncio and uvloop take any such object), not by inheritance: compiled, it is a cdef
class (downstream.pxd) with typed fields, and its calls to the Exchange and the Exchange's to it are C calls.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import TYPE_CHECKING, Any

from httptools import HttpParserError, HttpParserUpgrade, HttpRequestParser

from portico.proxy import errors
from portico.proxy.client_base import ClientBase
from portico.proxy.exchange import Exchange
from portico.proxy.flow import CLOSING, PIPELINE, Flow
from portico.proxy.head_buffer import joined
from portico.proxy.headers import HOP_BY_HOP
from portico.proxy.tunnel import Tunnel

if TYPE_CHECKING:
    from portico.proxy.context import ProxyContext
    from portico.proxy.observer import ExchangeObserver
    from portico.proxy.routing import RequestRouter

log = logging.getLogger("portico.proxy")

PIPELINE_LIMIT = 64   # pipelined requests queued before reading from the client pauses


class RequestTooLarge(Exception):
    def __init__(self, status: int, code: str) -> None:
        super().__init__(code)
        self.status = status
        self.code = code


class ClientConnection(ClientBase):
    """One client connection: parse requests, hand each to an Exchange, answer them in order."""

    def __init__(self, ctx: ProxyContext) -> None:
        self.ctx = ctx
        self.reframes_body = True   # a body of unknown length is re-chunked for the client (HTTP/2 streams: False)
        self.log_protocol = b""     # the access log says HTTP/1.1 or HTTP/1.0 by the request
        self.transport: Any = None  # set by connection_made
        self.parser = HttpRequestParser(self)
        self.client_ip = b""
        self.client_ip_str = ""
        self.client_addr = ""
        self.client_addr_bytes = b""
        self.active: Exchange | None = None       # the exchange whose response is being written
        self.parsing: Exchange | None = None      # the exchange whose request is being read
        self.queue: deque[Exchange] = deque()     # pipelined requests waiting their turn
        self.closed = False
        self.http11 = True
        self.read_paused = 0
        self.flow = Flow(self)                     # backpressure with the backend serving it (flow.py)
        self.tunnel = None
        self.last_activity = 0.0
        self.head_started = 0.0                    # when the current request head began (0: not reading one)
        self.sent_anything = False                 # any byte from the client yet
        self._url = b""
        self._headers: list = []
        self._head_size = 0
        self._head_count = 0
        self._corked: list | None = None            # writes held back to go out as one send

    # ---- asyncio.Protocol -------------------------------------------------------------------------------------

    def connection_made(self, transport) -> None:
        self.transport = transport
        peer = transport.get_extra_info("peername")
        if peer:
            self.set_client_address(peer[0], peer[1])
        # Like Go's ReadHeaderTimeout, the first request head is timed from the accept: a client that
        # connects and sends nothing is closed by the header timeout, not only by the idle one.
        self.last_activity = self.head_started = self.ctx.loop.time()
        self.ctx.connections.add(self)
        self.ctx.metrics.open_client_connections += 1
        self.ctx.admission.opened()

    def peer_certificate(self) -> bytes | None:
        """None on a plain connection; over TLS the client's certificate (DER), b"" when it sent none."""
        ssl_object = self.transport.get_extra_info("ssl_object") if self.transport is not None else None
        if ssl_object is None:
            return None
        return ssl_object.getpeercert(binary_form=True) or b""

    def set_client_address(self, ip: str, port: int) -> None:
        """The client's address: the peer's, or the one a PROXY protocol header gave."""
        self.client_ip = ip.encode()
        self.client_ip_str = ip
        self.client_addr = f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"   # as Go writes RemoteAddr
        self.client_addr_bytes = self.client_addr.encode()

    def data_received(self, data: bytes) -> None:
        self.last_activity = self.ctx.loop.time()
        if not self.sent_anything:
            # The first bytes only: HTTP/2 with prior knowledge (enable_h2c) starts with the preface.
            self.sent_anything = True
            if data[:3] == b"PRI" and self.ctx.h2c and self._h2c_preface(data):
                return
        if self.tunnel is not None:
            self.tunnel.from_client(data)
            return
        try:
            self.parser.feed_data(data)
        except HttpParserUpgrade as upgrade:
            self._upgrade_requested(data[upgrade.args[0]:] if upgrade.args else b"")
        except RequestTooLarge as exc:
            self._protocol_error(exc.status, exc.code)
        except HttpParserError as exc:
            # httptools wraps an exception raised in a callback; the original is the context
            cause = exc.__context__
            if isinstance(cause, RequestTooLarge):
                self._protocol_error(cause.status, cause.code)
            elif cause is not None and not isinstance(cause, HttpParserError):
                # A bug of ours inside a callback, not the client's fault: say so loudly, answer 500.
                log.error("internal error while handling a request from %s", self.client_addr, exc_info=cause)
                self._protocol_error(500, "")
            else:
                self._protocol_error(400, "", str(exc))

    def eof_received(self) -> bool | None:
        return None     # as asyncio.Protocol: the transport closes itself

    def connection_lost(self, exc) -> None:
        self.closed = True
        self.ctx.connections.discard(self)
        self.ctx.metrics.open_client_connections -= 1
        self.ctx.admission.closed()
        if self.tunnel is not None:
            self.tunnel.client_closed()
            return
        ex = self.active
        if ex is not None and not ex.finished:
            ex.abandon_upstream()
            ex.finished = True
            ex.status = ex.status or 499
            self.ctx.observe.exchange_done(ex, aborted=True)
        self.queue.clear()

    def pause_writing(self) -> None:
        """The write buffer is over its high-water mark: the backend serving this client (now or next) waits."""
        self.flow.client_write_full()

    def resume_writing(self) -> None:
        self.flow.client_write_drained()

    def _h2c_preface(self, data: bytes) -> bool:
        """HTTP/2 over cleartext with prior knowledge: hand this connection to the HTTP/2 protocol."""
        from portico.proxy.h2_front import H2ClientConnection, starts_with_preface

        if not starts_with_preface(data):
            return False
        H2ClientConnection(self.ctx).take_over(self, data)
        return True

    # ---- the server's sweep, drain and stop (H2ClientConnection has the same three) ------------------------------

    def sweep(self, now: float, idle_limit: float, head_limit: float) -> None:
        """Once a second: the backend response timeout, the request head timeout, the idle timeout."""
        if self.tunnel is not None or self.closed:
            return
        ex = self.active
        if ex is not None:
            if ex.deadline and now > ex.deadline and not ex.response_started and not ex.finished:
                ex.timed_out()
            return
        if head_limit and self.head_started and now - self.head_started > head_limit:
            if self.sent_anything:  # a connection that never sent a byte is closed without an answer
                self.write(b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            self.close()
        elif idle_limit and now - self.last_activity > idle_limit:
            self.close()

    def close_if_idle(self) -> None:
        """Drain: close now unless a request is being answered, queued or half-read."""
        if (self.active is None and not self.queue and self.tunnel is None
                and (not self.head_started or not self.sent_anything)):
            self.close()

    def in_flight(self) -> int:
        return 1 if self.active is not None or self.queue else 0

    # ---- httptools callbacks ----------------------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = []
        self._head_size = 0
        # the clock of the read this head begins in (uvloop's time is per loop turn anyway): no call per request
        self.head_started = self.last_activity

    def on_url(self, url: bytes) -> None:
        self._url += url
        if len(self._url) > self.ctx.max_uri_bytes:
            raise RequestTooLarge(414, "")

    def on_header(self, name: bytes, value: bytes) -> None:
        headers = self._headers
        headers.append((name, value))
        self._head_size += len(name) + len(value) + 4
        if self._head_size > self.ctx.max_header_bytes:
            raise RequestTooLarge(431, "max-request-size-exceeded")
        if len(headers) > self.ctx.max_header_count:
            raise RequestTooLarge(431, "max-request-size-exceeded")

    def on_headers_complete(self) -> None:
        self.head_started = 0.0
        self._head_count = len(self._headers)     # fields after these are the body's trailers
        router: RequestRouter = self.ctx.router
        ex = router.route(self, self.parser, self._url, self._headers)
        self.parsing = ex
        if self.active is None:
            self.active = ex
            ex.start()
        else:
            self.queue.append(ex)
            if len(self.queue) == PIPELINE_LIMIT + 1:
                self.flow.stop_client(PIPELINE)   # given back when the queue drains back to the limit

    def on_body(self, body: bytes) -> None:
        ex = self.parsing
        if ex is not None:
            ex.request_body(body)

    def on_message_complete(self) -> None:
        ex = self.parsing
        if ex is not None:
            self.parsing = None
            if len(self._headers) > self._head_count:
                ex.request_trailers(request_trailers(self._headers[self._head_count:]))
            ex.request_done()

    # ---- used by exchanges ------------------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        if self._corked is not None:
            self._corked.append(data)
        elif not self.closed:
            self.transport.write(data)

    def cork(self) -> None:
        """Hold writes until uncork(): a response head and body parsed from one read leave in one send."""
        if self._corked is None:
            self._corked = []

    def uncork(self) -> None:
        out = self._corked
        if out is None:
            return
        self._corked = None
        if out and not self.closed:
            self.transport.write(out[0] if len(out) == 1 else joined(out))

    def send_trailers(self, headers: list) -> None:
        """Trailers of a response sent with a Content-Length: HTTP/1.1 has no place for them, so they are
        dropped (a chunked response carries them in its last chunk, written by the Exchange)."""

    def attached(self, ex: Exchange) -> bool:
        return self.active is ex and not self.closed

    def pause_reading(self) -> None:
        if self.read_paused == 0 and not self.closed:
            self.transport.pause_reading()
        self.read_paused += 1

    def resume_reading(self) -> None:
        if self.read_paused > 0:
            self.read_paused -= 1
            if self.read_paused == 0 and not self.closed:
                self.transport.resume_reading()

    def exchange_finished(self, ex: Exchange, aborted: bool = False) -> None:
        """The response to `ex` is fully written: log it, then start the next pipelined request or close."""
        observe: ExchangeObserver = self.ctx.observe
        observe.exchange_done(ex, aborted)
        if self.active is ex:
            self.active = None
        if self.closed:
            return
        done: Exchange = ex        # typed when compiled: its fields are slot reads
        keep_alive = done.keep_alive
        if aborted or not keep_alive:
            self.uncork()
        if aborted:
            self.transport.abort() if done.response_started else self.transport.close()
            self.closed = True
            return
        if not keep_alive:
            self.transport.close()
            self.closed = True
            return
        if self.queue:
            nxt = self.queue.popleft()
            self.active = nxt
            if len(self.queue) == PIPELINE_LIMIT:
                self.flow.go_client(PIPELINE)
            nxt.start()

    def _protocol_error(self, status: int, code: str, reason: str = "") -> None:
        """A request we cannot parse or accept: answer it (if nothing else is being answered) and close."""
        self.parser = HttpRequestParser(self)  # the old one is in an error state
        if code:
            data = errors.error_response(status, code, _PROTOCOL_MESSAGES.get(status, ""), close=True)
        else:
            data = errors.bare_response(status, close=True)
        self.ctx.metrics.bad_requests += 1
        broken = self.parsing
        if broken is not None:
            # The head was complete (and may be at the backend already): the body is what is malformed.
            self.parsing = None
            self._malformed_body(broken, data, status, reason)
            return
        if self.active is None:
            self.write(data)
            self.transport.close()
            self.closed = True
        else:
            # Answer in order: after the responses already owed. Stop reading meanwhile.
            ex = Exchange(self, b"-", b"-")
            ex.local_response = data
            ex.status = status
            ex.keep_alive = False
            ex.body_done = True
            self.queue.append(ex)
            self.flow.stop_client(CLOSING)

    def _malformed_body(self, ex: Exchange, data: bytes, status: int, reason: str) -> None:
        """A request body that breaks its framing (bad chunk size, bare LF, chunk data without CRLF...).

        Nothing after it can be trusted, so the client connection closes, and the backend connection (which
        may have part of the body) is dropped, never pooled. The client gets a 400 unless its response has
        already started, in which case the connection is aborted. Counted and logged once per request.
        """
        self.ctx.metrics.malformed_request_bodies += 1
        log.warning("malformed request body from %s (%s %s, host %s): %s; answered %d and closed",
                    self.client_addr, ex.method.decode("latin-1"), ex.uri[:200].decode("latin-1"),
                    ex.host[:200].decode("latin-1"), reason or "bad framing", status)
        if not ex.finished:
            if self.active is ex:
                ex.request_malformed(data, status)
                return
            # Queued behind earlier pipelined requests: it answers the error in its turn; read no further.
            ex.replace_with_local(data, status)
            self.flow.stop_client(CLOSING)
            return
        # Already answered (a local error whose body was being skipped): the error follows in order.
        if self.active is None:
            self.write(data)
            self.close()
            return
        err = Exchange(self, b"-", b"-")
        err.replace_with_local(data, status)
        self.queue.append(err)
        self.flow.stop_client(CLOSING)

    def _upgrade_requested(self, rest: bytes) -> None:
        ex = self.parsing
        if ex is None:
            ex = self.active
        if ex is not None:
            ex.request_done()
            self.parsing = None
            if rest:
                # Bytes sent right behind the upgrade request belong to the new protocol: pass them on
                # as they are (now if the backend connection is up, else as soon as it is).
                ex.request_body(rest)

    def start_tunnel(self, ex: Exchange, conn, rest: bytes) -> None:
        """The backend said 101: this connection becomes one end of a byte tunnel."""
        Tunnel(self.ctx, self, conn, ex).start(rest)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.transport.close()


_PROTOCOL_MESSAGES = {431: "Request header fields too large", 414: "Request URI too long"}


def request_trailers(fields: list) -> list:
    """The trailers of a chunked request body that may be passed on (not framing or hop-by-hop fields)."""
    return [(name, value) for name, value in fields if name.lower() not in _NOT_TRAILERS]


_NOT_TRAILERS = HOP_BY_HOP | {b"content-length", b"host"}
