"""Trace headers as gorouter writes them: Zipkin B3 (tracing.enable_zipkin) and W3C trace context
(tracing.enable_w3c, tracing.w3c_tenant_id), and the headers each adds to the access log.

Both are objects only when enabled, so a router without tracing does nothing for it per request.
"""

from __future__ import annotations

import binascii
from random import getrandbits
from typing import Any

_B3_NAMES = (b"x-b3-traceid", b"x-b3-spanid", b"b3")
ZIPKIN_LOGGED = ("x-b3-traceid", "x-b3-spanid", "x-b3-parentspanid", "b3")
W3C_LOGGED = ("traceparent", "tracestate")
TRACESTATE_LIMIT = 2048       # a longer incoming tracestate is dropped, as gorouter does


def headers_to_log(config: Any) -> tuple[str, ...]:
    """extra_headers_to_log, then the tracing headers gorouter logs when tracing is on; each name once."""
    names: list[str] = list(config.extra_headers_to_log)
    if config.tracing.enable_zipkin:
        names += ZIPKIN_LOGGED
    if config.tracing.enable_w3c:
        names += W3C_LOGGED
    return tuple(dict.fromkeys(names))


class ZipkinHeaders:
    def add_headers(self, headers: list, out: list) -> tuple[tuple[bytes, bytes], ...]:
        """Add X-B3-TraceId/SpanId (and a single `b3` header) when the request has no trace yet.

        Returns the (lower-case name, value) pairs added, for the access log.
        """
        for name, _value in headers:
            if name.lower() in _B3_NAMES:
                return ()
        trace = b"%032x" % getrandbits(128)
        span = b"%016x" % getrandbits(64)
        out += (b"X-B3-TraceId: ", trace, b"\r\nX-B3-SpanId: ", span, b"\r\nb3: ", trace, b"-", span,
                b"\r\n")
        return (b"x-b3-traceid", trace), (b"x-b3-spanid", span), (b"b3", trace + b"-" + span)


class W3CHeaders:
    """traceparent / tracestate: a new trace from the request id, or the caller's trace with a new parent."""

    def __init__(self, tenant_id: str) -> None:
        self.key = (f"{tenant_id}@gorouter" if tenant_id else "gorouter").encode()

    def headers(self, ex: Any, traceparent: bytes, tracestate: bytes) -> tuple[bytes, bytes]:
        """(traceparent, tracestate) for the forwarded request; may re-key ex.request_id as gorouter does.

        With a valid incoming traceparent, the trace goes on under a new parent id and X-Vcap-Request-Id is
        the trace id written as a UUID; otherwise the trace id is the request id and the parent its low half.
        """
        previous = _parse_traceparent(traceparent)
        if previous is None:
            trace = ex.request_id.replace(b"-", b"")
            parent = trace[16:]
            return b"00-" + trace + b"-" + parent + b"-01", self.key + b"=" + parent
        trace, flags = previous
        parent = b"%016x" % getrandbits(64)
        ex.request_id = trace[:8] + b"-" + trace[8:12] + b"-" + trace[12:16] + b"-" + trace[16:20] + b"-" + trace[20:]
        entries = [self.key + b"=" + parent]
        if len(tracestate) <= TRACESTATE_LIMIT:
            for pair in tracestate.split(b","):
                key, sep, _ = pair.strip().partition(b"=")
                if sep and key != self.key:
                    entries.append(pair.strip())
        return b"00-" + trace + b"-" + parent + b"-" + flags, b",".join(entries)


def _parse_traceparent(value: bytes) -> tuple[bytes, bytes] | None:
    """(trace id, flags) of `vv-<32 hex>-<16 hex>-ff`, lower-cased; None when it does not parse."""
    text = value.strip().lower()
    if len(text) != 55:
        return None
    try:
        for part in (text[0:2], text[3:35], text[36:52], text[53:55]):
            binascii.unhexlify(part)
    except (binascii.Error, ValueError):
        return None
    return text[3:35], text[53:55]
