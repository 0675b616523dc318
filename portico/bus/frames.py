# cython: annotation_typing=False
"""The route feed's MSG frame cutter: NATS server-to-client frames out of socket reads, payloads handed on.

Why by hand: a platform re-registers every route every ~20 s and a new router receives all of them at once, so
the rate at which frames are cut decides how soon a router is complete. nats-py's pure-Python parser, its
`Msg` object per message and its pending queue took about half the router's CPU on the feed; this cutter makes
no Python object per message beyond the payload and calls the applier right there (docs/scale.md). Compiled
(frames.pxd), the scan is a C loop over the read's bytes. The connection around it is portico.bus.fastlane.
"""

from __future__ import annotations

from collections.abc import Callable

try:
    import cython
    COMPILED: bool = cython.compiled
except ImportError:   # no Cython installed: certainly the pure module
    COMPILED = False

_MAX_CONTROL_LINE = 64 * 1024     # a protocol line longer than this is a broken stream: reconnect
_JOIN_ROOM = 4096                 # bytes of a read joined to an unfinished frame beyond what it is known to need
_HMSG = b"HMSG "
_MSG_REGISTER = b"MSG router.register "
_MSG_UNREGISTER = b"MSG router.unregister "
_HMSG_REGISTER = b"HMSG router.register "
_HMSG_UNREGISTER = b"HMSG router.unregister "
_SIZE_DIGITS_SCALE = 100_000_000_000   # at most 12 digits in a size (NATS caps far lower); compiled, a C integer


def _starts(data: bytes, pos: int, prefix: bytes) -> bool:
    """`data.startswith(prefix, pos)`. Compiled, a C loop over the two buffers: the method call made the position
    a new int object and back (~180 instructions a frame)."""
    if COMPILED:
        size = len(prefix)
        if pos + size > len(data):
            return False
        have = data
        want = prefix
        for k in range(size):  # noqa: SIM110  (compiled, a C loop; all() of a generator would not be)
            if have[pos + k] != want[k]:
                return False
        return True
    return data.startswith(prefix, pos)


class ProtocolError(Exception):
    """The byte stream is not NATS protocol (or a line is absurdly long): the connection is dropped."""


class FrameParser:
    """Incremental NATS server-to-client parser for a subscriber of router.register / router.unregister.

    `feed(data)` takes socket reads split anywhere; each complete MSG/HMSG calls `on_register(payload)` or
    `on_unregister(payload)` (payload is bytes), other lines call `on_control(line)` (without CRLF:
    PING, PONG, +OK, -ERR ..., INFO {...}). Messages on any other subject are skipped.
    """

    __slots__ = ("_need", "_pending", "on_control", "on_register", "on_unregister")

    def __init__(self, on_register: Callable[[bytes], None], on_unregister: Callable[[bytes], None],
                 on_control: Callable[[bytes], None]) -> None:
        self.on_register = on_register
        self.on_unregister = on_unregister
        self.on_control = on_control
        self._pending = b""    # an incomplete frame from earlier reads
        self._need = 0         # bytes the pending frame needs before it is worth parsing again

    def feed(self, data: bytes) -> None:
        pending = self._pending
        pos = 0
        if pending:
            have = len(pending)
            if have + len(data) < self._need:
                self._pending = pending + data  # still short of the known frame size: no parse attempt
                return
            self._pending = b""
            # the frame an earlier read left unfinished is completed with only the start of this read (what it
            # needs, and room for a header line still being cut): joining the whole read copied ~64 KiB a read
            take = self._need - have + _JOIN_ROOM
            if take < len(data):
                done = self._cut(pending + data[:take], 0)
                if done >= have:
                    pos = done - have       # this read goes on where the join's last whole frame ended
                else:
                    data = pending + data   # nothing was whole in the join (a long frame whose size was not known)
            else:
                data = pending + data
        pos = self._cut(data, pos)
        self._pending = data[pos:] if pos < len(data) else b""

    def _cut(self, data: bytes, pos: int) -> int:
        """Hand on every whole frame of `data` from `pos`; return where the first unfinished one starts (`len(data)`
        when none is), `_need` set to how long that one must grow before it is worth cutting again."""
        n = len(data)
        buf = data   # compiled, a char pointer: read without bounds checks, a payload one PyBytes_FromStringAndSize
        on_register = self.on_register
        on_unregister = self.on_unregister
        try:
            while pos < n:
                if COMPILED:
                    # the line end by a C loop: bytes.find was a Python method call (~1k instructions a frame)
                    eol = pos
                    while True:
                        while eol < n and buf[eol] != 13:
                            eol += 1
                        if eol + 1 >= n:
                            eol = -1
                            break
                        if buf[eol + 1] == 10:
                            break
                        eol += 1
                else:
                    eol = data.find(b"\r\n", pos)
                if eol < 0:
                    if n - pos > _MAX_CONTROL_LINE:
                        raise ProtocolError("protocol line too long")
                    self._need = n - pos + 1
                    return pos
                # "MSG " (77 83 71 32), compared byte by byte: startswith was a call per frame
                if (eol - pos >= 4 and buf[pos] == 77 and buf[pos + 1] == 83 and buf[pos + 2] == 71
                        and buf[pos + 3] == 32):
                    # MSG <subject> <sid> [reply-to] <#bytes>: the size's digits, read back from the line's end
                    # (compiled, a C loop over the bytes; no slice or int object per frame)
                    i = eol - 1
                    size = 0
                    scale = 1
                    c = buf[i]
                    while 48 <= c <= 57 and scale <= _SIZE_DIGITS_SCALE:
                        size += (c - 48) * scale
                        scale *= 10
                        i -= 1
                        c = buf[i]
                    if scale == 1 or c != 32:
                        raise ProtocolError(f"bad frame header: {data[pos:eol][:80]!r}")
                    start = eol + 2
                    end = start + size
                    if end + 2 > n:
                        self._need = end + 2 - pos
                        return pos
                    if _starts(data, pos, _MSG_REGISTER):
                        on_register(buf[start:end])
                    elif _starts(data, pos, _MSG_UNREGISTER):
                        on_unregister(buf[start:end])
                    pos = end + 2
                elif _starts(data, pos, _HMSG):
                    # HMSG <subject> <sid> [reply-to] <#header bytes> <#total bytes>: skip the headers
                    sp = data.rfind(b" ", pos, eol)
                    sp2 = data.rfind(b" ", pos, sp)
                    start = eol + 2
                    end = start + int(data[sp + 1:eol])
                    if end + 2 > n:
                        self._need = end + 2 - pos
                        return pos
                    body = start + int(data[sp2 + 1:sp])
                    if _starts(data, pos, _HMSG_REGISTER):
                        on_register(data[body:end])
                    elif _starts(data, pos, _HMSG_UNREGISTER):
                        on_unregister(data[body:end])
                    pos = end + 2
                else:
                    line = data[pos:eol]
                    pos = eol + 2
                    self.on_control(line)
        except ValueError as err:  # int() of a size field that is not a number
            raise ProtocolError(f"bad frame header: {err}") from None
        return pos


__all__ = ["FrameParser", "ProtocolError"]
