"""Many routes against 1 route, measured alternately on the same router: the ratio the route-scale and 1M-route
goals are about.

Why alternate: this host's speed swings by 1.5-3x within minutes (a 1-route reference measured a few minutes
before the big-table run once came out at a third of the same run's other 1-route figure, and made a 0.69x
result read 2.19x "met"). Here, once the table is loaded, runs with one host (r0, the first route) and runs
with a random one of the n routes take turns on the same router process, and the ratio is the median of the
ratios of neighbouring runs: both sides of each ratio ran within seconds of each other, on the same heap and
the same table, and only what requests touch differs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .load import closed_loop, fmt
from .parse import median

PAIR_WARMUP = 1.0   # seconds before each measured run: the other pattern ran just before


@dataclass
class PairedResult:
    routes: int
    one_rps: float | None = None            # Host r0 only, between the n-route runs
    n_rps: float | None = None              # a random one of the n routes per request
    ratio: float | None = None              # median over pairs of n_rps / one_rps
    n_p99_ms: float | None = None
    n_cpu_us: float | None = None
    one_cpu_us: float | None = None
    pairs: list[tuple[float, float]] = field(default_factory=list)


def paired_runs(wrk: str, target, routes: int, connections: int, duration: float, warmup: float, runs: int,
                load_cpus, script: Path, log=print) -> PairedResult:
    """`runs` pairs of (1 route, `routes` routes) closed-loop runs, alternating, on `target` as loaded now."""
    out = PairedResult(routes)
    one_cpu, n_cpu, n_p99 = [], [], []
    for k in range(max(1, runs)):
        first = warmup if k == 0 else min(warmup, PAIR_WARMUP)
        one = closed_loop(wrk, target, connections, duration, first, 1, load_cpus, script=script,
                          script_args=["1"], log=log)
        many = closed_loop(wrk, target, connections, duration, min(warmup, PAIR_WARMUP), 1, load_cpus,
                           script=script, script_args=[str(routes)], log=log)
        if one.rps and many.rps:
            out.pairs.append((one.rps, many.rps))
        one_cpu.append(one.cpu_us_per_req)
        n_cpu.append(many.cpu_us_per_req)
        n_p99.append(many.p99_ms)
    if out.pairs:
        out.one_rps = median([a for a, _ in out.pairs])
        out.n_rps = median([b for _, b in out.pairs])
        out.ratio = median([b / a for a, b in out.pairs])
    out.one_cpu_us = median([v for v in one_cpu if v is not None])
    out.n_cpu_us = median([v for v in n_cpu if v is not None])
    out.n_p99_ms = median([v for v in n_p99 if v is not None])
    log(f"  {routes:,} routes vs 1 route, alternating on one router: {fmt(out.n_rps, 0)} vs {fmt(out.one_rps, 0)} "
        f"req/s = x{fmt(out.ratio)} (pairs: {', '.join(f'{b / a:.2f}' for a, b in out.pairs)})")
    return out
