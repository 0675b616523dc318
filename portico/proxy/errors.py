"""Router error responses, byte for byte as gorouter writes them.

Every error carries `X-Cf-Routererror: <code>`, text/plain, `X-Content-Type-Options: nosniff` and the body
`<status> <reason>: <message>\n`. Fixed ones are built once at import; only 404 and 502 vary per request.
"""

from __future__ import annotations

from http import HTTPStatus

REASONS: dict[int, bytes] = {s.value: s.phrase.encode() for s in HTTPStatus}
REASONS[525] = b"SSL Handshake Failed"
REASONS[526] = b"Invalid SSL Certificate"
REASONS[496] = b"SSL Certificate Required"


def reason(status: int) -> bytes:
    return REASONS.get(status, b"Unknown")


def error_response(status: int, code: str, message: str, *, close: bool = False,
                   extra_headers: bytes = b"", body: str = "") -> bytes:
    """A complete HTTP/1.1 response for a router error (`body`, when given, is the whole text)."""
    phrase = reason(status)
    if body:
        body_bytes = body.encode("utf-8", "replace") + b"\n"
    else:
        body_bytes = b"%d %s: %s\n" % (status, phrase, message.encode("utf-8", "replace"))
    head = [b"HTTP/1.1 %d %s\r\n" % (status, phrase)]
    if code:
        head.append(b"X-Cf-Routererror: " + code.encode("latin-1", "replace") + b"\r\n")
    head.append(b"Content-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\n")
    head.append(extra_headers)
    head.append(b"Content-Length: %d\r\n" % len(body_bytes))
    if close:
        head.append(b"Connection: close\r\n")
    head.append(b"\r\n")
    return b"".join(head) + body_bytes


def bare_response(status: int, *, close: bool = True, body: bytes = b"") -> bytes:
    """A response without router error code, for protocol errors (400 bad framing, 505, 417...)."""
    head = b"HTTP/1.1 %d %s\r\nContent-Length: %d\r\n" % (status, reason(status), len(body))
    if body:
        head += b"Content-Type: text/plain; charset=utf-8\r\n"
    if close:
        head += b"Connection: close\r\n"
    return head + b"\r\n" + body


def as_http10(response: bytes) -> bytes:
    """A prepared `HTTP/1.1 ...` response as an HTTP/1.0 request is answered (Go says `HTTP/1.0`)."""
    return b"HTTP/1.0" + response[8:] if response[:8] == b"HTTP/1.1" else response


EMPTY_HOST = "Request had empty Host header"
ENDPOINT_FAILURE = "Registered endpoint failed to handle the request."
NO_ENDPOINTS = "Requested route has no available endpoints."
NO_CACHE = b"Cache-Control: no-cache, no-store\r\n"
SHORT_CACHE = b"Cache-Control: public,max-age=2\r\n"   # gorouter's addInvalidResponseCacheControlHeader


def empty_host(close: bool = False) -> bytes:
    return error_response(400, "empty_host", EMPTY_HOST, close=close, extra_headers=SHORT_CACHE)


def unknown_route(host: str, close: bool = False) -> bytes:
    return error_response(404, "unknown_route", f"Requested route ('{host}') does not exist.", close=close,
                          extra_headers=NO_CACHE)


def endpoint_failure(detail: str, close: bool = False) -> bytes:
    return error_response(502, f"endpoint_failure ({detail})", ENDPOINT_FAILURE, close=close)


def no_endpoints(close: bool = False, host: str = "") -> bytes:
    """503 no_endpoints; with `host` (the Host header, as gorouter's lookup handler writes it) for a route
    whose pool is empty."""
    if host:
        return error_response(503, "no_endpoints", f"Requested route ('{host}') has no available endpoints.",
                              close=close, extra_headers=SHORT_CACHE)
    return error_response(503, "no_endpoints", NO_ENDPOINTS, close=close, extra_headers=NO_CACHE)


def all_endpoints_full(close: bool = False) -> bytes:
    return error_response(503, "", "Backends are at their connection limit.", close=close)
