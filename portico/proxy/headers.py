# cython: annotation_typing=False
"""Header rules shared by the request and response paths: hop-by-hop names and request ids."""

from __future__ import annotations

import os

# Lower-cased names never forwarded in either direction (RFC 9110 7.6.1 plus the legacy ones).
HOP_BY_HOP = frozenset({
    b"connection", b"keep-alive", b"te", b"trailer", b"transfer-encoding", b"upgrade",
    b"proxy-connection", b"proxy-authenticate", b"proxy-authorization",
})

# Request ids (X-Vcap-Request-Id, gorouter's UUID v4 string) are made IDS_PER_REFILL at a time: one
# os.urandom call, one hex pass and 36 strided copies lay them out side by side, so a request takes one slice
# of ready bytes instead of building a UUID (or a number and five pieces) per request.
IDS_PER_REFILL = 512
UUID_LENGTH = 36
_VERSION_NIBBLE = bytes((b & 0x0F) | 0x40 for b in range(256))   # byte 6: version 4 in the high nibble
_VARIANT_BITS = bytes((b & 0x3F) | 0x80 for b in range(256))     # byte 8: RFC 4122 variant (10xx)
# Where each character of `xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx` comes from in the 32 hex digits (-1: a dash).
_SOURCE = tuple(-1 if i in (8, 13, 18, 23) else i - sum(1 for d in (8, 13, 18, 23) if d < i)
                for i in range(UUID_LENGTH))


class _RequestIds:
    """A pool of formatted random UUIDs, refilled in bulk from os.urandom (never `random`)."""

    def __init__(self) -> None:
        self.ids = b""
        self.next = 0

    def take(self) -> bytes:
        start = self.next
        if start >= len(self.ids):
            self.refill()
            start = 0
        self.next = start + UUID_LENGTH
        return self.ids[start:start + UUID_LENGTH]

    def refill(self) -> None:
        raw = bytearray(os.urandom(16 * IDS_PER_REFILL))
        raw[6::16] = raw[6::16].translate(_VERSION_NIBBLE)
        raw[8::16] = raw[8::16].translate(_VARIANT_BITS)
        digits = bytearray(raw.hex(), "ascii")
        ids = bytearray(b"-" * (UUID_LENGTH * IDS_PER_REFILL))
        for i, source in enumerate(_SOURCE):
            if source >= 0:
                ids[i::UUID_LENGTH] = digits[source::32]
        self.ids = bytes(ids)
        self.next = 0

    def forget(self) -> None:
        """Drop the ids made so far (a forked child must never hand out its parent's)."""
        self.ids = b""
        self.next = 0


_IDS = _RequestIds()
os.register_at_fork(after_in_child=_IDS.forget)


def request_id() -> bytes:
    """A random (version 4) UUID as bytes, `xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx`, from the pool."""
    return _IDS.take()


KINDS_CACHE_SIZE = 1024   # header-name spellings a router remembers (see header_kind)


def header_kind(kinds: dict, special: dict, name: bytes, plain: object) -> object:
    """The kind of header `name` for a reader that acts on the lower-cased names in `special` (`plain`: copied
    unchanged), remembered in `kinds` as spelt, so the same spelling is next found without a lower-cased
    copy. At most KINDS_CACHE_SIZE spellings are kept: made-up names past that are looked up each time."""
    kind = special.get(name.lower(), plain)
    if len(kinds) < KINDS_CACHE_SIZE:
        kinds[name] = kind
    return kind


def connection_tokens(value: bytes) -> list[bytes]:
    """The lower-cased options of a Connection header (`close`, `upgrade`, extra hop-by-hop names)."""
    return [t.strip().lower() for t in value.split(b",") if t.strip()]
