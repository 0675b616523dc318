"""The garbage collector's pauses, as /varz shows them: a collection stops the event loop, so a long one is a
request or a registration that waits.

`GcPauses.install()` adds a `gc.callbacks` hook (it runs only per collection, never per request) that counts
collections and their time per generation and keeps the most recent pauses of at least RECENT_MIN_S with the
monotonic time they started (the same clock as `time.monotonic()` in any process on the machine), so a
benchmark probe can line its slow samples up with them.
"""

from __future__ import annotations

import gc
import time
from collections import deque
from typing import Any

RECENT_MIN_S = 0.0005     # pauses shorter than this are only counted
RECENT_KEPT = 64


class GcPauses:
    """Counts, total and longest pause per generation, and the last RECENT_KEPT pauses >= RECENT_MIN_S."""

    def __init__(self, recent_min_s: float = RECENT_MIN_S) -> None:
        self.recent_min_s = recent_min_s
        self.collections = [0, 0, 0]
        self.total_s = [0.0, 0.0, 0.0]
        self.max_s = [0.0, 0.0, 0.0]
        self.recent: deque[tuple[float, int, float, int]] = deque(maxlen=RECENT_KEPT)  # start, gen, seconds, freed
        self._started = 0.0
        self._installed = False

    def install(self) -> None:
        if not self._installed:
            gc.callbacks.append(self._on_gc)
            self._installed = True

    def uninstall(self) -> None:
        if self._installed:
            gc.callbacks.remove(self._on_gc)
            self._installed = False

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.monotonic()
            return
        took = time.monotonic() - self._started
        generation = info["generation"]
        self.collections[generation] += 1
        self.total_s[generation] += took
        if took > self.max_s[generation]:
            self.max_s[generation] = took
        if took >= self.recent_min_s:
            self.recent.append((self._started, generation, took, info["collected"]))

    def as_json(self) -> dict[str, Any]:
        return {
            "collections": list(self.collections),
            "total_ms": [round(s * 1e3, 3) for s in self.total_s],
            "max_ms": [round(s * 1e3, 3) for s in self.max_s],
            "recent": [{"monotonic": round(start, 6), "generation": gen, "ms": round(took * 1e3, 3),
                        "collected": freed} for start, gen, took, freed in self.recent],
        }


#: The router process's recorder (installed by RouterApp at start).
GC_PAUSES = GcPauses()

__all__ = ["GC_PAUSES", "GcPauses"]
