"""Zipkin B3 headers (tracing.enable_zipkin): pass a caller's trace on, or start one."""

from __future__ import annotations

from random import getrandbits

_B3_NAMES = (b"x-b3-traceid", b"x-b3-spanid", b"b3")


class ZipkinHeaders:
    def add_headers(self, headers: list, out: list) -> None:
        """Add X-B3-TraceId/SpanId (and a single `b3` header) when the request has no trace yet."""
        for name, _value in headers:
            if name.lower() in _B3_NAMES:
                return
        trace = b"%032x" % getrandbits(128)
        span = b"%016x" % getrandbits(64)
        out += (b"X-B3-TraceId: ", trace, b"\r\nX-B3-SpanId: ", span, b"\r\nb3: ", trace, b"-", span,
                b"\r\n")
