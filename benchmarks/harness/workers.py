"""`portico router --workers 1` against `--workers 2`, with the load generator pinned away where cores allow.

With 3 or more cores both routers get the same two cores (the highest) and wrk the others, so the second
worker has a core of its own and nothing else competes there: the scaling figure is the router's. With 2 cores
there is no core to spare: wrk, the backend and nats-server share the machine with the workers, and the runs
are unpinned (pinning wrk to one core would give the second worker nothing); the report says so and shows how
busy the router processes were, so the scaling is read against what the machine had free.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict

from .httpprobe import get_json, wait_for_status
from .load import closed_loop
from .natspub import register_payload
from .scale import REGISTER, WorkerStep, workers_check
from .targets import BENCH_HOST


def worker_cpus(ncpu: int, pin_allowed: bool) -> tuple[set[int] | None, set[int] | None, str]:
    """(router cores, load-generator cores, how) for the workers runs on a machine of `ncpu` cores."""
    if pin_allowed and ncpu >= 3:
        router = {ncpu - 2, ncpu - 1}
        load = set(range(ncpu - 2))
        return router, load, (f"routers pinned to CPUs {sorted(router)} (a core per worker), wrk to "
                              f"{sorted(load)}; the backend and nats-server may share wrk's cores")
    why = "pinning disabled (--no-pin or no taskset)" if not pin_allowed else f"{ncpu} cores"
    return None, None, (f"unpinned ({why}): wrk, the backend and nats-server share the cores with the workers, "
                        "so 2 workers cannot reach 2x; 'cores busy' shows what the routers got")


def workers_runs(wrk: str, phase: Callable, backend_port: int, connections: int, duration: float, warmup: float,
                 runs: int, ncpu: int, pin_allowed: bool, log=print) -> dict:
    """Both steps; `phase(name, workers=N, cpus=...)` is main's context manager giving (target, publisher)."""
    router_cpus, load_cpus, how = worker_cpus(ncpu, pin_allowed)
    steps: list[dict] = []
    for n in (1, 2):
        log(f"workers: --workers {n}, c={connections}; {how.split(':')[0]}")
        with phase(f"workers {n}", workers=n, cpus=router_cpus) as (target, pub):
            pub.publish(REGISTER, register_payload("127.0.0.1", backend_port, [BENCH_HOST]))
            pub.flush()
            wait_for_status(target.port, BENCH_HOST, 200, timeout=15)
            time.sleep(0.3)  # every worker has its own subscription; let all of them apply the message
            misses = workers_check(target, BENCH_HOST)
            try:
                table = get_json(f"http://127.0.0.1:{target.extra['routes_port']}/routes", "admin", "admin", 10)
                routes_ok = BENCH_HOST in table
            except Exception:   # an unreachable /routes counts as not ok
                routes_ok = False
            r = closed_loop(wrk, target, connections, duration, warmup, runs, load_cpus, log=log)
            step = WorkerStep(workers=n, rps=r.rps, p99_ms=r.p99_ms, cpu_us_per_req=r.cpu_us_per_req,
                              proxy_cpu_util=r.proxy_cpu_util, errors=r.errors, processes=len(target.pids()),
                              connection_check_failures=misses, routes_endpoint_ok=routes_ok)
            if steps and steps[0]["rps"] and step.rps:
                step.scaling = step.rps / steps[0]["rps"]
            elif n == 1:
                step.scaling = 1.0
            steps.append(asdict(step))
            log(f"  {n} worker(s): {step.rps or 0:,.0f} req/s, x{step.scaling or 0:.2f}, {step.processes} "
                f"processes, {misses} new-connection misses")
    return {"pinning": how, "pinned": router_cpus is not None, "steps": steps}


def workers_note(workers: dict | list | None) -> list[str]:
    """The line under the workers table: how the runs were pinned, and the scaling in words."""
    if not isinstance(workers, dict):
        return []
    steps = workers.get("steps") or []
    line = f"Pinning: {workers.get('pinning', '-')}."
    two = next((s for s in steps if s["workers"] == 2), None)
    if two and two.get("scaling"):
        line += f" 2 workers gave {two['scaling']:.2f}x the requests/s of 1"
        line += " with a core each." if workers.get("pinned") else " on a shared machine."
    return [line, ""]
