# cython: annotation_typing=False
"""The response head a client gets from a backend's: hop-by-hop fields out, router headers in.

The rules are fixed once per router (ResponseHeadRules, built from the config): which names are dropped
(hop-by-hop, X-CF-Proxy-Signature, http_rewrite.responses.remove_headers), which are added when absent
(http_rewrite.responses.add_headers_if_not_present), and whether sticky sessions look at Set-Cookie. A
router without http_rewrite does no per-response work for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from portico.proxy import errors
from portico.proxy.head_buffer import HeadBuffer
from portico.proxy.headers import HOP_BY_HOP, connection_tokens, header_kind

try:
    import cython
except ImportError:   # no Cython installed: certainly the pure module
    from types import SimpleNamespace
    cython = SimpleNamespace(compiled=False)

if TYPE_CHECKING:
    from portico.proxy.exchange_state import ExchangeState

_STATUS_LINES: dict[tuple[int, bytes, bool], bytes] = {}
# Response header names the router acts on, by kind; every other header is copied unchanged.
_R_HOP, _R_LENGTH, _R_VCAP_ID, _R_SET_COOKIE, _R_DROP, _R_AUTHENTICATE = (object() for _ in range(6))
# hop-by-hop names the router reads before dropping them (by kind, so a spelling is never lower-cased again)
_R_TRANSFER_ENCODING, _R_CONNECTION, _R_UPGRADE = (object() for _ in range(3))
_R_PLAIN = object()   # copied unchanged
_CONNECTION_OPTIONS = (b"close", b"keep-alive", b"upgrade")
_ORDER_LIMIT = 64     # header places remembered by ResponseHeadRules (see _order_names)


def status_line(status: int, reason: bytes, http11: bool = True) -> bytes:
    """The response status line; an HTTP/1.0 request is answered `HTTP/1.0 ...`, as Go's server does."""
    key = (status, reason, http11)
    line = _STATUS_LINES.get(key)
    if line is None:
        line = b"HTTP/1.%d %d %s\r\n" % (http11, status, reason or errors.reason(status))
        if len(_STATUS_LINES) < 256:
            _STATUS_LINES[key] = line
    return line


class ResponseHeadRules:
    """How this router rewrites response heads (see the module docstring)."""

    def __init__(self, sticky: Any = None, negotiate: bool = False, remove: tuple[str, ...] = (),
                 add_if_absent: tuple[tuple[str, str], ...] = (), router_ip: str = "") -> None:
        self.sticky = sticky
        self.router_ip = router_ip.encode()
        self.special = {
            b"content-length": _R_LENGTH, b"x-vcap-request-id": _R_VCAP_ID,
            b"x-cf-proxy-signature": _R_DROP,   # never shown to clients, as gorouter (it is a credential)
            **{name.lower().encode("latin-1"): _R_DROP for name in remove},
            **{name: _R_HOP for name in HOP_BY_HOP},
            b"transfer-encoding": _R_TRANSFER_ENCODING, b"connection": _R_CONNECTION, b"upgrade": _R_UPGRADE,
        }
        if sticky is not None:
            self.special[b"set-cookie"] = _R_SET_COOKIE
        if negotiate:   # sticky_sessions_for_auth_negotiate: a Negotiate challenge pins the client
            self.special[b"www-authenticate"] = _R_AUTHENTICATE
        # Header names as backends spell them -> their kind (_R_PLAIN: copied), so a response's names are
        # looked up as they came instead of lower-casing each (backends repeat the same few spellings).
        self.kinds: dict[bytes, object] = {}
        self.removed = frozenset(name.lower().encode("latin-1") for name in remove)
        self.rewrites = bool(remove or add_if_absent)     # http_rewrite applies to router answers too
        self.add_if_absent = tuple((n.lower().encode("latin-1"), n.encode("latin-1") + b": "
                                    + v.encode("latin-1") + b"\r\n") for n, v in add_if_absent)
        # The last status line made, by what it was made from: a backend answers `200 OK` over and over.
        self._last_status = 0
        self._last_reason = b""
        self._last_http11 = True
        self._last_line = b""
        # The header names of the last response, in order, with their kinds: a backend sends the same names in
        # the same order, and comparing a name with the one at its place is cheaper than hashing it (at most
        # _ORDER_LIMIT places; the lookup below stays the truth, this only remembers its answers).
        self._order_names: list[bytes] = []
        self._order_kinds: list[object] = []
        # The head being built (forwarded, add, add_field, take): compiled, written into a reused HeadBuffer;
        # pure Python, a list of pieces.
        self._head = HeadBuffer()
        self._out: list[bytes] = []

    def forwarded(self, ex: ExchangeState, status: int, reason: bytes, headers: list, skip: tuple
                  ) -> tuple[bytes | None, bool, tuple]:
        """Start the client's head: the status line and the backend's fields as the client gets them.

        Returns (Content-Length, chunked, extra hop-by-hop names from Connection). The caller adds its own
        lines (add, add_field) and takes the head (take). Called again with `skip`, it starts over.
        Compiled, the head is written into one reused buffer (a C copy per piece, no list and no join);
        pure Python collects the pieces in a list and joins them once in take().
        """
        http11 = ex.http11
        if status == self._last_status and http11 == self._last_http11 and reason == self._last_reason:
            line = self._last_line
        else:
            line = self._last_line = status_line(status, reason, http11)
            self._last_status = status
            self._last_reason = reason
            self._last_http11 = http11
        head = self._head
        if cython.compiled:
            head.start()
            head.put(line)
        else:
            out = self._out = [line]
        content_length = None
        chunked = False
        named: tuple = ()
        kinds = self.kinds
        sticky = self.sticky
        order_names = self._order_names
        order_kinds = self._order_kinds
        known = len(order_names)
        i = 0
        for name, value in headers:
            if i < known and name == order_names[i]:
                kind = order_kinds[i]
            else:
                kind = kinds.get(name)
                if kind is None:
                    kind = header_kind(kinds, self.special, name, _R_PLAIN)
                if i < known:
                    order_names[i] = name
                    order_kinds[i] = kind
                elif known < _ORDER_LIMIT:    # here i == known: the places fill in order
                    order_names.append(name)
                    order_kinds.append(kind)
                    known += 1
            i += 1
            if kind is _R_PLAIN:
                if not skip or name.lower() not in skip:
                    if cython.compiled:
                        head.put_field(name, value)
                    else:
                        out.extend((name, b": ", value, b"\r\n"))
                continue
            if kind is _R_HOP:
                continue
            if kind is _R_CONNECTION:
                if value != b"keep-alive" and value != b"close":   # the usual values name no header
                    named = tuple([t for t in connection_tokens(value) if t not in _CONNECTION_OPTIONS])
                continue
            if kind is _R_TRANSFER_ENCODING:
                chunked = b"chunked" in value.lower()
                continue
            if kind is _R_UPGRADE:
                if status == 101:
                    self.add_field(name, value)
                continue
            if kind is _R_DROP:
                continue
            if kind is _R_LENGTH:
                content_length = value
            elif kind is _R_VCAP_ID:
                ex.has_vcap_id_in_response = True
            elif kind is _R_SET_COOKIE:
                sticky.observe_set_cookie(ex, value)
            elif kind is _R_AUTHENTICATE and value[:9].lower() == b"negotiate":
                ex.negotiate_response = True
            if cython.compiled:
                head.put_field(name, value)
            else:
                out.extend((name, b": ", value, b"\r\n"))
        if sticky is not None and (ex.session_cookie or ex.sticky_id or ex.negotiate_response):
            cookie: list = []
            sticky.add_vcap_cookie(ex, cookie)
            for piece in cookie:
                self.add(piece)
        if ex.trace_debug and ex.endpoint is not None:
            addr = ex.endpoint.address.encode()
            self.add_field(b"X-Vcap-Router", self.router_ip)
            self.add_field(b"X-Vcap-Backend", addr)
            self.add_field(b"X-Cf-Routeendpoint", addr)
        if self.add_if_absent:
            present = {name.lower() for name, _ in headers} - self.removed  # removed first, as gorouter
            for lname, line in self.add_if_absent:
                if lname not in present:
                    self.add(line)
        return content_length, chunked, (named if not skip else ())

    def add(self, piece: bytes) -> None:
        """Append `piece` (whole lines) to the head being built."""
        if cython.compiled:
            self._head.put(piece)
        else:
            self._out.append(piece)

    def add_field(self, name: bytes, value: bytes) -> None:
        """Append the line `name: value` to the head being built."""
        if cython.compiled:
            self._head.put_field(name, value)
        else:
            self._out += (name, b": ", value, b"\r\n")

    def take(self, end: bytes) -> bytes:
        """The head built since forwarded(), with `end` (its last lines and the blank line) appended."""
        if cython.compiled:
            head = self._head
            head.put(end)
            return head.take()
        out = self._out
        out.append(end)
        self._out = []
        return b"".join(out)

    def rewrite_local(self, response: bytes) -> bytes:
        """http_rewrite on a response the router wrote itself (errors, health checks), as gorouter does."""
        head, sep, body = response.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        kept = [lines[0]] + [line for line in lines[1:]
                             if line.partition(b":")[0].strip().lower() not in self.removed]
        present = {line.partition(b":")[0].strip().lower() for line in kept[1:]}
        for lname, line in self.add_if_absent:
            if lname not in present:
                kept.append(line[:-2])
        return b"\r\n".join(kept) + sep + body

    def interim(self, status: int, reason: bytes, headers: list) -> bytes:
        """A 1xx answer (100 Continue, 103 Early Hints) for an HTTP/1.1 client."""
        out = [status_line(status, reason)]
        for name, value in headers:
            if name.lower() not in HOP_BY_HOP:
                out += (name, b": ", value, b"\r\n")
        out.append(b"\r\n")
        return b"".join(out)


def response_head_too_big(headers: list, max_count: int, max_bytes: int) -> str | None:
    """max_response_headers / max_response_header_bytes: the reason (gorouter's words) when past them."""
    if max_count and len(headers) > max_count:
        return "Too many response headers"
    if max_bytes and sum(len(n) + len(v) + 4 for n, v in headers) > max_bytes:
        return f"net/http: server response headers exceeded {max_bytes} bytes; aborted"
    return None
