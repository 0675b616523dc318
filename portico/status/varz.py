"""/varz: gorouter's JSON fields that operators script against, from the live counters.

Kept: type, index, uuid, host, start, uptime, urls, droplets, requests, rate (1/5/15-minute), requests_per_sec,
responses_2xx..responses_xxx, bad_requests, bad_gateways, latency (percentiles in seconds),
top10_app_requests and ms_since_last_registry_update; plus Portico's own counters and `implementation`
(compiled or pure, the compiled modules, why pure) `gc_pauses` (the garbage collector's stops of the loop) and
`huge_pages` (the big table's heap moved to 2 MiB pages: portico/huge_pages.py).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from portico._compiled import selection
from portico.gc_pauses import GC_PAUSES
from portico.huge_pages import HEAP
from portico.observe.live import LiveStats
from portico.observe.metrics import CLASSES
from portico.routes import RouteTable
from portico.state import RouterState


def uptime_text(seconds: float) -> str:
    """gorouter's /varz uptime format: `1d:2h:3m:4s`."""
    s = int(seconds)
    return f"{s // 86400}d:{s % 86400 // 3600}h:{s % 3600 // 60}m:{s % 60}s"


def varz(*, index: int, host: str, state: RouterState, table: RouteTable, live: LiveStats,
         snapshot: dict[str, Any]) -> dict[str, Any]:
    rates = live.rates
    age = snapshot["since_registry_update"]
    out: dict[str, Any] = {
        "type": "Router",
        "index": index,
        "uuid": state.id,
        "host": host,
        "start": datetime.fromtimestamp(state.started_at, UTC).isoformat(),
        "uptime": uptime_text(time.time() - state.started_at),
        "phase": state.phase,
        "urls": len(table),
        "droplets": table.endpoint_count(),
        "nats_connected": state.nats_connected,
        "rate": rates,
        "requests_per_sec": rates[0],
        "latency": live.latency_percentiles(),
        "top10_app_requests": live.top_apps(),
        "ms_since_last_registry_update": -1 if age is None else int(age * 1000),
        "router_errors": snapshot["router_errors"],
        "implementation": selection().as_json(),
        "gc_pauses": GC_PAUSES.as_json(),
        "huge_pages": HEAP.as_json(),
    }
    out.update(snapshot["counters"])
    by_class = snapshot["by_class"]
    for i, cls in enumerate(CLASSES[2:6], start=2):
        out[f"responses_{cls}"] = by_class[i]
    out["responses_xxx"] = by_class[0] + by_class[1] + by_class[6]  # gorouter counts 101 here too
    return out
