"""The host's share in a latency figure, beside steal (steal.py): idle time, and how long a process waited for a CPU.

Why: a publish-to-routable sample is a chain of process wake-ups (probe, nats-server, router, backend). On a
shared 2-vCPU host a p99 of a few milliseconds is the size of one descheduled vCPU (steal) or of a busy CPU the
woken process has to queue for (run-queue wait). These counters say which of the two a tail figure measured.
"""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

Ticks = dict[str, tuple[int, int]]   # "cpu" / "cpu0" ... -> (idle incl. iowait, all) in ticks


def parse_idle_ticks(proc_stat: str) -> Ticks:
    """Idle (idle + iowait) and total ticks of each `cpu` line of /proc/stat (the first eight numbers, as
    steal.parse_steal counts them)."""
    out: Ticks = {}
    for line in proc_stat.splitlines():
        if line.startswith("cpu"):
            name, *values = line.split()
            ticks = [int(v) for v in values[:8]]
            if len(ticks) == 8:
                out[name] = (ticks[3] + ticks[4], sum(ticks))
    return out


def idle_ticks() -> Ticks | None:
    try:
        return parse_idle_ticks(Path("/proc/stat").read_text())
    except OSError:
        return None


def idle_share(before: Ticks | None, after: Ticks | None) -> float | None:
    """Idle share of all CPUs' ticks over the interval: low means something was running on every CPU."""
    if not before or not after or "cpu" not in before or "cpu" not in after:
        return None
    total = after["cpu"][1] - before["cpu"][1]
    return (after["cpu"][0] - before["cpu"][0]) / total if total > 0 else None


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


def pids_listening_as(comm: str, port: int) -> list[int]:
    """Processes named `comm` whose command line has `-p PORT` or `--port PORT` (how the harness starts
    nats-server): lets a step that only holds a connection find the server's pid for sched_ns."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if (proc / "comm").read_text().strip() != comm:
                continue
            args = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(a in (b"-p", b"--port") and b == str(port).encode() for a, b in pairwise(args)):
            found.append(int(proc.name))
    return found
