# cython: annotation_typing=False
"""Lines the request router adds to every forwarded head, made once and reused between requests.

X-Forwarded-Proto (with X-Vcap-Request-Id's name after it, one piece fewer to join) is kept per value, and
X-Request-Start (milliseconds since the epoch) is made once per millisecond: the second's digits once per
second, then a table of the last three.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from portico.proxy.head_buffer import HeadBuffer

PROTO_CACHE_SIZE = 16      # X-Forwarded-Proto values whose line is kept (a client may send any)
_MILLIS = tuple(b"%03d\r\n" % n for n in range(1000))   # X-Request-Start's last 3 digits, and the line's end


class ForwardedLines:
    """The X-Forwarded-Proto and X-Request-Start lines of one router."""

    def __init__(self) -> None:
        self._proto_lines: dict[bytes, bytes] = {}
        self._start_ms = -1                  # the millisecond _start_line was made for
        self._start_line = b""
        self._start_second = -1              # the second _second_prefix was made for
        self._second_prefix = b""

    def proto_line(self, xfp: bytes) -> bytes:
        """`\\r\\nX-Forwarded-Proto: <xfp>\\r\\nX-Vcap-Request-Id: ` (the request id follows it)."""
        line = self._proto_lines.get(xfp)
        if line is None:
            line = b"\r\nX-Forwarded-Proto: " + xfp + b"\r\nX-Vcap-Request-Id: "
            if len(self._proto_lines) < PROTO_CACHE_SIZE:
                self._proto_lines[xfp] = line
        return line

    def request_start(self, wall: float) -> bytes:
        """`\\r\\nX-Request-Start: <ms since the epoch>\\r\\n` for the wall clock time `wall`."""
        ms = int(wall * 1000)
        if ms != self._start_ms:
            self._start_ms = ms
            second = ms // 1000
            if second != self._start_second:
                self._start_second = second
                self._second_prefix = b"\r\nX-Request-Start: %d" % second
            self._start_line = self._second_prefix + _MILLIS[ms % 1000]
        return self._start_line

    def put_request_start(self, head: HeadBuffer, wall: float) -> None:
        """request_start(wall)'s line written into `head` (the compiled router's): no bytes made per
        millisecond, the second's prefix and the last three digits copied as they are."""
        ms = int(wall * 1000)
        second = ms // 1000
        if second != self._start_second:
            self._start_second = second
            self._second_prefix = b"\r\nX-Request-Start: %d" % second
        head.put(self._second_prefix)
        head.put(_MILLIS[ms % 1000])
