# cython: annotation_typing=False, cdivision=True
# (compiled: a str value is read as its UTF-8 form, which for ASCII is the str's own storage)
# cython: c_string_encoding=utf8
"""The access log: one gorouter-format line per request, buffered in memory and written in batches.

`write_line()` runs on the hot path (ExchangeObserver calls it once per request with the values as arguments;
`log()` takes them as a tuple): it formats one line into the batch, a bytearray whose first `_size` bytes are
lines and the rest room (the timestamp prefix is made once per second). Compiled (access_log.pxd), C loops write
the line: each value scanned for bytes that need escaping while copied, numbers digit by digit, an ASCII str
copied from its own storage, no Python object per field. Pure Python formats it with one bytes %-template
checked by one translate; tests compare the two byte for byte. `flush()` writes the batch with one O_APPEND
os.write, from a loop timer every 0.2 s and at close: on the loop thread, as a batch reaches the page cache in
well under a millisecond per MB (a thread adds GIL hand-offs and ordering for nothing), and one O_APPEND write
keeps lines whole when router processes share the file. A file moved away by logrotate is noticed (inode
check, at most once a second) and reopened.

Line format (gorouter's), values `"-"` when empty, `"` and `\\` and control characters escaped:
    <host> - [<time>] "<method> <uri> <proto>" <status> <request bytes> <response bytes> "<referer>"
    "<user agent>" "<client ip:port>" "<backend ip:port>" x_forwarded_for:"…" x_forwarded_proto:"…"
    vcap_request_id:"…" response_time:<s> gorouter_time:<s> app_id:"…" app_index:"…" instance_id:"…"
    x_cf_routererror:"…" <extra_header>:"…"…
Time is RFC 3339 in UTC with nine fraction digits, like gorouter: `2021-06-23T15:07:22.980439000Z` (the last
three are 0: a float epoch start time only carries microseconds). Seconds fields use six decimals (`0.024618`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any

from portico.observe.log_quoting import header_field_name, quote_bytes

try:
    import cython
    COMPILED: bool = cython.compiled
except ImportError:   # no Cython installed: certainly the pure module
    COMPILED = False

FLUSH_INTERVAL = 0.2          # seconds between timed flushes
MAX_BUFFERED_LINES = 8192     # flush early in a burst so memory stays bounded
ROTATION_CHECK_INTERVAL = 1.0  # seconds between inode checks

log = logging.getLogger(__name__)

_BASE_FIELDS = 15


def _template(extra_names: tuple[str, ...]) -> bytes:
    """The line as one bytes %-template. Times are written from integers (seconds and microseconds), which
    formats far faster than a float with %.6f."""
    line = (b'%s - [%s%06d000Z] "%s %s %s" %d %d %d "%s" "%s" "%s" "%s" x_forwarded_for:"%s" '
            b'x_forwarded_proto:"%s" vcap_request_id:"%s" response_time:%s%d.%06d gorouter_time:%s%d.%06d '
            b'app_id:"%s" app_index:"%s" instance_id:"%s" x_cf_routererror:"%s"')
    for name in extra_names:
        line += b' ' + name.encode() + b':"%s"'
    return line + b"\n"


# Every printable ASCII byte but `"` and `\`: deleting these from a line leaves only the format's own quotes
# and newline when no value needs escaping. One C pass instead of a regex and a count.
_SAFE_BYTES = bytes(b for b in range(0x20, 0x7F) if b not in (0x22, 0x5C))
# The compiled writer's table: 1 for a byte that sends its value to quote_bytes (control, `"`, `\`, non-ASCII).
_NEEDS_QUOTING = bytes(0 if 0x20 <= b < 0x7F and b not in (0x22, 0x5C) else 1 for b in range(256))
_DASH = b"-"
# The compiled writer's word test, eight bytes in one 64-bit word w: the high bit of (w - 0x20 in each byte) & ~w
# is set only under a byte below 0x20, of (v - 0x01 in each byte) & ~v only under a zero byte of v (so for
# v = w ^ 0x22.. under a `"`), and w's own high bit under a non-ASCII byte. Exact for "is there one".
_LOW = 0x0101010101010101
_HIGH = 0x8080808080808080
_SPACES = 0x2020202020202020
_QUOTES = 0x2222222222222222
_BACKSLASHES = 0x5C5C5C5C5C5C5C5C
_DELETES = 0x7F7F7F7F7F7F7F7F
INITIAL_BUFFER_BYTES = 64 << 10   # the batch's first size; it grows as needed and is reused after each flush
KEEP_BUFFER_BYTES = 4 << 20       # a batch grown past this (a burst of long lines) is given back after flush


def _as_bytes(value: bytes | str | None) -> bytes:
    """A value as the pure line takes it: str (an endpoint's, a router error) as UTF-8, None as empty."""
    if isinstance(value, str):
        return value.encode()
    return value or b""


def _copy(p: Any, s: Any, n: int) -> None:
    """Compiled only: `n` bytes from `s` to `p` (room made; no overlap), by libc's memcpy as head_buffer copies."""
    memcpy(p, s, n)  # type: ignore[name-defined]  # noqa: F821 (libc's, cimported by access_log.pxd)


class AccessLog:
    """Buffered writer of gorouter access log lines to `path` (appended, created if missing)."""

    def __init__(self, path: str, extra_headers: tuple[str, ...] = ()) -> None:
        self.path = path
        self.extra_headers = tuple(extra_headers)
        self._template = _template(tuple(header_field_name(h) for h in self.extra_headers))
        self._field_count = _BASE_FIELDS + len(self.extra_headers)
        self._extra_count = len(self.extra_headers)
        self._leftover = b'"' * (2 * (12 + self._extra_count)) + b"\n"  # what translate leaves of a clean line
        self._buffer = bytearray(INITIAL_BUFFER_BYTES)   # the batch: its first `_size` bytes are lines
        self._size = 0
        self._quoting = _NEEDS_QUOTING
        self._lines = 0
        self._max_lines = MAX_BUFFERED_LINES   # compiled: a C number, compared without a Python int
        self._extra_keys = tuple(b" " + header_field_name(h).encode() + b':"' for h in self.extra_headers)
        self._second = -1
        self._second_text: bytes = b""
        self._fd = -1
        self._inode: tuple[int, int] | None = None
        self._next_rotation_check = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._failing = False
        self._open()

    # ---- hot path ----------------------------------------------------------------------------------------

    def log(self, start_time: float, status: int, request_bytes: int, response_bytes: int,
            response_time: float | None, gorouter_time: float | None, fields: tuple) -> None:
        """Format one line from a tuple of values and buffer it (write_line with the values in a tuple).

        `fields`: host, method, uri, proto, referer, user agent, client addr, backend addr, x_forwarded_for,
        x_forwarded_proto, vcap_request_id, app_id, app_index, instance_id, router error, then one value per
        extra header. Empty values are written as `-`; a missing or negative time as `-`.
        """
        if len(fields) != self._field_count:
            fields = (tuple(fields) + (b"",) * self._field_count)[:self._field_count]
        self.write_line(start_time, status, request_bytes, response_bytes,
                        -1.0 if response_time is None else response_time,
                        -1.0 if gorouter_time is None else gorouter_time,
                        fields[0], fields[1], fields[2], fields[3], fields[4], fields[5], fields[6], fields[7],
                        fields[8], fields[9], fields[10], fields[11], fields[12], fields[13], fields[14],
                        tuple(fields[15:]))

    def write_line(self, start_time: float, status: int, request_bytes: int, response_bytes: int,
                   response_time: float, gorouter_time: float, host: bytes, method: bytes, uri: bytes,
                   proto: bytes, referer: bytes, user_agent: bytes, client_addr: bytes, backend: str | bytes,
                   x_forwarded_for: bytes, x_forwarded_proto: bytes, request_id: bytes, app_id: str | bytes,
                   app_index: str | bytes, instance_id: str | bytes, router_error: str | bytes,
                   extra: tuple | None) -> None:
        """One line into the batch; ExchangeObserver calls this once per request (compiled: a C call).

        The values come as separate arguments, not a tuple, so the compiled call builds nothing. Each is bytes,
        or str for those the router holds as str (the endpoint's address and ids, the router error): compiled,
        an ASCII str is copied from its own storage, never encoded. A time below zero is unknown (`-`).
        `extra`: one value per extra logged header, missing ones `-`.
        """
        second = int(start_time)
        micros = int((start_time - second) * 1e6 + 0.5)  # a float epoch time holds no real nanoseconds
        if micros == 1_000_000:
            second, micros = second + 1, 0
        if second != self._second:
            self._second = second
            self._second_text = time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(second)).encode()
        if COMPILED:
            self._put(host, b" - [")
            self._put_raw(self._second_text)
            self._put_number(micros, 6, b'000Z] "')
            self._put(method, b" ")
            self._put(uri, b" ")
            self._put(proto, b'" ')
            self._put_number(status, 1, b" ")
            self._put_number(request_bytes, 1, b" ")
            self._put_number(response_bytes, 1, b' "')
            self._put(referer, b'" "')
            self._put(user_agent, b'" "')
            self._put(client_addr, b'" "')
            self._put(backend, b'" x_forwarded_for:"')
            self._put(x_forwarded_for, b'" x_forwarded_proto:"')
            self._put(x_forwarded_proto, b'" vcap_request_id:"')
            self._put(request_id, b'" response_time:')
            self._put_seconds(response_time, b" gorouter_time:")
            self._put_seconds(gorouter_time, b' app_id:"')
            self._put(app_id, b'" app_index:"')
            self._put(app_index, b'" instance_id:"')
            self._put(instance_id, b'" x_cf_routererror:"')
            self._put(router_error, b'"')
            n = len(extra) if extra is not None else 0
            for i in range(self._extra_count):
                self._put_raw(self._extra_keys[i])
                self._put(extra[i] if i < n else None, b'"')  # type: ignore[index]
            self._put_raw(b"\n")
        else:
            v: tuple = (host, method, uri, proto, referer, user_agent, client_addr,
                          backend.encode() if type(backend) is str else backend, x_forwarded_for, x_forwarded_proto,
                          request_id, app_id.encode() if type(app_id) is str else app_id,
                          app_index.encode() if type(app_index) is str else app_index,
                          instance_id.encode() if type(instance_id) is str else instance_id,
                          router_error.encode() if type(router_error) is str else router_error)
            if self._extra_count:
                extra = tuple(extra or ())
                if len(extra) != self._extra_count:
                    extra = (extra + (b"",) * self._extra_count)[:self._extra_count]
                v += extra
            line = self._format(micros, status, request_bytes, response_bytes, response_time, gorouter_time, v)
            if line.translate(None, _SAFE_BYTES) != self._leftover:
                # Rare: a value holds a quote, a backslash or a control character. Escape each and build again.
                line = self._format(micros, status, request_bytes, response_bytes, response_time, gorouter_time,
                                    tuple([quote_bytes(x or b"-") for x in v]))
            end = self._size + len(line)
            self._buffer[self._size:end] = line     # grows the bytearray when the line passes its end
            self._size = end
        self._lines += 1
        if self._lines >= self._max_lines:
            self.flush()

    # ---- the compiled line's pieces: C loops writing into the batch (access_log.pxd types them) -------------
    # Each writes at `_size` and moves it on; `p` is the batch's storage, re-read after any growth.

    def _grow(self, n: int) -> None:
        """Room for `n` more bytes after `_size` (the batch at least doubles, so growing is rare)."""
        size = len(self._buffer)
        self._buffer.extend(bytes(max(self._size + n, 2 * size) - size))

    def _put(self, value: bytes | str | None, after: bytes) -> int:
        """`value` (`-` when empty), then the literal `after`. A value with a byte that needs escaping (or any
        non-ASCII byte) is written through quote_bytes instead (rare)."""
        if type(value) is bytes:
            data: Any = value
            n = len(data)
            s: Any = data           # compiled: the bytes' own storage
        elif value:
            text: Any = value
            n = len(text)           # characters; UTF-8 is longer only with a non-ASCII one, which the scan stops at
            s = text                # compiled: its UTF-8 form, which for an ASCII str is its own storage
        else:
            n = 0
        m = len(after)
        size = self._size
        if size + n + m + 1 > len(self._buffer):
            self._grow(n + m + 1)
        p: Any = self._buffer       # compiled: the batch's storage
        if n == 0:
            p[size] = 45            # "-"
            size += 1
        else:
            # Eight bytes at a time while none needs escaping (one word test: see _LOW), the last eight overlapping
            # the word before; below eight bytes, and from a word with such a byte, one by one against the table.
            j = 0
            while j < n and n >= 8:
                k = j if j + 8 <= n else n - 8
                w = cython.cast(cython.p_ulonglong, s + k)[0]
                x = w ^ _QUOTES
                y = w ^ _BACKSLASHES
                z = w ^ _DELETES
                if (w | ((w - _SPACES) & ~w) | ((x - _LOW) & ~x) | ((y - _LOW) & ~y) | ((z - _LOW) & ~z)) & _HIGH:
                    break
                cython.cast(cython.p_ulonglong, p + size + k)[0] = w
                j = k + 8
            t = self._quoting
            while j < n:
                c = s[j]
                if t[c]:
                    self._put_raw(quote_bytes(_as_bytes(value)))
                    self._put_raw(after)
                    return 0
                p[size + j] = c
                j += 1
            size += n
        _copy(p + size, after, m)
        self._size = size + m
        return 0

    def _put_raw(self, data: bytes) -> int:
        """`data` as it is."""
        n = len(data)
        size = self._size
        if size + n > len(self._buffer):
            self._grow(n)
        p: Any = self._buffer       # compiled: the batch's storage
        _copy(p + size, data, n)
        self._size = size + n
        return 0

    def _put_number(self, n: int, width: int, after: bytes) -> int:
        """`n` in decimal, zero-padded to `width` digits (as %d and %06d), then `after`."""
        m = len(after)
        size = self._size
        if size + 21 + width + m > len(self._buffer):
            self._grow(21 + width + m)
        p: Any = self._buffer       # compiled: the batch's storage
        if n < 0:
            p[size] = 45
            size += 1
            n = -n
        digits = 1
        x = n
        while x >= 10:
            x //= 10
            digits += 1
        end = size + (digits if digits > width else width)
        i = end
        while i > size:             # from the last digit back; past the number's own digits n is 0: padding
            i -= 1
            p[i] = 48 + n % 10
            n //= 10
        _copy(p + end, after, m)
        self._size = end + m
        return 0

    def _put_seconds(self, seconds: float, after: bytes) -> int:
        """Seconds with six decimals (`0.024618`), or `-` when below zero (unknown); then `after`."""
        if seconds < 0:
            return self._put(None, after)
        micros = int(seconds * 1e6 + 0.5)
        self._put_number(micros // 1_000_000, 1, b".")
        return self._put_number(micros % 1_000_000, 6, after)

    # ---- the pure line: one %-template (write_line escapes and appends it) -----------------------------------

    def _format(self, micros, status, request_bytes, response_bytes, response_time, gorouter_time, v) -> bytes:
        d = b"-"
        if response_time is None or response_time < 0:
            rt_sign, rt_s, rt_us = b"-", 0, 0
        else:
            rt_sign = b""
            rt_s, rt_us = divmod(int(response_time * 1e6 + 0.5), 1_000_000)
        if gorouter_time is None or gorouter_time < 0:
            gt_sign, gt_s, gt_us = b"-", 0, 0
        else:
            gt_sign = b""
            gt_s, gt_us = divmod(int(gorouter_time * 1e6 + 0.5), 1_000_000)
        values: tuple = (v[0] or d, self._second_text, micros, v[1] or d, v[2] or d, v[3] or d, status, request_bytes,
                  response_bytes, v[4] or d, v[5] or d, v[6] or d, v[7] or d, v[8] or d, v[9] or d, v[10] or d,
                  rt_sign, rt_s, rt_us, gt_sign, gt_s, gt_us, v[11] or d, v[12] or d, v[13] or d, v[14] or d)
        if self._extra_count:
            values += tuple([x or d for x in v[15:]])
        line = self._template % values
        if rt_sign:  # "-" stands alone, without the zeroes
            line = line.replace(b"response_time:-0.000000", b"response_time:-", 1)
        if gt_sign:
            line = line.replace(b"gorouter_time:-0.000000", b"gorouter_time:-", 1)
        return line

    # ---- writing -----------------------------------------------------------------------------------------

    def start(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Flush every FLUSH_INTERVAL seconds on `loop` until close()."""
        self._loop = loop or asyncio.get_running_loop()
        self._schedule()

    def flush(self) -> None:
        """Write everything buffered in one append; on a write error drop the batch and log once."""
        if not self._size:
            return
        size = self._size
        self._size = 0
        self._lines = 0
        self._check_rotation()
        try:
            if self._fd < 0:
                self._open()
            view = memoryview(self._buffer)[:size]   # released on return, before the batch can grow again
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
            self._failing = False
        except OSError as exc:
            if not self._failing:
                log.error("access log %s: write failed, dropping lines: %s", self.path, exc)
            self._failing = True
        if len(self._buffer) > KEEP_BUFFER_BYTES:
            self._buffer = bytearray(INITIAL_BUFFER_BYTES)

    def close(self) -> None:
        """Stop the timer, write what is left, close the file. Safe to call twice."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._closed:
            return
        self.flush()
        self._closed = True
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    # ---- helpers -----------------------------------------------------------------------------------------

    def _schedule(self) -> None:
        if not self._closed and self._loop is not None:
            self._timer = self._loop.call_later(FLUSH_INTERVAL, self._tick)

    def _tick(self) -> None:
        self.flush()
        self._schedule()

    def _open(self) -> None:
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        st = os.fstat(self._fd)
        self._inode = (st.st_dev, st.st_ino)
        self._next_rotation_check = time.monotonic() + ROTATION_CHECK_INTERVAL

    def _check_rotation(self) -> None:
        """Reopen when `path` no longer names the file we hold (rotated or deleted); stat at most once a second."""
        now = time.monotonic()
        if now < self._next_rotation_check:
            return
        self._next_rotation_check = now + ROTATION_CHECK_INTERVAL
        try:
            st = os.stat(self.path)
            current = (st.st_dev, st.st_ino)
        except OSError:
            current = None
        if current != self._inode and self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
            try:
                self._open()
            except OSError as exc:
                log.error("access log %s: cannot reopen: %s", self.path, exc)
