"""An HTTP/2 request head checked by RFC 9113's rules and turned into what the router reads from HTTP/1.1.

HTTP/2 carries the request line in pseudo-header fields (:method, :scheme, :authority, :path) and forbids the
connection-specific fields of HTTP/1.1. A head that breaks these rules is malformed: its stream is reset with
PROTOCOL_ERROR (RFC 9113 8.1.1), and the connection and its other streams carry on. A good head becomes the
(method, target, header list) that RequestRouter.route reads, so every HTTP/1.1 rule (X-Forwarded-*, request
id, sticky sessions, route services, rewrites) applies to HTTP/2 requests unchanged.

Host and :authority (RFC 9113 8.3.1): the target URI comes from :authority when it is present ("MUST NOT use
the Host header field to determine the target URI if :authority is present"); without it, Host is used. A Host
that differs from :authority is dropped, not refused: the RFC says a server SHOULD treat it as malformed, but Go's
server (so gorouter) routes by :authority and ignores Host, and common tools send both (`h2load -H host:...`
keeps :authority as the URL's). The backend sees one Host: the :authority.
"""

from __future__ import annotations

import re

_PSEUDO = frozenset({b":method", b":scheme", b":authority", b":path"})
# RFC 9113 8.2.2: fields that only mean something to one HTTP/1.1 connection.
_CONNECTION_SPECIFIC = frozenset({b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding",
                                  b"upgrade"})
_NAME = re.compile(rb"[!#$%&'*+\-.^_`|~0-9a-z]+\Z")
_BAD_VALUE = re.compile(rb"[\r\n\x00]|\A[ \t]|[ \t]\Z")
_CHUNKED = (b"transfer-encoding", b"chunked")


class MalformedRequest(Exception):
    """The head breaks RFC 9113 8.2 / 8.3: the stream is reset with PROTOCOL_ERROR."""


class NotOffered(MalformedRequest):
    """A well-formed request the router does not serve over HTTP/2 (CONNECT): answered 405 on its stream."""


class RequestHead:
    """What RequestRouter.route asks of a parser, for one HTTP/2 request (always HTTP/1.1 semantics)."""

    __slots__ = ("method",)

    def __init__(self, method: bytes) -> None:
        self.method = method

    def get_method(self) -> bytes:
        return self.method

    def get_http_version(self) -> str:
        return "1.1"

    def should_keep_alive(self) -> bool:
        return True      # a stream's end never closes its connection

    def should_upgrade(self) -> bool:
        return False     # Upgrade is forbidden in HTTP/2; extended CONNECT (RFC 8441) is not offered


def request_fields(headers: list[tuple[bytes, bytes]], body_follows: bool
                   ) -> tuple[bytes, bytes, list[tuple[bytes, bytes]]]:
    """(method, request target, HTTP/1.1-style header list) of an HTTP/2 request head, or MalformedRequest.

    Host comes first (from :authority); Cookie fields split by HTTP/2 are joined with "; " (RFC 9113 8.2.3);
    a body without Content-Length is marked chunked so an HTTP/1.1 backend can frame it.
    """
    method = scheme = authority = path = None
    host: bytes | None = None
    out: list[tuple[bytes, bytes]] = []
    cookies: list[bytes] | None = None
    has_length = False
    regular_seen = False
    for name, value in headers:
        if _BAD_VALUE.search(value) is not None:
            raise MalformedRequest("a field value with CR, LF, NUL or surrounding whitespace")
        if name[:1] == b":":
            if regular_seen:
                raise MalformedRequest("a pseudo-header field after a regular field")
            if name not in _PSEUDO:
                raise MalformedRequest(f"pseudo-header field {name.decode('latin-1')} is not allowed")
            if name == b":method":
                if method is not None:
                    raise MalformedRequest("repeated :method")
                method = value
            elif name == b":path":
                if path is not None:
                    raise MalformedRequest("repeated :path")
                path = value
            elif name == b":authority":
                if authority is not None:
                    raise MalformedRequest("repeated :authority")
                authority = value
            else:
                if scheme is not None:
                    raise MalformedRequest("repeated :scheme")
                scheme = value
            continue
        regular_seen = True
        if _NAME.match(name) is None:
            raise MalformedRequest("a field name that is not a lower-case token")
        if name in _CONNECTION_SPECIFIC:
            raise MalformedRequest(f"connection-specific field {name.decode('latin-1')}")
        if name == b"te":
            if value.lower() != b"trailers":
                raise MalformedRequest("TE other than trailers")
        elif name == b"host":
            if host is not None:
                raise MalformedRequest("repeated host")
            host = value
            continue
        elif name == b"cookie":
            if cookies is None:
                cookies = [value]
            else:
                cookies.append(value)
            continue
        elif name == b"content-length":
            has_length = True
        out.append((name, value))
    if method is None:
        raise MalformedRequest("no :method")
    if method == b"CONNECT":
        raise NotOffered("CONNECT is not offered (no tunnels over HTTP/2)")
    if scheme is None or not path:
        raise MalformedRequest("no :scheme or no :path")
    if path[:1] != b"/" and not (path == b"*" and method == b"OPTIONS"):
        raise MalformedRequest(":path is neither origin-form nor OPTIONS *")
    if authority is not None:
        host = authority
    out.insert(0, (b"host", host or b""))
    if cookies is not None:
        out.append((b"cookie", cookies[0] if len(cookies) == 1 else b"; ".join(cookies)))
    if body_follows and not has_length:
        out.append(_CHUNKED)
    return method, path, out


_NOT_TRAILERS = _CONNECTION_SPECIFIC | {b"te", b"trailer", b"content-length", b"host"}


def trailer_fields(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The request trailers that may be passed on, or MalformedRequest (a pseudo-header, a bad name or value:
    they could otherwise end up inside an HTTP/1.1 backend's last chunk)."""
    out = []
    for name, value in headers:
        if name[:1] == b":" or _NAME.match(name) is None or _BAD_VALUE.search(value) is not None:
            raise MalformedRequest("a malformed trailer field")
        if name not in _NOT_TRAILERS:
            out.append((name, value))
    return out
