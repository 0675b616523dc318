# cython: annotation_typing=False
"""Header rules shared by the request and response paths: hop-by-hop names and request ids."""

from __future__ import annotations

import os
from binascii import hexlify
from types import SimpleNamespace
from typing import Any

try:
    import cython
except ImportError:   # no Cython installed: certainly the pure module
    cython = SimpleNamespace(compiled=False)

if not cython.compiled:   # compiled, headers.pxd cimports it (a C call); pure Python never calls it
    from portico.routes.guids import dashed_hex

# Lower-cased names never forwarded in either direction (RFC 9110 7.6.1 plus the legacy ones).
HOP_BY_HOP = frozenset({
    b"connection", b"keep-alive", b"te", b"trailer", b"transfer-encoding", b"upgrade",
    b"proxy-connection", b"proxy-authenticate", b"proxy-authorization",
})

# Request ids (X-Vcap-Request-Id, gorouter's UUID v4 string) come from random bytes drawn IDS_PER_REFILL ids
# at a time (one os.urandom call, two strided translates for the version and variant bits). Compiled, each id is
# written from its 16 bytes by the GUID writer's C loop into a 36-byte scratch and taken as one bytes (no list,
# no split). Pure Python formats the whole batch at once instead: one hex pass that puts a dash every 2 bytes,
# 3 strided deletes of the dashes a UUID has not, and one split into the pool's list. Either way a request takes
# one ready bytes object instead of building a UUID (or a number and five pieces) per request.
IDS_PER_REFILL = 512
UUID_LENGTH = 36
_VERSION_NIBBLE = bytes((b & 0x0F) | 0x40 for b in range(256))   # byte 6: version 4 in the high nibble
_VARIANT_BITS = bytes((b & 0x3F) | 0x80 for b in range(256))     # byte 8: RFC 4122 variant (10xx)
# raw.hex("-", 2) lays each id out as 8 groups of 4 digits, each followed by a dash (40 characters with the
# one appended at the end); deleting the dashes at these offsets, last first, leaves 8-4-4-4-12 and a dash.
_SURPLUS_DASHES = (34, 29, 4)


def _random_uuids() -> bytearray:
    """IDS_PER_REFILL version-4 UUIDs' 16 bytes each, from os.urandom: the version and variant bits set by two
    strided translates over the whole batch."""
    raw = bytearray(os.urandom(16 * IDS_PER_REFILL))
    raw[6::16] = raw[6::16].translate(_VERSION_NIBBLE)
    raw[8::16] = raw[8::16].translate(_VARIANT_BITS)
    return raw


class _RequestIds:
    """A pool of random UUIDs, refilled in bulk from os.urandom (never `random`)."""

    def __init__(self) -> None:
        self.ids: list[bytes] = []      # pure Python: the batch's formatted ids
        self.random = b""               # compiled: the batch's random bytes, 16 per id
        self.text = bytearray(UUID_LENGTH)   # compiled: the id being written
        self.next = 0

    def take(self) -> bytes:
        if cython.compiled:
            return self._format_next()
        if self.next >= len(self.ids):
            self.refill()
        rid = self.ids[self.next]
        self.next += 1
        return rid

    def _format_next(self) -> bytes:
        """Compiled only: the next id's 16 random bytes (version and variant bits set) as its text, written by
        the GUID writer (portico.routes.guids.dashed_hex) into a 36-byte scratch."""
        i = self.next
        if 16 * i >= len(self.random):
            self.random = bytes(_random_uuids())
            i = 0
        self.next = i + 1
        r: Any = self.random
        p: Any = self.text
        n = dashed_hex(r + 16 * i, 16, p)
        return p[:n]                # compiled: one bytes made from the C buffer

    def refill(self) -> None:
        raw = _random_uuids()
        ids = bytearray(hexlify(raw, b"-", 2))
        ids.append(0x2D)   # the dash after the last group, so every id has the same 40-character layout
        width = 40
        for offset in _SURPLUS_DASHES:
            del ids[offset::width]
            width -= 1
        ids[UUID_LENGTH::UUID_LENGTH + 1] = bytearray(b" ") * IDS_PER_REFILL   # each id's last dash: a separator
        ids.pop()
        self.ids = bytes(ids).split(b" ")    # one bytes object per id, made in C
        self.next = 0

    def forget(self) -> None:
        """Drop the ids (and random bytes) drawn so far (a forked child must never hand out its parent's)."""
        self.ids = []
        self.random = b""
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
