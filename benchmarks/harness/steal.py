"""CPU steal: time this machine's virtual CPUs were ready to run while the hypervisor ran something else.

Why it is measured: on a shared host a vCPU that halts between requests can wait 10-50 ms to be run again, and
every process on it stalls for that long. Closed-loop runs hardly see it (a busy vCPU rarely halts), but an
open-loop run at a fraction of the peak halts thousands of times a second, and its tail latency becomes the
host's wake-up time, for nginx as much as for Portico. Each measured run records the steal of the CPUs the
proxy ran on, so a tail figure can be read for what it is, and open-loop points are repeated while it is high.
"""

from __future__ import annotations

from pathlib import Path

STEAL_LIMIT = 0.05   # a run with more steal than this on the proxy's CPUs measured the host, not the proxy

Sample = dict[str, tuple[int, int]]   # "cpu" / "cpu0" ... -> (steal ticks, all ticks)


def parse_steal(proc_stat: str) -> Sample:
    """Steal and total ticks per `cpu` line of /proc/stat (steal is the 8th number; total is the first eight,
    guest time being already inside user)."""
    out: Sample = {}
    for line in proc_stat.splitlines():
        if not line.startswith("cpu"):
            continue
        name, *values = line.split()
        ticks = [int(v) for v in values[:8]]
        if len(ticks) < 8:
            raise ValueError(f"/proc/stat line without a steal column: {line!r}")
        out[name] = (ticks[7], sum(ticks))
    if "cpu" not in out:
        raise ValueError("no cpu line in /proc/stat")
    return out


def sample() -> Sample | None:
    """Now's counters, or None where /proc/stat is not there (not Linux)."""
    try:
        return parse_steal(Path("/proc/stat").read_text())
    except (OSError, ValueError):
        return None


def steal_fraction(before: Sample | None, after: Sample | None, cpus: set[int] | None = None) -> float | None:
    """Share of the interval's ticks that were stolen, over `cpus` (all CPUs when None)."""
    if before is None or after is None:
        return None
    names = ["cpu"] if not cpus else [f"cpu{c}" for c in sorted(cpus)]
    if any(n not in before or n not in after for n in names):
        return None
    stolen = sum(after[n][0] - before[n][0] for n in names)
    total = sum(after[n][1] - before[n][1] for n in names)
    return stolen / total if total > 0 else None
