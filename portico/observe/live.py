"""Recent rates and latencies: a ring of snapshots, one a second, and what operators ask of it.

Counters only ever grow, so "requests per second over the last 10 s" is the difference of two snapshots, and
"p99 over the last minute" is the quantile of the difference of two histograms. Nothing here runs per request:
the status server ticks it once a second, and /varz, the dashboard and `portico status` read it.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable
from itertools import pairwise
from typing import Any

from portico.observe.metrics import diff, empty_snapshot, quantile
from portico.tasks import cancel_and_wait

Snapshot = dict[str, Any]
EWMA_TICK = 5.0  # seconds between updates of the 1/5/15-minute rates, as gorouter's meters do
_ALPHAS = tuple(1 - math.exp(-EWMA_TICK / (60.0 * minutes)) for minutes in (1, 5, 15))


class LiveStats:
    def __init__(self, source: Callable[[], Snapshot], keep_seconds: int = 60,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._source = source
        self._clock = clock
        self._ring: deque[tuple[float, Snapshot]] = deque(maxlen=keep_seconds + 1)
        self._task: asyncio.Task | None = None
        self._rates: list[float] | None = None
        self._ewma_at = 0.0
        self._ewma_requests = 0
        self.listeners: set[Callable[[], None]] = set()   # called after each tick (the dashboard's streams)

    # ---- ticking -----------------------------------------------------------------------------------------

    def tick(self) -> Snapshot:
        now = self._clock()
        snap = self._source()
        self._ring.append((now, snap))
        requests = snap["counters"]["requests"]
        if self._rates is None:
            self._rates, self._ewma_at, self._ewma_requests = [0.0, 0.0, 0.0], now, requests
        elif now - self._ewma_at >= EWMA_TICK:
            instant = max(requests - self._ewma_requests, 0) / (now - self._ewma_at)
            first = self._ewma_requests == 0 and not any(self._rates)
            self._rates = [instant if first else r + a * (instant - r)
                           for r, a in zip(self._rates, _ALPHAS, strict=False)]
            self._ewma_at, self._ewma_requests = now, requests
        for listener in list(self.listeners):
            listener()
        return snap

    def start(self) -> None:
        if self._task is None:
            self.tick()
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            try:
                self.tick()
            except Exception:  # a bad worker file must not end the ticking for good
                pass

    # ---- reading -----------------------------------------------------------------------------------------

    @property
    def rates(self) -> list[float]:
        """Requests per second averaged over 1, 5 and 15 minutes (exponentially weighted, like gorouter)."""
        return list(self._rates or (0.0, 0.0, 0.0))

    def latest(self) -> Snapshot:
        if not self._ring:
            return self.tick()
        return self._ring[-1][1]

    def _pair(self, seconds: float) -> tuple[Snapshot, Snapshot, float]:
        """The newest snapshot, the one about `seconds` before it, and the time between them."""
        if not self._ring:
            self.tick()
        now, new = self._ring[-1]
        then, old = self._ring[0]
        for t, snap in self._ring:
            if now - t <= seconds:
                then, old = t, snap
                break
        if old is new:
            return new, empty_snapshot(), 0.0
        return new, old, now - then

    def summary(self, seconds: float = 10.0, route_filter: str = "", top: int = 20) -> dict[str, Any]:
        """Router-wide and per-route rates, error rates and percentiles over the last `seconds`."""
        new, old, elapsed = self._pair(seconds)
        per = 1.0 / elapsed if elapsed else 0.0
        classes = diff(new["by_class"], old["by_class"])
        done = sum(classes)
        duration = diff(new["duration"], old["duration"])
        backend = diff(new["backend"], old["backend"])
        routes = []
        for key, row in new["routes"].items():
            if route_filter and route_filter not in key:
                continue
            before = old["routes"].get(key)
            requests = row[0] - before[0] if before and row[0] >= before[0] else row[0] if elapsed else 0
            errors = row[1] - before[1] if before and row[1] >= before[1] else row[1] if elapsed else 0
            buckets = diff(row[3], before[3]) if before else list(row[3])
            routes.append({
                "route": key, "app_id": row[4], "requests_per_sec": requests * per, "requests": row[0],
                "error_rate": errors / requests if requests else 0.0,
                "p50": quantile(buckets, 0.5), "p99": quantile(buckets, 0.99),
            })
        routes.sort(key=lambda r: (-r["requests_per_sec"], -r["requests"], r["route"]))
        return {
            "window_seconds": elapsed,
            "requests_per_sec": (new["counters"]["requests"] - old["counters"]["requests"]) * per,
            "responses_per_sec": done * per,
            "error_rate": classes[5] / done if done else 0.0,
            "responses": {cls: n for cls, n in zip(("xxx", "1xx", "2xx", "3xx", "4xx", "5xx"), classes, strict=False)},
            "p50": quantile(duration, 0.5), "p90": quantile(duration, 0.9), "p99": quantile(duration, 0.99),
            "backend_p50": quantile(backend, 0.5), "backend_p99": quantile(backend, 0.99),
            "routes": routes[:top], "routes_matching": len(routes),
        }

    def latency_percentiles(self, seconds: float = 60.0) -> dict[str, float]:
        """gorouter's /varz `latency`: percentiles in seconds, over the last minute."""
        new, old, _ = self._pair(seconds)
        duration = diff(new["duration"], old["duration"])
        out = {str(p): quantile(duration, p / 100) for p in (50, 75, 90, 95, 99)}
        out["value"] = out["50"] * 1000.0
        out["samples"] = float(sum(duration))
        return out

    def top_apps(self, seconds: float = 60.0, count: int = 10) -> list[dict[str, Any]]:
        """gorouter's `top10_app_requests`: the apps with most requests over the last minute."""
        new, old, _ = self._pair(seconds)
        per_app: dict[str, int] = {}
        for key, row in new["routes"].items():
            if not row[4]:
                continue
            before = old["routes"].get(key)
            n = row[0] - before[0] if before and row[0] >= before[0] else row[0]
            per_app[row[4]] = per_app.get(row[4], 0) + n
        busiest = sorted(((n, app) for app, n in per_app.items() if n), reverse=True)[:count]
        return [{"application_id": app, "rps": n // int(seconds), "rpm": n} for n, app in busiest]

    def series(self, seconds: int = 60) -> list[list[float]]:
        """Per-second points `[seconds ago, requests/s, error rate, p99]`, oldest first (the sparklines)."""
        ring = list(self._ring)[-(seconds + 1):]
        if len(ring) < 2:
            return []
        now = ring[-1][0]
        out = []
        for (t0, a), (t1, b) in pairwise(ring):
            elapsed = (t1 - t0) or 1.0
            classes = diff(b["by_class"], a["by_class"])
            done = sum(classes)
            out.append([round(now - t1, 1), (b["counters"]["requests"] - a["counters"]["requests"]) / elapsed,
                        classes[5] / done if done else 0.0, quantile(diff(b["duration"], a["duration"]), 0.99)])
        return out
