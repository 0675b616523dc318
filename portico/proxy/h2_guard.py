"""Per-connection accounting of HTTP/2 abuse, and the decision to cut an abuser off.

HTTP/2 lets one client make the server work a lot for frames that cost the client almost nothing: streams
opened and reset at once (rapid reset, CVE-2023-44487), header blocks that never end (CONTINUATION flood,
CVE-2024-27316), small header blocks that decode into huge ones (HPACK bombs), SETTINGS and PING frames the
server must acknowledge, empty DATA / PRIORITY / unknown frames, WINDOW_UPDATE frames that return window we
never used, and windows that never open so that responses (and the backend connections behind them) are held
forever.

The h2 library already bounds some of this: a header block may span at most 64 CONTINUATION frames, the
decoded header list is capped by the decoder's max_header_list_size, and a dynamic-table size above what we
advertised is a connection error. It does not bound how often frames arrive. So each connection gets an
`H2Guard`: `install()` swaps in a frame buffer that shows the guard every frame before h2 acts on it (one
method call and an integer comparison for an ordinary DATA frame), and spends a leaky-bucket budget for each
frame that costs us work without carrying a request. A budget that runs out raises `H2Abuse`, which h2
treats as a connection error: it queues GOAWAY(ENHANCE_YOUR_CALM) and the connection's owner closes it.
Every other connection has its own guard, so nobody else notices.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from h2.connection import H2Connection
from h2.exceptions import DenialOfServiceError, ProtocolError
from h2.frame_buffer import FrameBuffer
from hyperframe.frame import Frame

from portico.observe.metrics import H2_CUTOFF_REASONS

log = logging.getLogger("portico.proxy")

# Budgets: (burst, refilled per second). Far above what browsers, curl, grpcio or Go clients send (a handful
# of SETTINGS and PRIORITY frames at start, a keepalive or BDP PING now and then, a reset when a call is
# cancelled), far below a flood (tens of thousands of frames a second). Like nginx and HAProxy these are not
# configuration keys: an operator has no better number to give.
RESET_BUDGET = (100.0, 10.0)        # RST_STREAM from the client (also needs more than half its streams reset)
SETTINGS_BUDGET = (100.0, 10.0)     # SETTINGS frames that are not ACKs: each one must be acknowledged
PING_BUDGET = (200.0, 50.0)         # PING frames that are not ACKs: each one must be answered
EMPTY_BUDGET = (200.0, 50.0)        # empty DATA without END_STREAM, empty CONTINUATION, PRIORITY, unknown types
# WINDOW_UPDATE frames: a client sends them as it reads our DATA, at most one for the stream and one for the
# connection per DATA frame (most send far fewer), so each DATA frame we send earns two; beyond that, a budget
# for windows opened ahead (a few at the start, BDP probes). Endless updates for nothing (1-byte increments,
# streams long closed) cost us a frame parse each and are cut off.
WINDOW_UPDATE_BUDGET = (200.0, 50.0)
WINDOW_UPDATES_PER_DATA_FRAME = 2.0
WINDOW_UPDATE_CREDIT_CAP = 4096.0   # updates earned ahead by DATA frames sent, at most
HEADER_BLOCK_SLACK = 16_384         # on top of the header list size: HPACK framing of a block at its limit

_DATA, _HEADERS, _PRIORITY, _RST_STREAM, _SETTINGS, _PUSH_PROMISE, _PING = 0, 1, 2, 3, 4, 5, 6
_WINDOW_UPDATE, _CONTINUATION = 8, 9
_KNOWN = frozenset(range(10))
_UPDATED_CAP = 1024                 # WINDOW_UPDATEs for more streams between sweeps count as for all


class H2Abuse(DenialOfServiceError):
    """A client crossed one of the guard's bounds; h2 answers it with GOAWAY(ENHANCE_YOUR_CALM)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


class Budget:
    """A leaky bucket: each event adds one, `rate` per second drain away; more than `burst` is too many."""

    __slots__ = ("burst", "level", "rate", "stamp")

    def __init__(self, burst: float, rate: float) -> None:
        self.burst = burst
        self.rate = rate
        self.level = 0.0
        self.stamp = 0.0

    def spend(self, now: float) -> bool:
        """Count one event; False once the bucket overflows."""
        level = self.level
        drained = level - (now - self.stamp) * self.rate
        floor = level if level < 0.0 else 0.0       # time drains the bucket to empty, not into credit
        self.level = (drained if drained > floor else floor) + 1.0
        self.stamp = now
        return self.level <= self.burst

    def credit(self, events: float, cap: float) -> None:
        """Allow `events` more (work the peer paid for), keeping at most `cap` of such credit."""
        level = self.level - events
        self.level = level if level > -cap else -cap


class H2Guard:
    """One client connection's abuse accounting: budgets, header-block size, and how long output has stalled."""

    def __init__(self, max_header_bytes: int, stall_timeout: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_header_bytes = max_header_bytes
        self.header_block_limit = max_header_bytes + HEADER_BLOCK_SLACK
        self.stall_timeout = stall_timeout
        self.clock = clock
        self.resets = Budget(*RESET_BUDGET)
        self.settings = Budget(*SETTINGS_BUDGET)
        self.pings = Budget(*PING_BUDGET)
        self.empty = Budget(*EMPTY_BUDGET)
        self.window_updates = Budget(*WINDOW_UPDATE_BUDGET)
        self.streams_opened = 0
        self.streams_reset = 0
        self.highest_stream = 0
        self.header_block = 0            # bytes of the header block being received (0: none open)
        self.waiting_since: dict[int, float] = {}   # stream id -> since when its output waits for a window
        self.window_updated: set[int] = set()        # streams given window since the last stalled_streams()
        self.cut_off_reason = ""         # set once, by cut_off()

    # ---- wiring ----------------------------------------------------------------------------------------------

    def install(self, conn: H2Connection) -> None:
        """Put the guard in front of `conn`'s frame parsing and cap its header decoding.

        Call before `conn.initiate_connection()`, so the SETTINGS we send advertise the header list size.
        """
        conn.incoming_buffer = GuardedFrameBuffer(self, server=not conn.config.client_side)
        conn.local_settings.max_header_list_size = self.max_header_bytes
        # The decoder would only learn the limit when the client ACKs our SETTINGS: a bomb sent before the ACK
        # would be decoded against h2's default. Apply it at once.
        conn.decoder.max_header_list_size = self.max_header_bytes

    # ---- frames (called for every frame the client sends, before h2 handles it) ------------------------------

    def frame(self, f: Frame) -> None:
        kind = f.type
        if kind == _DATA:
            if not f.data and "END_STREAM" not in f.flags:  # type: ignore[attr-defined]
                self._spend(self.empty, "empty_frames", "empty DATA frames")
            return
        if kind == _HEADERS:
            self._headers(f)
        elif kind == _CONTINUATION:
            self._continuation(f)
        elif kind == _RST_STREAM:
            self._reset()
        elif kind == _WINDOW_UPDATE:
            if len(self.window_updated) < _UPDATED_CAP:
                self.window_updated.add(f.stream_id)   # the client reads that stream (0: all of them)
            self._spend(self.window_updates, "window_update_flood", "WINDOW_UPDATE frames (beyond 2 per DATA frame)")
        elif kind == _PING:
            if "ACK" not in f.flags:
                self._spend(self.pings, "ping_flood", "PING frames")
        elif kind == _SETTINGS:
            if "ACK" not in f.flags:
                self._spend(self.settings, "settings_flood", "SETTINGS frames")
        elif kind == _PRIORITY or kind not in _KNOWN:
            self._spend(self.empty, "empty_frames", "PRIORITY or unknown frames")

    def _headers(self, f: Frame) -> None:
        stream_id = f.stream_id
        if stream_id > self.highest_stream:
            self.highest_stream = stream_id
            self.streams_opened += 1
        if "END_HEADERS" not in f.flags:
            self.header_block = len(f.data)  # type: ignore[attr-defined]
            self._check_block()

    def _continuation(self, f: Frame) -> None:
        size = len(f.data)  # type: ignore[attr-defined]
        if size == 0 and "END_HEADERS" not in f.flags:
            self._spend(self.empty, "continuation_flood", "empty CONTINUATION frames")
        self.header_block += size
        self._check_block()
        if "END_HEADERS" in f.flags:
            self.header_block = 0

    def _check_block(self) -> None:
        if self.header_block > self.header_block_limit:
            raise H2Abuse("continuation_flood",
                          f"header block over {self.header_block_limit} bytes before END_HEADERS")

    def _reset(self) -> None:
        self.streams_reset += 1
        # Cancelling calls is normal (a gRPC deadline, a browser leaving a page): only a client that resets
        # more than half of the streams it opens, faster than the budget, is attacking.
        if not self.resets.spend(self.clock()) and self.streams_reset * 2 > self.streams_opened:
            raise H2Abuse("rapid_reset", f"{self.streams_reset} of {self.streams_opened} streams reset")

    def data_frames_sent(self, frames: int) -> None:
        """We sent the client `frames` DATA frames: each earns the WINDOW_UPDATEs that return its window."""
        self.window_updates.credit(frames * WINDOW_UPDATES_PER_DATA_FRAME, WINDOW_UPDATE_CREDIT_CAP)

    def stream_refused(self) -> None:
        """We reset a stream the client opened (a malformed request): to us it costs what a client's reset does,
        so it is counted with them. Raises H2Abuse, outside h2: the caller cuts the client off."""
        self._reset()

    def _spend(self, budget: Budget, reason: str, what: str) -> None:
        if not budget.spend(self.clock()):
            raise H2Abuse(reason, f"more than {budget.burst:.0f} {what} at over {budget.rate:.0f}/s")

    # ---- zero-window stalls (the connection's owner calls this once a second) --------------------------------

    def stalled_streams(self, waiting: list[int], now: float) -> list[int]:
        """Of the streams whose output `waiting` for the client's window, those that have waited longer than
        the stall timeout with no WINDOW_UPDATE for them (or for the whole connection) in between.

        Sampled once a second by the owner's sweep, so the per-frame cost is one set insertion per
        WINDOW_UPDATE frame.
        """
        updated = self.window_updated
        everything = 0 in updated or len(updated) >= _UPDATED_CAP
        before = self.waiting_since
        since_now: dict[int, float] = {}
        expired: list[int] = []
        limit = self.stall_timeout
        for stream_id in waiting:
            since = now if everything or stream_id in updated else before.get(stream_id, now)
            since_now[stream_id] = since
            if limit > 0 and now - since > limit:
                expired.append(stream_id)
        self.waiting_since = since_now
        updated.clear()
        return expired

    # ---- cutting off -----------------------------------------------------------------------------------------

    def reason_for(self, exc: ProtocolError) -> str:
        """The cut-off reason for an error h2 raised while receiving (ours, or h2's own bounds)."""
        if isinstance(exc, H2Abuse):
            return exc.reason
        text = str(exc)
        if "continuation" in text.lower():
            return "continuation_flood"        # h2's own bound: more than 64 CONTINUATION frames
        if isinstance(exc, DenialOfServiceError):
            return "hpack_bomb"                # the decoded header list passed max_header_list_size
        return "protocol_error"

    def cut_off(self, reason: str, detail: str, client: str, metrics: Any) -> bool:
        """Count and log a cut-off connection, once (False when it was already cut off)."""
        if self.cut_off_reason:
            return False
        self.cut_off_reason = reason
        if reason not in H2_CUTOFF_REASONS:
            reason = "protocol_error"
        name = f"http2_cutoff_{reason}"
        setattr(metrics, name, getattr(metrics, name) + 1)
        log.warning("HTTP/2 client %s cut off (%s): %s; sent GOAWAY and closed", client, reason, detail)
        return True


class GuardedFrameBuffer(FrameBuffer):
    """h2's frame buffer with the guard looking at each frame first.

    `_update_header_buffer` is the one place h2 passes every parsed frame through (h2 4.x); a test
    (tests/unit/test_h2_guard.py) fails if a new h2 stops calling it.
    """

    def __init__(self, guard: H2Guard, server: bool = False) -> None:
        super().__init__(server=server)
        self.guard = guard

    def _update_header_buffer(self, f: Frame | None) -> Frame | None:
        if f is not None:
            self.guard.frame(f)
        return super()._update_header_buffer(f)
