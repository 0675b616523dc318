"""Re-registration ingest: the ingest step's messages published again, unchanged.

A real platform's route emitters re-send every route about every 20 s, so what a router mostly reads is a
registration it already holds. The goal ("registration ingest") is about new routes and stays so; this figure
sits beside it in the ingest table. The messages are the same frames, byte for byte, as the new routes just
applied (same app guid, instance id, tags), so each is an unchanged re-registration: the router renews the
route's timestamps and changes nothing else.

How the end is seen: one registration for a new host follows them on the same connection. NATS delivers a
subscription's messages in order and the router applies them in order, so when that host answers 200 every
re-registration before it has been applied. The /varz registration counter cross-checks the count.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from .httpprobe import Probe
from .natspub import NatsPublisher
from .procs import cpu_seconds

SENTINEL_HOST = "after-reregistrations.ingest.local"


@dataclass
class Reregistration:
    messages: int
    applied_s: float
    msgs_per_s: float
    router_cpu_s: float
    msgs_per_cpu_s: float | None


def reregister(target, pub: NatsPublisher, frames: list[bytes], sentinel: bytes, timeout: float = 120.0
               ) -> Reregistration:
    """Publish `frames` again, then `sentinel` (a new host, SENTINEL_HOST); time until the sentinel answers."""
    probe = Probe(target.port)
    cpu0 = cpu_seconds(target.pids())
    t0 = time.monotonic()
    try:
        pub.publish_many([*frames, sentinel])
        pub.flush(60)
        deadline = t0 + timeout
        while probe.get(SENTINEL_HOST) != 200:
            if time.monotonic() > deadline:
                raise TimeoutError(f"router did not apply {len(frames)} re-registrations within {timeout:.0f}s")
            time.sleep(0.002)
        done = time.monotonic()
    finally:
        probe.close()
    cpu = cpu_seconds(target.pids()) - cpu0
    n = len(frames)
    return Reregistration(messages=n, applied_s=done - t0, msgs_per_s=n / (done - t0), router_cpu_s=cpu,
                          msgs_per_cpu_s=n / cpu if cpu > 0 else None)
