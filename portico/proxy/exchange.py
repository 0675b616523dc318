# cython: annotation_typing=False
"""One proxied request and its response: choosing an endpoint, retrying safely, streaming both bodies.

An Exchange is made by the client connection when a request head is complete. It talks to exactly one backend
connection at a time, only through its methods (HTTP/1.1 or an HTTP/2 stream: see BackendConnection), and
writes the response to the client. Bodies are never
held whole: request body chunks wait in a short list only until the backend connection is ready (reading from
the client is paused past a bound), and response chunks are written as they arrive, with reading from the
backend paused while the client's write buffer is full.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import TYPE_CHECKING

from portico.proxy import errors, response_head
from portico.proxy.backend_side import last_chunk
from portico.proxy.dial_errors import DialError, describe_read_error
from portico.proxy.exchange_state import FRAME_NONE, ExchangeState
from portico.proxy.flow import PENDING_BODY, Flow
from portico.proxy.head_buffer import joined3

try:
    import cython
except ImportError:   # no Cython installed: certainly the pure module
    cython = SimpleNamespace(compiled=False)

if not cython.compiled:
    # Compiled, Cython drops this branch (cython.compiled is a constant there) and exchange.pxd cimports
    # cpython.time's monotonic: the clock read as a C double, no float object and no Python call.
    from time import monotonic

if TYPE_CHECKING:
    from portico.proxy.downstream import ClientConnection
    from portico.proxy.upstream import BackendConnection
    from portico.routes.endpoint import Endpoint

# Response framing towards the client.
FRAME_LENGTH = 1     # Content-Length passed through
FRAME_CHUNKED = 2    # re-chunked for the client
FRAME_CLOSE = 3      # close-delimited: the client connection ends the body

PENDING_BODY_LIMIT = 256 * 1024
_IDEMPOTENT = frozenset({b"GET", b"HEAD", b"OPTIONS", b"TRACE", b"PUT", b"DELETE"})


class Exchange(ExchangeState):
    """The life of one request: route it, send it, stream the answer back, report how it went.

    Its fields and their defaults are ExchangeState's (exchange_state.py); this class is the behaviour.
    """

    def __init__(self, client: ClientConnection, method: bytes, uri: bytes) -> None:
        self.client = client
        self.ctx = client.ctx
        self.method = method
        self.uri = uri
        self.is_head = method == b"HEAD"

    # ---- starting ---------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Called when this exchange reaches the head of the client's pipeline."""
        data = self.local_response
        if data:
            if not self.http11:
                data = errors.as_http10(data)
            if self.ctx.response_rules.rewrites:
                data = self.ctx.response_rules.rewrite_local(data)
            self.client.write(data)
            self.response_bytes = len(data)
            self.finish()
            return
        self.attempt()

    def attempt(self) -> None:
        ctx = self.ctx
        # The balancer's clock (Endpoint.benched_until, the deadline): monotonic, the loop's own clock
        # (loop.time() is the same one, read at the start of the loop's turn); compiled, a C call.
        now = monotonic()
        ep = self.route_service or self.app_instance
        if ep is None and self.sticky_id:
            ep = self._sticky_endpoint(now)
            if ep is None and self.must_be_sticky:
                self._fail(DialError("No endpoints available"))   # gorouter: that instance or none
                return
        if ep is None and ctx.local_zone and not self.attempts:
            ep = self.pool.pick_local(now, ctx.local_zone, ctx.max_conns)
        if ep is None:
            ep = self.pool.pick(now, ctx.max_conns, self.tried)
        if ep is None:
            self._no_endpoint()
            return
        self.app_instance = None
        self.endpoint = ep
        self.attempts += 1
        ep.active += 1
        if ctx.endpoint_timeout:
            self.deadline = now + ctx.endpoint_timeout
        connector = ctx.connector   # compiled: typed as its BackendSource base, so the call is a C call
        conn = connector.take_idle_for(ep, self.upgrade_request)
        if conn is not None:
            self._attach(conn)
        else:
            ctx.connector.dial(ep, self._dialed, self.upgrade_request)

    def _sticky_endpoint(self, now: float) -> Endpoint | None:
        ep = self.pool.by_instance_id(self.sticky_id)
        if ep is None or (self.ctx.max_conns and ep.active >= self.ctx.max_conns):
            return None
        if not self.must_be_sticky and (ep in self.tried or ep.benched_until > now):
            return None
        return ep

    def _no_endpoint(self) -> None:
        pool = self.pool
        close = not self.keep_alive
        if self.last_error is not None:
            self._fail(self.last_error)
            return
        if pool.all_full(self.ctx.max_conns):
            self.router_error = ""
            self._reply_local(errors.all_endpoints_full(close), 503)
        else:
            self.router_error = "no_endpoints"
            self._reply_local(errors.no_endpoints(close), 503)

    def _dialed(self, conn: BackendConnection | None, err: DialError | None) -> None:
        ep = self.endpoint
        if self.finished or self.client.closed:
            ep.active -= 1
            if conn is not None:
                conn.release()
            return
        if err is not None:
            ep.active -= 1
            self.last_error = err
            self.tried = [*self.tried, ep]
            now = monotonic()
            service = self.route_service is not None
            if not service:
                ep.benched_until = now + self.ctx.bench_seconds
                if err.tls_handshake:
                    self.ctx.table.remove_endpoint(self.pool, ep)
            max_attempts = self.ctx.route_services.max_attempts if service else self.ctx.max_attempts
            if self.attempts < max_attempts and self._retry_budget_left():
                self.ctx.metrics.backend_retries += 1
                self.attempt()
            else:
                self._fail(err)
            return
        assert conn is not None  # a dial without an error brings a connection
        self._attach(conn)

    def _retry_budget_left(self) -> bool:
        return monotonic() - self.started_at < self.ctx.retry_budget

    def _attach(self, conn: BackendConnection) -> None:
        self.upstream = conn
        self.sent_at = monotonic()
        conn.attach(self)
        flow: Flow = self.client.flow
        flow.attach(conn)    # paused at once if the client cannot take more yet
        pending = self.pending
        if pending:
            self.pending = None
            self.pending_size = 0
        head = joined3(self.head, conn.endpoint_headers(self.endpoint), self.tail)
        conn.send_request(head, self.chunked_request, pending, self.body_done, self.request_trailers_list)
        if pending:
            self._unpause_body()

    # ---- request body from the client ---------------------------------------------------------------------------

    def request_body(self, chunk: bytes) -> None:
        self.request_bytes += len(chunk)
        if self.local_response or self.finished:
            return
        conn = self.upstream
        if conn is not None:
            conn.send_body(chunk)
            return
        if self.pending is None:
            self.pending = []
        self.pending.append(chunk)
        self.pending_size += len(chunk)
        if self.pending_size > PENDING_BODY_LIMIT and not self.body_paused:
            self.body_paused = True
            flow: Flow = self.client.flow
            flow.stop_client(PENDING_BODY)

    def _unpause_body(self) -> None:
        if self.body_paused:
            self.body_paused = False
            flow: Flow = self.client.flow
            flow.go_client(PENDING_BODY)

    def request_trailers(self, headers: list) -> None:
        """Trailers ((name, value) byte pairs) that end the client's body; request_done() follows."""
        self.request_trailers_list = headers

    def request_done(self) -> None:
        self.body_done = True
        if self.upstream is not None and not self.finished:
            self.upstream.end_body(self.request_trailers_list)

    def request_malformed(self, response: bytes, status: int) -> None:
        """The request body broke its framing after this exchange started: end it and drop the backend
        connection (it may hold part of the broken body). Answer `response` if no response has started,
        else abort the client connection."""
        if self.finished:
            return
        self.keep_alive = False
        self.abandon_upstream()
        if self.response_started:
            self.finish(aborted=True)
        else:
            self._reply_local(response, status)

    def replace_with_local(self, response: bytes, status: int) -> None:
        """Not started yet: answer `response` instead when its turn comes, then close the connection."""
        self.local_response = response
        self.status = status
        self.keep_alive = False
        self.body_done = True
        self.pending = None
        self.pending_size = 0
        self._unpause_body()

    # ---- the response ----------------------------------------------------------------------------------------------

    def response_head(self, conn: BackendConnection, status: int, reason: bytes, headers: list) -> None:
        if status < 200 and status != 101:
            self._interim_response(status, reason, headers)
            return
        if self.ctx.limit_response_heads:
            too_big = response_head.response_head_too_big(headers, self.ctx.max_response_headers,
                                                          self.ctx.max_response_header_bytes)
            if too_big:   # a 502, as gorouter's
                self.abandon_upstream()
                self._fail(DialError(too_big))
                return
        self.status = status
        self.response_header_at = monotonic()
        self.response_started = True
        self.deadline = 0.0
        client = self.client
        rules = self.ctx.response_rules
        content_length, chunked, named = rules.forwarded(self, status, reason, headers, ())
        if named:
            content_length, chunked, named = rules.forwarded(self, status, reason, headers, named)
        if not self.has_vcap_id_in_response:
            rules.add_field(b"X-Vcap-Request-Id", self.request_id)
        if status == 101:
            self.upgraded = True
            client.write(rules.take(b"Connection: Upgrade\r\n\r\n"))
            return
        keep_alive = self.keep_alive
        if self.is_head or status == 204 or status == 304:   # no body, whatever the head says
            self.framing = FRAME_NONE
        elif content_length is not None and not chunked:
            self.framing = FRAME_LENGTH
        else:
            # Chunked or close-delimited from the backend: re-chunk for HTTP/1.1, close-delimit for 1.0.
            self.upstream_frames_by_close = not chunked
            if not client.reframes_body:
                self.framing = FRAME_LENGTH     # HTTP/2: DATA frames delimit the body, passed unframed
            elif self.http11:
                self.framing = FRAME_CHUNKED
                rules.add(b"Transfer-Encoding: chunked\r\n")
            else:
                self.framing = FRAME_CLOSE
                keep_alive = False
        self.keep_alive = keep_alive
        data = rules.take(b"\r\n" if keep_alive else b"Connection: close\r\n\r\n")
        self.response_bytes = 0
        client.write(data)

    def _interim_response(self, status: int, reason: bytes, headers: list) -> None:
        """Pass 1xx answers (100 Continue, 103 Early Hints) to an HTTP/1.1 client; the final one follows."""
        if self.http11:
            self.client.write(self.ctx.response_rules.interim(status, reason, headers))

    def response_body(self, chunk: bytes) -> None:
        self.response_bytes += len(chunk)
        if self.framing == FRAME_CHUNKED:
            self.client.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        else:
            self.client.write(chunk)

    def response_trailers(self, headers: list) -> None:
        """Trailers ((name, value) byte pairs) that end the backend's body; response_done() follows."""
        self.response_trailers_list = headers

    def response_done(self, conn: BackendConnection, reusable: bool) -> None:
        if self.status == 0 or self.upgraded:
            return  # an interim 1xx ended, or the 101 before the tunnel takes over
        if self.framing == FRAME_CHUNKED:
            self.client.write(last_chunk(self.response_trailers_list))
        elif self.response_trailers_list:
            self.client.send_trailers(self.response_trailers_list)   # HTTP/2: HEADERS; HTTP/1.1: dropped
        self._release_upstream(conn, reusable and self.body_done)
        self.finish()

    def response_upgraded(self, conn: BackendConnection, rest: bytes) -> None:
        """The backend said 101: from here on both connections are a byte tunnel."""
        self._release_endpoint()
        conn.detach()
        self.client.start_tunnel(self, conn, rest)

    def _release_upstream(self, conn: BackendConnection, reusable: bool) -> None:
        self.upstream = None
        flow: Flow = self.client.flow
        flow.detach(conn)    # it reads again, and gives back any pause of the client it held
        self._release_endpoint()
        if reusable and self.ctx.keep_alive:
            conn.release()
        else:
            conn.detach()
            conn.close()

    def _release_endpoint(self) -> None:
        ep = self.endpoint
        if ep is not None:
            active = ep.active      # one read of the endpoint's field, not two
            if active > 0:
                ep.active = active - 1

    def upstream_lost(self, conn: BackendConnection, exc: BaseException | None, malformed: bool = False) -> None:
        """The backend connection closed or sent garbage while this exchange used it."""
        self.upstream = None
        flow: Flow = self.client.flow
        flow.detach(conn)
        if self.finished:
            return
        if self.response_started:
            self._release_endpoint()
            if self.upstream_frames_by_close and not malformed and exc is None:
                # a clean close ends a close-delimited body; a reset (exc set) cuts it, as in gorouter
                if self.framing == FRAME_CHUNKED:
                    self.client.write(b"0\r\n\r\n")
                self.finish()
            else:
                # Died mid-body: never pass a truncated body off as complete.
                self.keep_alive = False
                self.finish(aborted=True)
            return
        self._release_endpoint()
        ep = self.endpoint
        reused_conn = conn.reused()
        if reused_conn and not self.has_body and self.method in _IDEMPOTENT and self.client.attached(self):
            # A pooled connection the backend had already closed: try again on a fresh one, not counted.
            self.ctx.metrics.backend_retries += 1
            ep.active += 1
            self.ctx.connector.dial(ep, self._dialed, self.upgrade_request)
            return
        detail = "EOF" if exc is None else describe_read_error(exc)
        if malformed:
            detail = "malformed HTTP response"
        self._fail(DialError(detail))

    def abandon_upstream(self) -> None:
        """Drop the backend connection mid-exchange: it cannot be reused, and the endpoint slot is freed."""
        conn = self.upstream
        self.upstream = None
        self._release_endpoint()
        if conn is not None:
            flow: Flow = self.client.flow
            flow.detach(conn)
            conn.detach()
            conn.abort()

    def timed_out(self) -> None:
        """endpoint_timeout passed without a response head."""
        self.abandon_upstream()
        self._fail(DialError("timeout awaiting response headers"))

    # ---- endings ----------------------------------------------------------------------------------------------------

    def _fail(self, err: DialError) -> None:
        close = not self.keep_alive
        if err.tls_handshake:
            # gorouter answers these with http.Error: the status text alone as the body
            self.router_error = f"endpoint_failure ({err.detail})"
            status = err.status
            if status == 502:
                self.ctx.metrics.bad_gateways += 1
                self._reply_local(errors.endpoint_failure(err.detail, close), 502)
                return
            text = f"{status} {errors.reason(status).decode()}"
            self._reply_local(errors.error_response(status, self.router_error, "", close=close, body=text), status)
            return
        self.router_error = f"endpoint_failure ({err.detail})"
        self.ctx.metrics.bad_gateways += 1
        self._reply_local(errors.endpoint_failure(err.detail, close), 502)

    def _reply_local(self, data: bytes, status: int) -> None:
        self.status = status
        if not self.http11:
            data = errors.as_http10(data)
        if self.ctx.response_rules.rewrites:
            data = self.ctx.response_rules.rewrite_local(data)
        self.client.write(data)
        self.response_bytes = len(data)
        self.finish()

    def finish(self, aborted: bool = False) -> None:
        if self.finished:
            return
        self.finished = True
        self.pending = None
        self._unpause_body()  # the rest of an unsent body is read and dropped, not left waiting
        self.client.exchange_finished(self, aborted)
