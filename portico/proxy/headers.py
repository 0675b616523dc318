# cython: annotation_typing=False
"""Header rules shared by the request and response paths: hop-by-hop names and request ids."""

from __future__ import annotations

from random import getrandbits

# Lower-cased names never forwarded in either direction (RFC 9110 7.6.1 plus the legacy ones).
HOP_BY_HOP = frozenset({
    b"connection", b"keep-alive", b"te", b"trailer", b"transfer-encoding", b"upgrade",
    b"proxy-connection", b"proxy-authenticate", b"proxy-authorization",
})

_UUID_VARIANT = 0x8000 << 48          # RFC 4122 variant bits in the clock_seq field
_UUID_VERSION = 0x4000 << 64          # version 4 in time_hi
_UUID_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))


def request_id() -> bytes:
    """A random (version 4) UUID as bytes, without the cost of a uuid.UUID object per request."""
    n = (getrandbits(128) & _UUID_CLEAR) | _UUID_VERSION | _UUID_VARIANT
    h = b"%032x" % n
    return h[:8] + b"-" + h[8:12] + b"-" + h[12:16] + b"-" + h[16:20] + b"-" + h[20:]


def connection_tokens(value: bytes) -> list[bytes]:
    """The lower-cased options of a Connection header (`close`, `upgrade`, extra hop-by-hop names)."""
    return [t.strip().lower() for t in value.split(b",") if t.strip()]
