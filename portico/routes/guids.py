# cython: annotation_typing=False
"""An endpoint's app GUID and instance GUID, kept as one small block instead of two strings.

Cloud Foundry's GUIDs are canonical lower-case UUIDs (8-4-4-4-12 hex; Diego's instance GUIDs are often the
short 8-4-4-4-4 form). Two such strings cost 192 B and two objects a route; their raw bytes in one bytes
object cost 80 B and one object. The block is:

- `b""` when both are empty (the shared empty bytes: nothing per route);
- one shape byte (`app_shape * 3 + instance_shape`; shape 0 empty, 1 canonical: 16 bytes, 2 short: 12 bytes)
  then the app's raw bytes, then the instance's;
- a `(app_id, instance_id)` tuple of the strings as registered when either is anything else (upper case,
  "app1", another length), so every reader gets back exactly the text that was registered.

Readers call `app_id_of` / `instance_id_of` (cold: /routes, snapshots, the dashboard), or, compiled, write
the hex straight into their own buffer (`cf_block`, `put_guid`) without building a string per request.
"""

from __future__ import annotations

import re
from typing import Any

try:
    import cython
except ImportError:   # no Cython installed: certainly the pure module
    from types import SimpleNamespace
    cython = SimpleNamespace(compiled=False)

if not cython.compiled:
    # Compiled, Cython drops this branch and guids.pxd makes this a C array: the scratch space the block and
    # the hex text are written into before they become one bytes or str (never read across calls).
    _BUF = bytearray(256)

Guids = bytes | tuple
_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-(?:[0-9a-f]{12}|[0-9a-f]{4})")
# a byte's value as a lower-case hex digit, 255 when it is not one (the compiled pack reads GUIDs through it)
_NIBBLE = bytes(int(chr(b), 16) if chr(b) in "0123456789abcdef" else 255 for b in range(256))
_HEX_PAIRS = "".join(f"{b:02x}" for b in range(256)).encode()   # byte b's two hex digits at 2 * b
_APP_LINE = b"X-CF-ApplicationID: "
_INDEX_LINE = b"\r\nX-CF-InstanceIndex: "
_INSTANCE_LINE = b"\r\nX-CF-InstanceID: "
_END = b"\r\n"


def pack(app_id: str, instance_id: str) -> Guids:
    """The block for these two ids (see the module's docstring)."""
    if not app_id and not instance_id:
        return b""
    if cython.compiled:
        p: Any = _BUF
        a = _pack_into(app_id, p + 1)
        if a >= 0:
            i = _pack_into(instance_id, p + 1 + _raw_size(a))
            if i >= 0:
                p[0] = a * 3 + i
                return p[:1 + _raw_size(a) + _raw_size(i)]
        return (app_id, instance_id)
    a = _shape(app_id)
    i = _shape(instance_id)
    if a < 0 or i < 0:
        return (app_id, instance_id)
    return bytes((a * 3 + i,)) + bytes.fromhex(app_id.replace("-", "")) + bytes.fromhex(instance_id.replace("-", ""))


def _shape(text: str) -> int:
    """Pure Python: the shape `text` packs as, -1 when it does not."""
    if not text:
        return 0
    if _GUID.fullmatch(text) is None:
        return -1
    return 1 if len(text) == 36 else 2


def _pack_into(text: str, out: Any) -> int:
    """Compiled only: `text`'s raw bytes written at `out`; its shape, or -1 when it is not a lower-case GUID.

    A lower-case GUID is ASCII, so its str keeps one byte a character: those bytes are read straight from the
    str's buffer, two at a time through a nibble table (a dash sits only between pairs)."""
    n = len(text)
    if n == 0:
        return 0
    # PyUnicode_KIND/_DATA are C macros guids.pxd cimports; this function runs compiled only
    if (n != 36 and n != 28) or PyUnicode_KIND(text) != PyUnicode_1BYTE_KIND:  # type: ignore[name-defined]  # noqa: F821
        return -1
    s = cython.cast(cython.p_uchar, PyUnicode_DATA(text))  # type: ignore[name-defined]  # noqa: F821
    nibble = _NIBBLE
    k = 0
    j = 0
    while j < n:
        if j == 8 or j == 13 or j == 18 or j == 23:
            if s[j] != 45:   # "-"
                return -1
            j += 1
            continue
        hi = nibble[s[j]]
        lo = nibble[s[j + 1]]
        if hi > 15 or lo > 15:
            return -1
        out[k] = hi * 16 + lo
        k += 1
        j += 2
    return 1 if n == 36 else 2


def _raw_size(shape: int) -> int:
    """The raw bytes a shape packs to: empty 0, canonical 8-4-4-4-12 16, short 8-4-4-4-4 12."""
    return 16 if shape == 1 else (12 if shape == 2 else 0)


def app_id_of(guids: Guids) -> str:
    """The app GUID as registered ("" when none)."""
    return _id_of(guids, False)


def instance_id_of(guids: Guids) -> str:
    """The instance GUID as registered ("" when none)."""
    return _id_of(guids, True)


def _id_of(guids: Guids, instance: bool) -> str:
    """One of the two ids (the instance's when `instance`) as registered."""
    if isinstance(guids, tuple):
        return guids[1] if instance else guids[0]
    if not guids:
        return ""
    block: bytes = guids
    n = _id_size(block[0], instance)
    return _text(block, _id_start(block[0], instance), n) if n else ""


def _id_start(shape: int, instance: bool) -> int:
    """Where one id's raw bytes start in a block whose shape byte is `shape`."""
    return 1 + _raw_size(shape // 3) if instance else 1


def _id_size(shape: int, instance: bool) -> int:
    """How many raw bytes one id takes in a block whose shape byte is `shape` (0: none registered)."""
    return _raw_size(shape % 3 if instance else shape // 3)


def has_instance_id(guids: Guids) -> bool:
    """Whether an instance GUID was registered (sticky sessions need one), without building it."""
    if isinstance(guids, tuple):
        return bool(guids[1])
    return bool(guids) and guids[0] % 3 != 0


def _text(block: bytes, start: int, n: int) -> str:
    """The `n` raw bytes at `start` as the dashed hex they were registered as."""
    if cython.compiled:
        p: Any = _BUF
        s: Any = block
        m = dashed_hex(s + start, n, p)
        return cython.cast(cython.p_char, p)[:m].decode("ascii")
    h = block[start:start + n].hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def dashed_hex(raw: Any, n: int, out: Any) -> int:
    """Compiled only: `n` raw bytes (16 or 12) written at `out` as dashed lower-case hex (8-4-4-4-12, or the short
    8-4-4-4-4), the GUID text; the length written. Request ids (portico.proxy.headers) are written by it too."""
    pairs: Any = _HEX_PAIRS
    k = 0
    for j in range(n):
        if 4 <= j <= 10 and not j & 1:    # the dashes of 8-4-4-4-12 (or -4)
            out[k] = 45
            k += 1
        c = raw[j] * 2
        out[k] = pairs[c]
        out[k + 1] = pairs[c + 1]
        k += 2
    return k


def put_guid(guids: Guids, instance: bool, out: Any) -> int:
    """Compiled only: one of the packed ids (the instance's when `instance`) written at `out` as text (room for
    36 bytes); its length (0 when none), or -1 when the ids are not packed (the caller then writes the str)."""
    if type(guids) is not bytes:
        return -1
    if not guids:
        return 0
    block: bytes = guids
    s: Any = block
    n = _id_size(s[0], instance)
    return dashed_hex(s + _id_start(s[0], instance), n, out) if n else 0


def cf_block(guids: Guids, index: str, address: str) -> bytes | None:
    """Compiled only: the X-CF-ApplicationID / InstanceIndex / InstanceID lines written straight from the block
    (endpoint.py has the rule); None when the ids are not packed, or the index or address is not plain ASCII
    without CR or LF, or too long: the caller then takes the general path."""
    if type(guids) is not bytes:
        return None
    m = len(index)
    if m + len(address) > 100:
        return None
    p: Any = _BUF
    k = _put_literal(p, 0, _APP_LINE)
    n = put_guid(guids, False, p + k)
    k += n
    k = _put_literal(p, k, _INDEX_LINE)
    for j in range(m):
        ch = index[j]
        if ch >= "\x7f" or ch == "\r" or ch == "\n":
            return None
        p[k] = ord(ch)
        k += 1
    k = _put_literal(p, k, _INSTANCE_LINE)
    n = put_guid(guids, True, p + k)
    if n == 0:
        for j in range(len(address)):
            ch = address[j]
            if ch >= "\x7f" or ch == "\r" or ch == "\n":
                return None
            p[k] = ord(ch)
            k += 1
    else:
        k += n
    k = _put_literal(p, k, _END)
    return p[:k]


def _put_literal(p: Any, k: int, literal: bytes) -> int:
    """Compiled only: `literal` written at `p + k` (libc's memcpy, as head_buffer copies); the new end."""
    s: Any = literal
    n = len(literal)
    memcpy(p + k, s, n)  # type: ignore[name-defined]  # noqa: F821 (libc's, cimported by guids.pxd)
    return k + n


def id_text(guids: Guids, instance: bool) -> str | bytes:
    """One id as the access log takes it (str or bytes, the same line): compiled, a packed id as the bytes of its
    hex, built from the block without a str; otherwise the str (`app_id_of` / `instance_id_of`)."""
    if cython.compiled and type(guids) is bytes:
        p: Any = _BUF
        n = put_guid(guids, instance, p)
        return p[:n]
    return instance_id_of(guids) if instance else app_id_of(guids)
