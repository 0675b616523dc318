"""The host's share in a latency figure: CPU steal, idle time, and how long a process waited for a CPU.

Why: a publish-to-routable sample is a chain of process wake-ups (probe, nats-server, router, backend). On a
shared 2-vCPU host a p99 of a few milliseconds is the size of one descheduled vCPU (steal) or of a busy CPU the
woken process has to queue for (run-queue wait). These counters say which of the two a tail figure measured.
"""

from __future__ import annotations

from pathlib import Path

Ticks = dict[str, tuple[int, int, int]]   # "cpu" / "cpu0" ... -> (steal, idle incl. iowait, all) in ticks


def parse_cpu_ticks(proc_stat: str) -> Ticks:
    """Steal, idle and total ticks of each `cpu` line of /proc/stat (the first eight numbers; guest time is
    already inside user)."""
    out: Ticks = {}
    for line in proc_stat.splitlines():
        if line.startswith("cpu"):
            name, *values = line.split()
            ticks = [int(v) for v in values[:8]]
            if len(ticks) == 8:
                out[name] = (ticks[7], ticks[3] + ticks[4], sum(ticks))
    return out


def cpu_ticks() -> Ticks | None:
    try:
        return parse_cpu_ticks(Path("/proc/stat").read_text())
    except OSError:
        return None


def shares(before: Ticks | None, after: Ticks | None, cpus: set[int] | None = None) -> tuple[float, float] | None:
    """(steal, idle) as shares of the interval's ticks on `cpus` (None: all CPUs); None if unknown."""
    if not before or not after:
        return None
    names = ["cpu"] if not cpus else [f"cpu{c}" for c in sorted(cpus)]
    if any(n not in before or n not in after for n in names):
        return None
    total = sum(after[n][2] - before[n][2] for n in names)
    if total <= 0:
        return None
    return (sum(after[n][0] - before[n][0] for n in names) / total,
            sum(after[n][1] - before[n][1] for n in names) / total)


def sched_ns(pids: list[int]) -> tuple[int, int]:
    """(on-CPU, waiting on a run queue) nanoseconds of all threads of `pids` (/proc/<pid>/task/*/schedstat);
    threads that ended in between are not counted, so take it over a span where the threads live on."""
    run = wait = 0
    for pid in pids:
        try:
            tasks = list(Path(f"/proc/{pid}/task").iterdir())
        except OSError:
            continue
        for task in tasks:
            try:
                fields = (task / "schedstat").read_text().split()
            except OSError:
                continue
            run, wait = run + int(fields[0]), wait + int(fields[1])
    return run, wait
