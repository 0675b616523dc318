# cython: annotation_typing=False
"""Decode and apply router.register / router.unregister payloads: one place for both NATS readers.

The fast lane (portico.bus.fastlane) and nats-py's subscription (portico.bus.subscriber, used with NATS TLS)
hand raw payloads here. A malformed message is counted and logged on one line (at most 20 lines per 10 s,
with the number left out); a failure inside the table is logged and the feed goes on.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable

import msgspec
from msgspec.structs import astuple

from portico.bus.messages import (
    REGISTER,
    UNREGISTER,
    apply_fields,
    apply_unregistration,
    checked_tags,
    decode_registration_strict_first,
    describe_error,
    field_at,
    strict_fields,
)
from portico.routes.table import RouteTable

log = logging.getLogger("portico.bus")

_PAYLOAD_PREVIEW = 200
_URIS_AT = field_at("uris")   # where they sit in a registration's fields (compiled, C integers: applier.pxd)
_TAGS_AT = field_at("tags")


class RateLimitedLog:
    """At most `burst` lines per `window` seconds; the suppressed count is reported with the next line."""

    def __init__(self, burst: int = 20, window: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.burst = burst
        self.window = window
        self.clock = clock
        self._window_start = -1e18
        self._count = 0
        self.suppressed = 0

    def allow(self) -> bool:
        now = self.clock()
        if now - self._window_start >= self.window:
            self._window_start = now
            self._count = 0
        if self._count < self.burst:
            self._count += 1
            return True
        self.suppressed += 1
        return False

    def take_suppressed(self) -> int:
        n, self.suppressed = self.suppressed, 0
        return n


def malformed_line(subject: str, data: bytes, err: Exception) -> str:
    """The one-line warning for a dropped message."""
    preview = data[:_PAYLOAD_PREVIEW].decode("utf-8", "replace").replace("\n", " ").replace("\r", " ")
    more = f"... ({len(data)} bytes)" if len(data) > _PAYLOAD_PREVIEW else ""
    return f"dropped malformed {subject} message: {describe_error(data, err)}; payload: {preview}{more}"


FREEZE_EVERY = 100_000   # routes of table growth between two gc.freeze() calls


class PayloadApplier:
    """Applies payloads to the table and keeps the counters /varz and /metrics show.

    A reader that hands over many payloads from one socket read sets `batch_time` (one clock reading) for
    them: one float object shared by their endpoints instead of one each (24 B per route), and one clock
    call per read instead of one per message. Routes that stay for minutes should not be walked by every
    full garbage collection (a 1M-route table is ~3M tracked objects, ~0.6 s per walk), so each time the
    table has grown by FREEZE_EVERY routes, what is alive is moved out of the collector's view (gc.freeze,
    O(1)); routes and endpoints hold no reference cycles, so reference counting still frees them.
    """

    def __init__(self, table: RouteTable, metrics, clock: Callable[[], float] = time.monotonic) -> None:
        self.table = table
        self.metrics = metrics
        self.clock = clock
        self.batch_time: float | None = None
        self._malformed_log = RateLimitedLog()
        self._freeze_at = FREEZE_EVERY
        self._headroom = FREEZE_EVERY - table.route_count   # routes to add before the size is worth reading

    def register(self, data: bytes) -> None:
        try:
            fields = strict_fields(data)
            raw = fields[_TAGS_AT]
            tags = checked_tags(raw) if raw else None
        except msgspec.DecodeError:
            try:
                reg = decode_registration_strict_first(data)   # nulls, or a reason worded for the log
            except msgspec.DecodeError as err:
                self._malformed(REGISTER, data, err)
                return
            fields = astuple(reg)
            tags = fields[_TAGS_AT]
        now = self.batch_time
        if now is None:
            now = self.clock()
        table = self.table
        try:
            endpoint = apply_fields(table, fields, tags, now)
        except Exception:  # a table bug must not stop the feed
            self._apply_failed(REGISTER, data)
            return
        metrics = self.metrics
        metrics.registrations += 1
        metrics.last_registry_update = now
        if endpoint is not None:
            # the table grew by at most one route per uri: its size is read (a Python attribute) only when that
            # could have reached the next freeze point
            self._headroom -= len(fields[_URIS_AT])
            if self._headroom <= 0:
                self._check_freeze()

    def _check_freeze(self) -> None:
        count = self.table.route_count
        if count >= self._freeze_at:
            self._freeze_at = count + FREEZE_EVERY
            gc.freeze()
        self._headroom = self._freeze_at - count

    def unregister(self, data: bytes) -> None:
        try:
            reg = decode_registration_strict_first(data)
        except msgspec.DecodeError as err:
            self._malformed(UNREGISTER, data, err)
            return
        try:
            apply_unregistration(self.table, reg)
        except Exception:
            self._apply_failed(UNREGISTER, data)
            return
        self.metrics.unregistrations += 1
        self.metrics.last_registry_update = self.clock()

    def _malformed(self, subject: str, data: bytes, err: Exception) -> None:
        self.metrics.malformed_messages += 1
        limiter = self._malformed_log
        if limiter.allow():
            skipped = limiter.take_suppressed()
            extra = f" ({skipped} more malformed messages were dropped without a log line)" if skipped else ""
            log.warning("%s%s", malformed_line(subject, data, err), extra)

    def _apply_failed(self, subject: str, data: bytes) -> None:
        if self._malformed_log.allow():
            log.exception("applying %s failed: %s", subject, data[:_PAYLOAD_PREVIEW])
