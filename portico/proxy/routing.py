# cython: annotation_typing=False
"""From a parsed request head to an Exchange: health checks, Host, route lookup, forwarded headers.

This is the per-request hot path: one pass over the headers, one route lookup, the forwarded head written as
it goes. Compiled, the head is written into the router's HeadBuffer (a C copy per piece, taken as one bytes);
pure Python, and compiled for the rare heads whose rules edit the head's pieces (headers a Connection header
names, route services), it is a list of pieces joined once. The endpoint-specific headers (X-CF-*) are added
when an endpoint is chosen, since retries may pick another.
"""

from __future__ import annotations

from time import monotonic
from time import time as wall_clock
from types import SimpleNamespace
from typing import TYPE_CHECKING

from portico.proxy import errors
from portico.proxy.exchange import Exchange
from portico.proxy.forwarded_lines import ForwardedLines
from portico.proxy.head_buffer import HeadBuffer
from portico.proxy.headers import HOP_BY_HOP, connection_tokens, header_kind, request_id
from portico.proxy.host_names import HostNames
from portico.proxy.request_rules import (
    absolute_form_host,
    address_route_service,
    app_instance_target,
    connection_named_drops,
    drop_connection_named,
    forwarded_client_cert,
    log_value,
    route_service_verdict,
    sticky_instance,
)
from portico.proxy.tracing import headers_to_log

try:
    import cython
except ImportError:   # no Cython installed: certainly the pure module
    cython = SimpleNamespace(compiled=False)

if TYPE_CHECKING:
    from portico.proxy.context import ProxyContext

_OK = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 3\r\n\r\nok\n"
_UNAVAILABLE = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
                b"Content-Length: 0\r\n\r\n")


class RequestRouter:
    """Turns request heads into Exchanges. Reads the route table; never writes it."""

    def __init__(self, ctx: ProxyContext) -> None:
        self.ctx = ctx
        self.table = ctx.table
        self.metrics = ctx.metrics   # typed when compiled: the request count is a C add
        self.healthcheck_ua = ctx.config.healthcheck_user_agent.encode()
        self.sticky_names = tuple(n.encode() for n in ctx.config.sticky_session_cookie_names)
        self.extra_log = tuple(h.lower().encode() for h in headers_to_log(ctx.config))
        config = ctx.config
        # X-Forwarded-Proto: gorouter's rules, chosen once (force https, overwrite with our scheme, or keep).
        self.forced_proto = b"https" if config.force_forwarded_proto_https else (
            ctx.scheme if config.sanitize_forwarded_proto else b"")
        # Connection may name these and they are still passed on (hop_by_hop_headers_to_filter).
        self.keep_named = frozenset(n.lower().encode("latin-1") for n in config.hop_by_hop_headers_to_filter)
        self.close_100_continue = not config.keep_alive_100_continue_requests
        # X-Forwarded-Client-Cert: passed untouched (always_forward, the default) costs nothing per request.
        self.client_cert_mode = "" if config.forwarded_client_cert == "always_forward" else \
            config.forwarded_client_cert
        special = dict(_SPECIAL)
        if self.client_cert_mode:
            special[b"x-forwarded-client-cert"] = _XFCC
        if ctx.w3c is not None:
            special.update({b"traceparent": _TRACEPARENT, b"tracestate": _TRACESTATE})
        self.trace_key = config.trace_key.encode("latin-1", "replace")
        if self.trace_key:
            special[b"x-vcap-trace"] = _TRACE_KEY
        self.negotiate = config.sticky_sessions_for_auth_negotiate
        if self.negotiate:
            special[b"authorization"] = _AUTHORIZATION
        self.special = special if len(special) > len(_SPECIAL) else _SPECIAL
        # Header names as clients spell them -> their kind (_PLAIN: copied): a request's names are looked up
        # as they came, without a lower-cased copy of each (clients repeat the same few spellings).
        self.kinds: dict[bytes, object] = {}
        self.hosts = HostNames()
        self.lines = ForwardedLines()
        self.head = HeadBuffer()     # the forwarded head, compiled (see the module docstring)

    def route(self, client, parser, url: bytes, headers: list) -> Exchange:
        """The Exchange for one parsed request head (answered by the router itself when it must be)."""
        self.metrics.requests += 1
        if parser.should_keep_alive():
            # llhttp keeps a request alive as HTTP/1.1 without Connection: close, or as another version with
            # Connection: keep-alive: 1.1 is presumed (and asked only when a Connection header came), which
            # spares formatting the version string per request.
            return self._route(client, parser, url, headers, _PRESUMED_11)
        return self._route(client, parser, url, headers, parser.get_http_version())

    def _route(self, client, parser, url: bytes, headers: list, version: str, as_pieces: bool = False) -> Exchange:
        """`as_pieces`: build the forwarded head as a list of pieces even when compiled (see the module
        docstring); a compiled call that meets a head needing it starts over with it."""
        ctx = self.ctx
        method = parser.get_method()
        ex = _new_exchange(client, method, url)
        ex.started_at = monotonic()
        ex.started_wall = wall_clock()
        ex.request_id = rid = request_id()
        presumed = not version
        if presumed:
            http11 = keep_alive = True
        else:
            # not kept alive by llhttp, or asked: only HTTP/1.1 is ever kept alive (not 1.0's keep-alive)
            http11 = version == "1.1"
            keep_alive = False
        client.http11 = http11
        if not http11:
            ex.http11 = False
        ex.keep_alive = keep_alive
        if not presumed and version[:2] != "1.":
            if version[:2] == "0.":
                # `GET /` with no version (HTTP/0.9) is a malformed request to Go's server: 400
                return self._local(ex, errors.bare_response(400, close=True), 400, "")
            # llhttp accepts `HTTP/2.0` in a request line; gorouter answers 505 to it
            return self._local(ex, errors.bare_response(505, close=True), 505, "")

        host = b""
        host_seen = False
        xff = b""
        xfp = b""
        has_request_start = False
        app_instance = b""
        cookie = b""
        expect = b""
        named_hop: tuple[bytes, ...] = ()
        upgrade = b""
        chunked = False
        content_length = b""
        rs_values: dict[bytes, bytes] | None = None   # X-CF-Proxy-Signature / -Metadata, X-CF-Forwarded-Url
        rs_raw: list = None  # type: ignore[assignment]  # their header lines: a list once rs_values is set
        extra_log = self.extra_log
        log_values = [b""] * len(extra_log) if extra_log else None
        pieces = as_pieces or not cython.compiled
        head = self.head
        out: list
        if pieces:
            out = [method, b" ", url, b" HTTP/1.1\r\n"]   # then 4 pieces per header (see drop_connection_named)
        else:
            out = None  # type: ignore[assignment]
            head.start()
            head.put(method)
            head.put(b" ")
            head.put(url)
            head.put(b" HTTP/1.1\r\n")
        kinds = self.kinds
        traceparent = tracestate = authorization = b""
        xfcc: list | None = None      # X-Forwarded-Client-Cert values, read only when not always_forward
        for name, value in headers:
            kind = kinds.get(name)
            if kind is None:
                kind = header_kind(kinds, self.special, name, _PLAIN)
            if log_values is not None:
                lname = name.lower()
                if lname in extra_log:
                    log_values[extra_log.index(lname)] = value
            if kind is _PLAIN:
                _field(out, head, name, value)
                continue
            if kind is _HOST:
                if host_seen:
                    if presumed:
                        again = self._routed_again(client, parser, url, headers)
                        if again is not None:
                            return again
                    # Two Host headers: which one names the route is ambiguous (Go: "too many Host headers")
                    ex.keep_alive = False
                    return self._local(ex, errors.bare_response(400, close=True), 400, "")
                host_seen = True
                host = value
            elif kind is _DROP:
                continue
            elif kind is _UA:
                ex.user_agent = value
            elif kind is _XFF:
                xff = value if not xff else xff + b", " + value  # repeated headers: joined, as Go does
                continue
            elif kind is _XFP:
                xfp = value
                continue
            elif kind is _HOP:
                lname = name.lower()
                if presumed and (lname == b"connection" or lname == b"proxy-connection"):
                    # the header that may have kept another version alive: ask once, start over if so
                    again = self._routed_again(client, parser, url, headers)
                    if again is not None:
                        return again
                    presumed = False
                if lname == b"transfer-encoding":
                    chunked = True
                elif lname == b"connection":
                    named_hop = tuple(connection_tokens(value))
                elif lname == b"upgrade":
                    upgrade = value
                elif lname == b"te" and b"trailers" in connection_tokens(value):
                    _field(out, head, b"Te", b"trailers")   # as Go's ReverseProxy: gRPC needs it
                continue
            elif kind is _REFERER:
                ex.referer = value
            elif kind is _REQUEST_START:
                has_request_start = True
            elif kind is _APP_INSTANCE:
                app_instance = value
                continue
            elif kind is _COOKIE:
                cookie = value if not cookie else cookie + b"; " + value
            elif kind is _EXPECT:
                expect = value
            elif kind is _CONTENT_LENGTH:
                content_length = value
            elif kind is _TRACE_KEY:
                ex.trace_debug = value == self.trace_key
            elif kind is _AUTHORIZATION:
                authorization = value
            elif kind is _TRACEPARENT:
                traceparent = value
                continue
            elif kind is _TRACESTATE:
                tracestate = value
                continue
            elif kind is _XFCC:
                xfcc = [value] if xfcc is None else [*xfcc, value]
                continue
            elif kind is _ROUTE_SERVICE:
                if rs_values is None:
                    rs_values, rs_raw = {}, []
                rs_values.setdefault(name.lower(), value)
                rs_raw += (name, b": ", value, b"\r\n")
                continue
            _field(out, head, name, value)
        if log_values is not None:
            ex.log_values = tuple(log_values)

        # Answered by the router itself, whatever the Host: the load balancer's health check.
        if ex.user_agent == self.healthcheck_ua:
            ex.local_response = _OK if ctx.state.healthy else _UNAVAILABLE
            ex.status = 200 if ctx.state.healthy else 503
            return ex

        if named_hop:
            if pieces:
                out = drop_connection_named(out, named_hop, self.keep_named)
            elif connection_named_drops(named_hop, self.keep_named):
                return self._route(client, parser, url, headers, version, True)
        if not url.startswith(b"/"):
            absolute = absolute_form_host(url)
            if absolute:
                host = absolute
        ex.host = host
        host_name = self.hosts.name(host)
        if not host_name or host_name == client.client_ip_str:
            return self._local(ex, errors.empty_host(not keep_alive), 400, "empty_host", "empty_hosts")

        # gorouter sends 100-continue requests to the backend with Connection: close.
        close_upstream = not ctx.keep_alive
        if expect:
            if expect.lower() != b"100-continue":
                return self._local(ex, errors.bare_response(417, close=not keep_alive), 417, "")
            close_upstream = close_upstream or self.close_100_continue

        pool = self.table.lookup(host_name, url)
        if pool is None or not pool.members:
            if pool is not None and ctx.config.empty_pool_response_code_503:
                return self._local(ex, errors.no_endpoints(not keep_alive, host.decode("latin-1")), 503,
                                   "no_endpoints", "no_endpoints")
            # the Host as the client wrote it (port included), as gorouter's message quotes r.Host
            return self._local(ex, errors.unknown_route(host.decode("latin-1"), not keep_alive), 404,
                               "unknown_route", "unknown_routes")
        ex.pool = pool
        if app_instance:
            target = app_instance_target(self, ex, pool, app_instance)
            if target is None:
                return ex
            ex.app_instance = target
        elif cookie:
            if self.negotiate and authorization[:9].lower() == b"negotiate":
                # sticky_sessions_for_auth_negotiate: __VCAP_ID__ alone pins it, and to that instance only
                ex.sticky_id = sticky_instance(cookie, ())
                ex.must_be_sticky = bool(ex.sticky_id)
            if not ex.sticky_id and self.sticky_names:
                ex.sticky_id = sticky_instance(cookie, self.sticky_names)
        first = pool.members    # the pool's one Endpoint, or a tuple of 2+ (portico.routes.pool); not empty here
        if isinstance(first, tuple):
            first = first[0]
        service_url = first.route_service_url
        outbound = None
        if service_url or rs_values is not None:
            if not pieces:   # the route service rules edit the head's pieces: start over with them
                return self._route(client, parser, url, headers, version, True)
            outbound = route_service_verdict(self, ex, pool, service_url, rs_values, rs_raw, out,
                                           upgrade.lower() == b"websocket" and b"upgrade" in named_hop)
            if ex.local_response:
                return ex

        if ctx.w3c is not None:
            traceparent, tracestate = ctx.w3c.headers(ex, traceparent, tracestate)
            rid = ex.request_id
            _field(out, head, b"traceparent", traceparent)
            _field(out, head, b"tracestate", tracestate)
            if log_values is not None:
                log_value(log_values, extra_log, b"traceparent", traceparent)
                log_value(log_values, extra_log, b"tracestate", tracestate)
                ex.log_values = tuple(log_values)
        client_ip = client.client_ip
        ex.x_forwarded_for = xff = (xff + b", " + client_ip) if xff else client_ip
        if self.forced_proto and not (rs_values and ctx.route_services.is_route_service_traffic(rs_values)):
            xfp = self.forced_proto
        ex.x_forwarded_proto = xfp = xfp or ctx.scheme
        if pieces:
            out.append(b"X-Forwarded-For: ")
            out.append(xff)
            out.append(self.lines.proto_line(xfp))
            out.append(rid)
            out.append(b"\r\n" if has_request_start else self.lines.request_start(ex.started_wall))
        else:
            head.put(b"X-Forwarded-For: ")
            head.put(xff)
            head.put(self.lines.proto_line(xfp))
            head.put(rid)
            if has_request_start:
                head.put(b"\r\n")
            else:
                self.lines.put_request_start(head, ex.started_wall)
            more: list = []    # the lines the rules below add, written after them
        if ctx.zipkin is not None:
            added = ctx.zipkin.add_headers(headers, out if pieces else more)
            if added and log_values is not None:
                for name, value in added:
                    log_value(log_values, extra_log, name, value)
                ex.log_values = tuple(log_values)
        if self.client_cert_mode:
            arrived = bool(service_url) and outbound is None   # back from its route service, validated
            der = client.peer_certificate()
            service_traffic = der is not None and rs_values is not None and bool(rs_values) and \
                ctx.route_services.is_route_service_traffic(rs_values)
            forwarded_client_cert(self.client_cert_mode, der, xfcc or [], service_traffic, arrived,
                                  out if pieces else more)
        if outbound is not None:   # only as pieces (see above)
            address_route_service(out, outbound)
            ex.route_service = outbound.endpoint
        if not pieces:
            for piece in more:
                head.put(piece)
        if upgrade and parser.should_upgrade():
            # WebSockets and other upgrades: the only hop-by-hop fields passed on, so the backend can say 101.
            _field(out, head, b"Upgrade", upgrade)
            _field(out, head, b"Connection", b"Upgrade")
            ex.upgrade_request = True
            ex.head = b"".join(out) if pieces else head.take()
            ex.tail = _TAIL
            return ex
        ex.head = b"".join(out) if pieces else head.take()
        if chunked:
            ex.chunked_request = True
            ex.has_body = True
            ex.tail = _CHUNKED_CLOSE_TAIL if close_upstream else _CHUNKED_TAIL
        else:
            if content_length and content_length != b"0":
                ex.has_body = True
            ex.tail = _CLOSE_TAIL if close_upstream else _TAIL
        return ex

    def _routed_again(self, client, parser, url: bytes, headers: list) -> Exchange | None:
        """Ask the parser's HTTP version, presumed 1.1 so far: the request routed again with it when it is not
        1.1 (a header that llhttp's keep-alive verdict depends on came, or a second Host), else None."""
        version = parser.get_http_version()
        if version != "1.1":
            return self._route(client, parser, url, headers, version)
        return None

    def _local(self, ex: Exchange, data: bytes, status: int, code: str, counter: str = "") -> Exchange:
        ex.local_response = data
        ex.status = status
        ex.router_error = code
        if counter:
            setattr(self.metrics, counter, getattr(self.metrics, counter) + 1)
        return ex


def _field(out: list | None, head: HeadBuffer, name: bytes, value: bytes) -> int:
    """The line `name: value` into the head being built: its list of pieces when it has one (pure Python, or a
    head whose rules edit it), else the buffer."""
    if out is not None:
        out += (name, b": ", value, b"\r\n")
    else:
        head.put_field(name, value)
    return 0


def _new_exchange(client, method: bytes, url: bytes) -> Exchange:
    """Exchange(client, method, url), made without a Python-level call of its __init__ (a C call when
    compiled): the same five fields. tests/unit/test_request_router.py checks it against the constructor."""
    ex = Exchange.__new__(Exchange)
    ex.client = client
    ex.ctx = client.ctx
    ex.method = method
    ex.uri = url
    ex.is_head = method == b"HEAD"
    return ex


# Request header names the router reads or replaces, by kind; every other header is copied unchanged.
_HOST, _DROP, _UA, _XFF, _XFP, _HOP, _REFERER, _REQUEST_START, _APP_INSTANCE, _COOKIE, _EXPECT, \
    _CONTENT_LENGTH, _ROUTE_SERVICE, _XFCC, _TRACEPARENT, _TRACESTATE, _AUTHORIZATION, _TRACE_KEY = \
    (object() for _ in range(18))
_PLAIN = object()   # copied unchanged
_SPECIAL = {
    b"host": _HOST, b"user-agent": _UA, b"referer": _REFERER, b"x-forwarded-for": _XFF,
    b"x-forwarded-proto": _XFP, b"x-request-start": _REQUEST_START, b"x-cf-app-instance": _APP_INSTANCE,
    b"cookie": _COOKIE, b"expect": _EXPECT, b"content-length": _CONTENT_LENGTH,
    b"x-vcap-request-id": _DROP, b"x-cf-applicationid": _DROP, b"x-cf-instanceindex": _DROP,
    b"x-cf-instanceid": _DROP,
    b"x-cf-proxy-signature": _ROUTE_SERVICE, b"x-cf-proxy-metadata": _ROUTE_SERVICE,
    b"x-cf-forwarded-url": _ROUTE_SERVICE,
    **{name: _HOP for name in HOP_BY_HOP},
}

_PRESUMED_11 = ""    # RequestRouter._route's version when llhttp kept the request alive: HTTP/1.1 until asked
_TAIL = b"\r\n"
_CLOSE_TAIL = b"Connection: close\r\n\r\n"
_CHUNKED_TAIL = b"Transfer-Encoding: chunked\r\n\r\n"
_CHUNKED_CLOSE_TAIL = b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
