# cython: annotation_typing=False
"""A message head written into one reused buffer and taken as one bytes: no list of pieces, no join.

The request router writes the head it forwards to a backend here (compiled), and the Exchange joins that head
with an endpoint's X-CF-* lines and the head's last lines here too (joined3). Compiled (head_buffer.pxd), each
piece is a C copy into a bytearray used as a C buffer (its first `_size` bytes are the head, the rest room);
pure Python, the same steps on the bytearray. Used on the loop's thread only: a head is started, written and
taken within one call, so one buffer serves every request.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

try:
    import cython
except ImportError:   # no Cython installed: certainly the pure module
    cython = SimpleNamespace(compiled=False)

FIRST_BYTES = 4096          # the buffer's first size; it grows for a bigger head ...
KEEP_BYTES = 64 << 10       # ... and is given back after one past this


if not cython.compiled:   # compiled, Cython drops this branch: head_buffer.pxd cimports libc's memcpy
    def memcpy(dst: Any, src: Any, n: int) -> None:
        raise NotImplementedError("pure Python never copies through pointers")


def _copy(p: Any, s: Any, n: int) -> None:
    """Compiled only: `n` bytes from `s` to `p` (the buffer has room; they never overlap), by libc's memcpy
    (a few instructions at any small size: a loop over words cost ~4 per 8 bytes, more than the call)."""
    memcpy(p, s, n)


class HeadBuffer:
    """One head at a time: start(), put() and put_field() in order, then take()."""

    def __init__(self) -> None:
        self._buffer = bytearray(FIRST_BYTES)
        self._size = 0
        self._keep = KEEP_BYTES     # compiled: a C number, compared without a Python int

    def start(self) -> None:
        """Forget anything written since the last take() (a head abandoned half-way)."""
        self._size = 0

    def put(self, data: bytes) -> int:
        """`data` as it is."""
        n = len(data)
        size = self._size
        if size + n > len(self._buffer):
            self._grow(n)
        if cython.compiled:
            p: Any = self._buffer       # compiled: the buffer's storage
            _copy(p + size, data, n)
        else:
            self._buffer[size:size + n] = data
        self._size = size + n
        return 0

    def put_field(self, name: bytes, value: bytes) -> int:
        """The line `name: value` and its end."""
        n = len(name)
        m = len(value)
        size = self._size
        if size + n + m + 4 > len(self._buffer):
            self._grow(n + m + 4)
        if cython.compiled:
            p: Any = self._buffer
            _copy(p + size, name, n)
            size += n
            p[size] = 58          # ":"
            p[size + 1] = 32      # " "
            size += 2
            _copy(p + size, value, m)
            size += m
            p[size] = 13          # "\r"
            p[size + 1] = 10      # "\n"
            self._size = size + 2
        else:
            self._buffer[size:size + n + m + 4] = name + b": " + value + b"\r\n"
            self._size = size + n + m + 4
        return 0

    def take(self) -> bytes:
        """The head written since start() (or the last take()), as one bytes; the buffer is then empty."""
        size = self._size
        self._size = 0
        if cython.compiled:
            p: Any = self._buffer
            head: bytes = p[:size]     # compiled: one bytes copied from the buffer's storage
        else:
            head = bytes(self._buffer[:size])
        if len(self._buffer) > self._keep:
            self._buffer = bytearray(FIRST_BYTES)
        return head

    def _grow(self, n: int) -> None:
        """Room for `n` more bytes after `_size` (the buffer at least doubles, so growing is rare)."""
        size = len(self._buffer)
        self._buffer.extend(bytes(max(self._size + n, 2 * size) - size))


_SCRATCH = HeadBuffer()


def joined(pieces: list[bytes]) -> bytes:
    """b"".join(pieces): compiled, a C copy per piece and one bytes made when they fit the buffer as it is (a
    response head and a small body); bigger ones are joined, never copied twice through a grown buffer."""
    if not cython.compiled:
        return b"".join(pieces)
    scratch = _SCRATCH
    size = 0
    for piece in pieces:
        size += len(piece)
    if size > len(scratch._buffer):
        return b"".join(pieces)
    scratch.start()
    for piece in pieces:
        scratch.put(piece)
    return scratch.take()


def joined3(a: bytes, b: bytes, c: bytes) -> bytes:
    """a + b + c as one new bytes (compiled: three C copies and one bytes made, no tuple and no join)."""
    if not cython.compiled:
        return b"".join((a, b, c))
    scratch = _SCRATCH
    scratch.start()
    scratch.put(a)
    scratch.put(b)
    scratch.put(c)
    return scratch.take()
