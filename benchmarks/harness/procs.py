"""CPU time and memory of a process tree, read from /proc."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from .parse import parse_proc_stat, parse_vmrss_kb

CLK_TCK = os.sysconf("SC_CLK_TCK")


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None


def process_tree(root_pid: int) -> list[int]:
    """root_pid and all its live descendants (nginx master + worker, portico main + workers)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        text = _read(f"/proc/{entry}/stat")
        if text is None:
            continue
        try:
            stat = parse_proc_stat(text)
        except (ValueError, IndexError):
            continue
        children.setdefault(stat.ppid, []).append(stat.pid)
    found, todo = [], [root_pid]
    while todo:
        pid = todo.pop()
        if pid in found:
            continue
        found.append(pid)
        todo.extend(children.get(pid, []))
    return [pid for pid in found if os.path.exists(f"/proc/{pid}")]


def cpu_seconds(pids: list[int]) -> float:
    """Sum of utime+stime of these processes (all their threads), in seconds."""
    ticks = 0
    for pid in pids:
        text = _read(f"/proc/{pid}/stat")
        if text:
            ticks += parse_proc_stat(text).cpu_ticks
    return ticks / CLK_TCK


def rss_kb(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        text = _read(f"/proc/{pid}/status")
        if text:
            total += parse_vmrss_kb(text)
    return total


def pin(pids: list[int], cpus: set[int]) -> bool:
    """Pin every thread of these processes to `cpus`; False when that is not possible here."""
    ok = True
    for pid in pids:
        for tid in os.listdir(f"/proc/{pid}/task") if os.path.exists(f"/proc/{pid}/task") else []:
            try:
                os.sched_setaffinity(int(tid), cpus)
            except OSError:
                ok = False
    return ok


def taskset_prefix(cpus: set[int] | None) -> list[str]:
    if not cpus or not shutil.which("taskset"):
        return []
    return ["taskset", "-c", ",".join(str(c) for c in sorted(cpus))]


def machine_busy_seconds() -> float:
    """CPU seconds spent not idle by all cores since boot (first line of /proc/stat)."""
    text = _read("/proc/stat") or ""
    from .parse import parse_cpu_busy_ticks

    return parse_cpu_busy_ticks(text) / CLK_TCK


def children_cpu_seconds() -> float:
    """CPU of this process's waited-for children (wrk, h2load)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
