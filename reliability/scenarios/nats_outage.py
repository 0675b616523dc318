"""NATS gone for 25 s under steady load, with suspend_pruning_if_nats_unavailable on and off."""

from __future__ import annotations

import time

from reliability.core import Result, scenario
from reliability.load import SteadyLoad
from reliability.parts import Heartbeat, Stack, hold_port, nats_log_times, registration, unique_host, wait_for

GOAL = ("suspend_pruning_if_nats_unavailable on: 0 failed requests through a 25 s NATS outage (endpoint TTL "
        "10 s); router.start within 0.5 s of NATS accepting again, in both modes (off: routes are pruned "
        "after their TTL, as in gorouter, and come back with the next heartbeat)")


def _outage(stack: Stack, suspend: bool, outage: float, ttl: int, beat_every: float) -> dict[str, object]:
    label = f"suspend {'on' if suspend else 'off'}"
    nats = stack.nats(trace=True)
    router = stack.router(nats.port, suspend_pruning_if_nats_unavailable=suspend,
                          prune_stale_droplets_interval="1s", droplet_stale_threshold="120s")
    backend = stack.backend("outage")
    host = unique_host("outage")
    # a registrar heartbeating every few seconds with a TTL (stale_threshold_in_seconds) shorter than the outage
    beat = Heartbeat(nats.url, [registration(host, backend.port, ttl=ttl)], beat_every).start()
    stack.on_exit(beat.stop)
    router.wait_route(host)
    load = SteadyLoad(router.port, host, "/echo", rate=100, connections=4).start()
    time.sleep(3.0)
    nats.stop()
    hold_port(nats.port)   # it comes back on this port: no one else may be handed it meanwhile
    down_at = time.monotonic()
    time.sleep(outage)
    back = stack.nats(port=nats.port, trace=True)
    back_at = time.monotonic()
    log = back.process.log_path
    wait_for(lambda: nats_log_times(log, "PUB router.start"), timeout=30, interval=0.02,
             message="router.start after NATS came back")
    router.wait_route(host, timeout=30)        # the registrar's next beat, if the route had been pruned
    time.sleep(3.0)
    stats = load.stop()
    beat.stop()
    ready = nats_log_times(log, "Server is ready")
    start = nats_log_times(log, "PUB router.start")
    during = load.failures_between(down_at, back_at)
    return {
        f"{label}: requests": stats.sent,
        f"{label}: failed": stats.failed,
        f"{label}: failed during the outage": during,
        f"{label}: failure kinds": stats.failure_kinds() or "none",
        f"{label}: router.start after NATS accepts again (s)": round(start[0] - ready[0], 3),
        f"{label}: p99 ms": stats.percentile_ms(99),
    }


@scenario("nats_outage", GOAL)
def run(quick: bool) -> Result:
    outage, ttl, beat_every = (4.0, 2, 0.5) if quick else (25.0, 10, 2.0)
    with Stack("nats-outage") as stack:
        figures = _outage(stack, True, outage, ttl, beat_every)
        if not quick:
            figures |= _outage(stack, False, outage, ttl, beat_every)
    starts = [v for k, v in figures.items() if "router.start after" in k]
    met = figures["suspend on: failed"] == 0 and all(isinstance(s, float) and s <= 0.5 for s in starts)
    return Result(figures, met, notes=f"Load: 100 req/s over 4 keep-alive connections; outage {outage:g} s; "
                                      f"registrar heartbeat {beat_every:g} s, TTL {ttl} s, pruning every 1 s. "
                                      "NATS is stopped and restarted on its port.")
