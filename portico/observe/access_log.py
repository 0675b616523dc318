# cython: annotation_typing=False
"""The access log: one gorouter-format line per request, buffered in memory and written in batches.

`log()` runs on the hot path (ExchangeObserver calls it once per request), so it only formats one line into
the batch (one bytearray); the timestamp prefix is formatted once per second. Compiled (access_log.pxd), the
line is written straight into the batch by C loops: each value scanned once for bytes that need escaping,
numbers written digit by digit, no Python object per field. Pure Python formats the same line with one bytes
%-template and checks it with one translate; tests compare the two byte for byte. `flush()` writes the whole batch with
one O_APPEND os.write, from a loop timer every 0.2 s and at close. Writing on the loop thread (not a worker
thread) is deliberate: a batch goes to the page cache in well under a millisecond per MB, a thread would add GIL
hand-offs and ordering bookkeeping for no gain on a local disk, and one O_APPEND write per batch keeps lines
whole even when several router processes share the file. A file moved away by logrotate is noticed (inode
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

try:
    import cython
    COMPILED: bool = cython.compiled
except ImportError:   # no Cython installed: certainly the pure module
    COMPILED = False

FLUSH_INTERVAL = 0.2          # seconds between timed flushes
MAX_BUFFERED_LINES = 8192     # flush early in a burst so memory stays bounded
ROTATION_CHECK_INTERVAL = 1.0  # seconds between inode checks

log = logging.getLogger(__name__)

# Control characters, `"` and `\` escaped the way Go's strconv.Quote would, so a value cannot break a line.
_ESCAPES = {i: f"\\x{i:02x}" for i in range(32)}
_ESCAPES.update({ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t", 0x7F: "\\x7f",
                 ord('"'): '\\"', ord("\\"): "\\\\"})


def quote_value(value) -> str:
    """A value as it goes between the quotes: `-` when empty, escaped only when it needs it (rarely)."""
    if not value:
        return "-"
    if value.__class__ is not str:
        value = str(value)
    if value.isprintable() and '"' not in value and "\\" not in value:
        return value
    return value.translate(_ESCAPES)


def quote_bytes(value: bytes) -> bytes:
    """The bytes form of quote_value, for the hot path's rare slow case."""
    if value == b"-":
        return value
    return quote_value(value.decode("utf-8", "surrogateescape")).encode("utf-8", "surrogateescape")


def header_field_name(header: str) -> str:
    """`Span-Id` -> `span_id`, the key under which an extra header is logged."""
    return header.strip().lower().replace("-", "_")


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


# ---- the compiled line's pieces (access_log.pxd makes them C functions; pure Python uses _format) ----------

def _put_value(buf: bytearray, value: bytes) -> None:
    """A value between quotes: `-` when empty, escaped (quote_bytes) only when a byte needs it."""
    n = len(value)
    if n == 0:
        buf += b"-"
        return
    for i in range(n):
        c = value[i]
        if c < 0x20 or c > 0x7E or c == 0x22 or c == 0x5C:
            buf += quote_bytes(value)
            return
    buf += value


def _put_digits(buf: bytearray, n: int, width: int) -> None:
    """`n` in decimal, zero-padded to `width` digits (as %d and %06d)."""
    if n < 0:
        buf += b"-"
        n = -n
    scale = 1
    digits = 1
    while scale <= n // 10:
        scale *= 10
        digits += 1
    while digits < width:
        buf += b"0"
        digits += 1
    while scale:
        buf.append(48 + (n // scale) % 10)
        scale //= 10


def _put_seconds(buf: bytearray, seconds: float | None) -> None:
    """Seconds with six decimals (`0.024618`), or `-` when unknown or negative."""
    if seconds is None or seconds < 0:
        buf += b"-"
        return
    micros = int(seconds * 1e6 + 0.5)
    _put_digits(buf, micros // 1_000_000, 1)
    buf += b"."
    _put_digits(buf, micros % 1_000_000, 6)


class AccessLog:
    """Buffered writer of gorouter access log lines to `path` (appended, created if missing)."""

    def __init__(self, path: str, extra_headers: tuple[str, ...] = ()) -> None:
        self.path = path
        self.extra_headers = tuple(extra_headers)
        self._template = _template(tuple(header_field_name(h) for h in self.extra_headers))
        self._field_count = _BASE_FIELDS + len(self.extra_headers)
        self._extra_count = len(self.extra_headers)
        self._leftover = b'"' * (2 * (12 + self._extra_count)) + b"\n"  # what translate leaves of a clean line
        self._buffer = bytearray()
        self._lines = 0
        self._extra_keys = tuple(b" " + header_field_name(h).encode() + b':"' for h in self.extra_headers)
        self._second = -1
        self._second_text = b""
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
        """Format one line from bytes values and buffer it; the proxy calls this once per request.

        `fields`: host, method, uri, proto, referer, user agent, client addr, backend addr, x_forwarded_for,
        x_forwarded_proto, vcap_request_id, app_id, app_index, instance_id, router error, then one value per
        extra header. Empty values are written as `-`.
        """
        second = int(start_time)
        micros = int((start_time - second) * 1e6 + 0.5)  # a float epoch time holds no real nanoseconds
        if micros == 1_000_000:
            second, micros = second + 1, 0
        if second != self._second:
            self._second = second
            self._second_text = time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(second)).encode()
        if len(fields) != self._field_count:
            fields = (tuple(fields) + (b"",) * self._field_count)[:self._field_count]
        if COMPILED:
            self._write_line(micros, status, request_bytes, response_bytes, response_time, gorouter_time, fields)
        else:
            line = self._format(micros, status, request_bytes, response_bytes, response_time, gorouter_time,
                                fields)
            if line.translate(None, _SAFE_BYTES) != self._leftover:
                # Rare: a value holds a quote, a backslash or a control character. Escape each and build again.
                line = self._format(micros, status, request_bytes, response_bytes, response_time, gorouter_time,
                                    tuple([quote_bytes(v or b"-") for v in fields]))
            self._buffer += line
        self._lines += 1
        if self._lines >= MAX_BUFFERED_LINES:
            self.flush()

    def _write_line(self, micros, status, request_bytes, response_bytes, response_time, gorouter_time,
                    v: tuple) -> None:
        """The compiled form of `_format`: the same line, written into the batch field by field."""
        buf = self._buffer
        _put_value(buf, v[0])
        buf += b" - ["
        buf += self._second_text
        _put_digits(buf, micros, 6)
        buf += b'000Z] "'
        _put_value(buf, v[1])
        buf += b" "
        _put_value(buf, v[2])
        buf += b" "
        _put_value(buf, v[3])
        buf += b'" '
        _put_digits(buf, status, 1)
        buf += b" "
        _put_digits(buf, request_bytes, 1)
        buf += b" "
        _put_digits(buf, response_bytes, 1)
        buf += b' "'
        _put_value(buf, v[4])
        buf += b'" "'
        _put_value(buf, v[5])
        buf += b'" "'
        _put_value(buf, v[6])
        buf += b'" "'
        _put_value(buf, v[7])
        buf += b'" x_forwarded_for:"'
        _put_value(buf, v[8])
        buf += b'" x_forwarded_proto:"'
        _put_value(buf, v[9])
        buf += b'" vcap_request_id:"'
        _put_value(buf, v[10])
        buf += b'" response_time:'
        _put_seconds(buf, response_time)
        buf += b" gorouter_time:"
        _put_seconds(buf, gorouter_time)
        buf += b' app_id:"'
        _put_value(buf, v[11])
        buf += b'" app_index:"'
        _put_value(buf, v[12])
        buf += b'" instance_id:"'
        _put_value(buf, v[13])
        buf += b'" x_cf_routererror:"'
        _put_value(buf, v[14])
        buf += b'"'
        i = 15
        for key in self._extra_keys:
            buf += key
            _put_value(buf, v[i])
            buf += b'"'
            i += 1
        buf += b"\n"

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
        if not self._buffer:
            return
        data = self._buffer
        self._buffer = bytearray()
        self._lines = 0
        self._check_rotation()
        try:
            if self._fd < 0:
                self._open()
            view = memoryview(data)
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
            self._failing = False
        except OSError as exc:
            if not self._failing:
                log.error("access log %s: write failed, dropping lines: %s", self.path, exc)
            self._failing = True

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
