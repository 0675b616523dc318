"""Pure parsers for what the load generators and /proc print. No I/O here, so it is unit-tested with recorded text."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

_UNITS_S = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_SI = {"": 1.0, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9}


def duration_to_seconds(text: str) -> float:
    """wrk prints durations as `519.00us`, `0.99ms`, `1.20s`, `2.00m`."""
    match = re.fullmatch(r"\s*([0-9.]+)\s*(us|ms|s|m|h)\s*", text)
    if not match:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(match.group(1)) * _UNITS_S[match.group(2)]


def si_number(text: str) -> float:
    """`70.79k` -> 70790.0."""
    match = re.fullmatch(r"\s*([0-9.]+)\s*([kKMG]?)\s*", text)
    if not match:
        raise ValueError(f"not a number: {text!r}")
    return float(match.group(1)) * _SI[match.group(2)]


@dataclass
class WrkResult:
    requests: int
    duration_s: float
    rps: float
    latency_p50_s: float | None = None
    latency_p75_s: float | None = None
    latency_p90_s: float | None = None
    latency_p99_s: float | None = None
    latency_avg_s: float | None = None
    latency_max_s: float | None = None
    non_2xx: int = 0
    socket_errors: dict[str, int] = field(default_factory=dict)

    @property
    def errors(self) -> int:
        return self.non_2xx + sum(self.socket_errors.values())


def parse_wrk(text: str) -> WrkResult:
    """Parse the text `wrk --latency` prints (wrk 4.x)."""
    total = re.search(r"^\s*(\d+) requests in ([0-9.]+\w+),", text, re.M)
    rps = re.search(r"^Requests/sec:\s*([0-9.]+)", text, re.M)
    if not total or not rps:
        raise ValueError("wrk output without a request count / Requests/sec line:\n" + text[-2000:])
    result = WrkResult(requests=int(total.group(1)), duration_s=duration_to_seconds(total.group(2)),
                       rps=float(rps.group(1)))
    for pct, attr in (("50", "latency_p50_s"), ("75", "latency_p75_s"), ("90", "latency_p90_s"),
                      ("99", "latency_p99_s")):
        found = re.search(rf"^\s*{pct}%\s+([0-9.]+\w+)\s*$", text, re.M)
        if found:
            setattr(result, attr, duration_to_seconds(found.group(1)))
    lat = re.search(r"^\s*Latency\s+([0-9.]+\w+)\s+([0-9.]+\w+)\s+([0-9.]+\w+)", text, re.M)
    if lat:
        result.latency_avg_s = duration_to_seconds(lat.group(1))
        result.latency_max_s = duration_to_seconds(lat.group(3))
    non = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", text)
    if non:
        result.non_2xx = int(non.group(1))
    sock = re.search(r"Socket errors:\s*(.+)$", text, re.M)
    if sock:
        for name, value in re.findall(r"(\w+)\s+(\d+)", sock.group(1)):
            result.socket_errors[name] = int(value)
    return result


@dataclass
class H2loadSummary:
    total: int
    succeeded: int
    failed: int
    errored: int
    timeout: int
    status_2xx: int
    status_4xx: int
    status_5xx: int
    rps: float
    finished_s: float


def parse_h2load(text: str) -> H2loadSummary:
    """Parse the summary h2load prints at the end of a run."""
    fin = re.search(r"finished in ([0-9.]+)(\w+), ([0-9.]+) req/s", text)
    req = re.search(r"requests: (\d+) total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, "
                    r"(\d+) errored, (\d+) timeout", text)
    codes = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", text)
    if not fin or not req or not codes:
        raise ValueError("h2load output without its summary:\n" + text[-2000:])
    return H2loadSummary(
        total=int(req.group(1)), succeeded=int(req.group(2)), failed=int(req.group(3)),
        errored=int(req.group(4)), timeout=int(req.group(5)),
        status_2xx=int(codes.group(1)), status_4xx=int(codes.group(3)), status_5xx=int(codes.group(4)),
        rps=float(fin.group(3)), finished_s=duration_to_seconds(fin.group(1) + fin.group(2)),
    )


@dataclass
class RequestLog:
    """h2load --log-file: one line per request of the main phase: start (us since epoch), status, latency (us)."""

    starts_us: list[int]
    statuses: list[int]
    latencies_us: list[int]

    @property
    def count(self) -> int:
        return len(self.latencies_us)

    @property
    def span_s(self) -> float:
        if len(self.starts_us) < 2:
            return 0.0
        return (max(self.starts_us) - min(self.starts_us)) / 1e6

    def ok_latencies_s(self) -> list[float]:
        return [lat / 1e6 for lat, st in zip(self.latencies_us, self.statuses, strict=False) if 200 <= st < 400]

    @property
    def errors(self) -> int:
        return sum(1 for st in self.statuses if not 200 <= st < 400)


def parse_h2load_log(text: str) -> RequestLog:
    starts, statuses, lats = [], [], []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) != 3:
            continue
        starts.append(int(parts[0]))
        statuses.append(int(parts[1]))
        lats.append(int(parts[2]))
    return RequestLog(starts, statuses, lats)


def percentile(values: list[float], pct: float) -> float | None:
    """Nearest-rank percentile (pct in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def median(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


@dataclass
class ProcStat:
    pid: int
    comm: str
    state: str
    ppid: int
    utime_ticks: int
    stime_ticks: int
    num_threads: int
    rss_pages: int

    @property
    def cpu_ticks(self) -> int:
        return self.utime_ticks + self.stime_ticks


def parse_proc_stat(text: str) -> ProcStat:
    """Parse /proc/<pid>/stat. comm is in parentheses and may itself hold spaces and parentheses."""
    open_at = text.index("(")
    close_at = text.rindex(")")
    pid = int(text[:open_at].strip())
    comm = text[open_at + 1:close_at]
    rest = text[close_at + 2:].split()
    # rest[0] is field 3 (state); field n is rest[n - 3]
    return ProcStat(pid=pid, comm=comm, state=rest[0], ppid=int(rest[1]), utime_ticks=int(rest[11]),
                    stime_ticks=int(rest[12]), num_threads=int(rest[17]), rss_pages=int(rest[21]))


def parse_vmrss_kb(status_text: str) -> int:
    """VmRSS in kB from /proc/<pid>/status (0 when absent, e.g. a zombie)."""
    found = re.search(r"^VmRSS:\s*(\d+)\s*kB", status_text, re.M)
    return int(found.group(1)) if found else 0


def parse_varz_registrations(varz: dict) -> int | None:
    """Find a count of applied registrations in a /varz document, wherever the router put it."""
    candidates = ("registry_message_count", "registrations", "registry_messages", "register_messages",
                  "router_register_messages", "total_registrations")
    stack = [varz]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key in candidates:
                value = node.get(key)
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    return int(value)
                if isinstance(value, dict):
                    for sub in ("router.register", "register", "total"):
                        if isinstance(value.get(sub), (int, float)):
                            return int(value[sub])
            stack.extend(v for v in node.values() if isinstance(v, (dict, list)))
        elif isinstance(node, list):
            stack.extend(v for v in node if isinstance(v, (dict, list)))
    return None


def parse_cpu_busy_ticks(proc_stat: str) -> int:
    """Ticks all cores spent running processes (user + nice + system) from the `cpu` line of /proc/stat.
    irq/softirq time is left out: it is not charged to any process, so it could not be told apart."""
    for line in proc_stat.splitlines():
        if line.startswith("cpu "):
            fields = [int(x) for x in line.split()[1:]]
            user, nice, system = fields[:3]
            return user + nice + system
    raise ValueError("no cpu line in /proc/stat")
