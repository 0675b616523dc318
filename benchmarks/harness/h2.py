"""HTTP/2 in the benchmark run: h2load against each proxy over TLS (ALPN h2) and cleartext (prior knowledge).

Every proxy listens for HTTP/2 next to its HTTP/1.1 port, in the same process, and forwards to the same
nginx backend over HTTP/1.1 as in the wrk tables: nginx (`listen ... ssl http2` and `listen ... http2`),
HAProxy (`bind ... ssl alpn h2,http/1.1` and `bind ... proto h2`), Portico (`ssl_port` with `enable_http2`
and h2c with prior knowledge on its plain port). Each point is a connection count and a number of concurrent
streams per connection (h2load -c, -m); the proxy's CPU per request comes from /proc as for wrk.
"""

from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from portico.stack.processes import free_port

from . import bounded
from .bounded import run_bounded
from .load import FOREIGN_LIMIT, OWN_PIDS, fmt
from .parse import H2loadSummary, median, parse_h2load
from .procs import children_cpu_seconds, cpu_seconds, machine_busy_seconds, process_tree, taskset_prefix

POINTS = ((10, 1), (10, 10), (50, 10))        # (connections, streams per connection)
QUICK_POINTS = ((10, 10), (50, 10))
TRANSPORTS = ("tls", "h2c")
GOAL_RATIO = 0.6                               # issue 12: Portico's h2 req/s >= 0.6 x nginx's


@dataclass
class TlsFiles:
    """A server certificate for the proxies' TLS listeners (h2load does not verify it)."""

    cert: Path      # the leaf certificate then its chain
    key: Path
    combined: Path  # chain then key, as HAProxy's `crt` wants


def make_tls_files(workdir: Path, names: tuple[str, ...] = ("bench.local", "127.0.0.1")) -> TlsFiles:
    import trustme

    workdir.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    issued = ca.issue_cert(*names)
    files = TlsFiles(workdir / "server.crt", workdir / "server.key", workdir / "server.pem")
    files.cert.write_bytes(b"".join(blob.bytes() for blob in issued.cert_chain_pems))
    files.key.write_bytes(issued.private_key_pem.bytes())
    files.combined.write_bytes(files.cert.read_bytes() + files.key.read_bytes())
    return files


def nginx_listen_lines(tls_port: int, h2c_port: int, tls: TlsFiles) -> str:
    """nginx 1.22's spelling (`http2` on `listen`); 1.25+ also takes it, with a deprecation warning."""
    return (f"    listen 127.0.0.1:{tls_port} ssl http2 backlog=8192;\n"
            f"    listen 127.0.0.1:{h2c_port} http2 backlog=8192;\n"
            f"    ssl_certificate {tls.cert};\n"
            f"    ssl_certificate_key {tls.key};\n")


def haproxy_bind_lines(tls_port: int, h2c_port: int, tls: TlsFiles) -> str:
    return (f"  bind 127.0.0.1:{tls_port} ssl crt {tls.combined} alpn h2,http/1.1\n"
            f"  bind 127.0.0.1:{h2c_port} proto h2\n")


def portico_tls_lines(ssl_port: int, tls: TlsFiles) -> str:
    """h2c needs nothing: prior knowledge is on by default on the plain port."""
    def block(path: Path) -> str:   # gorouter's tls_pem holds the PEM texts, not paths
        return "".join(f"      {line}\n" for line in path.read_text().strip().splitlines())

    return (f"enable_ssl: true\nssl_port: {ssl_port}\nenable_http2: true\n"
            f"tls_pem:\n  - cert_chain: |\n{block(tls.cert)}    private_key: |\n{block(tls.key)}")


class H2Listeners:
    """Ports and config lines that give each proxy its HTTP/2 listeners, all with one certificate."""

    def __init__(self, workdir: Path) -> None:
        self.tls = make_tls_files(workdir)

    def nginx(self) -> tuple[str, dict]:
        tls_port, h2c_port = free_port(), free_port()
        return nginx_listen_lines(tls_port, h2c_port, self.tls), {"h2_tls_port": tls_port, "h2c_port": h2c_port}

    def haproxy(self) -> tuple[str, dict]:
        tls_port, h2c_port = free_port(), free_port()
        return haproxy_bind_lines(tls_port, h2c_port, self.tls), {"h2_tls_port": tls_port, "h2c_port": h2c_port}

    def portico(self) -> tuple[str, dict]:
        """h2c is spoken on Portico's plain port itself: the caller adds "h2c_port" once that is known."""
        ssl_port = free_port()
        return portico_tls_lines(ssl_port, self.tls), {"h2_tls_port": ssl_port}


@dataclass
class H2Run:
    rps: float
    requests: int
    errors: int
    mean_ms: float | None
    cpu_us_per_req: float | None
    proxy_cpu_util: float | None
    foreign_cpu_util: float


@dataclass
class H2Point:
    target: str
    transport: str          # "tls" or "h2c"
    connections: int
    streams: int            # concurrent streams per connection (h2load -m)
    runs: list[H2Run] = field(default_factory=list)

    def _med(self, attr: str) -> float | None:
        return median([getattr(r, attr) for r in self.runs if getattr(r, attr) is not None])

    def summary(self) -> dict:
        return {"target": self.target, "transport": self.transport, "connections": self.connections,
                "streams": self.streams, "rps": self._med("rps"), "mean_ms": self._med("mean_ms"),
                "cpu_us_per_req": self._med("cpu_us_per_req"), "proxy_cpu_util": self._med("proxy_cpu_util"),
                "foreign_cpu_util": self._med("foreign_cpu_util"), "errors": sum(r.errors for r in self.runs),
                "runs": [asdict(r) for r in self.runs]}


def parse_mean_request_ms(text: str) -> float | None:
    """h2load's `time for request:  min  max  mean  sd  +/- sd` line; the mean, in ms."""
    found = re.search(r"^time for request:\s+\S+\s+\S+\s+([0-9.]+)(us|ms|s)\b", text, re.M)
    if not found:
        return None
    return float(found.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[found.group(2)]


def parse_protocol(text: str) -> str | None:
    found = re.search(r"^Application protocol: (\S+)", text, re.M)
    return found.group(1) if found else None


def h2load_argv(h2load: str, port: int, transport: str, authority: str, connections: int, streams: int,
                duration: float, cpus: set[int] | None) -> list[str]:
    """The route goes in :authority; `-H Host:` would make a second Host header (a 400 at Portico, as Go)."""
    scheme = "https" if transport == "tls" else "http"
    return [*taskset_prefix(cpus), h2load, "-t1", "-c", str(connections), "-m", str(streams),
            "-D", str(max(1, round(duration))), "-H", f":authority: {authority}", f"{scheme}://127.0.0.1:{port}/"]


def run_h2load(argv: list[str], timeout: float) -> tuple[H2loadSummary, str]:
    """One h2load run, killed after `timeout` s (LoadToolTimeout, a RuntimeError: the point is noted as failed)."""
    out = run_bounded(argv, timeout, "h2load")
    text = out.stdout + out.stderr
    if out.returncode != 0:
        raise RuntimeError(f"h2load failed ({out.returncode}): {text[-1500:]}")
    protocol = parse_protocol(text)
    if protocol not in ("h2", "h2c"):
        raise RuntimeError(f"h2load did not speak HTTP/2 (application protocol {protocol!r}): {text[-1500:]}")
    summary = parse_h2load(text)
    if summary.status_2xx == 0:
        raise RuntimeError(f"h2load got no 2xx answer: {text[-1500:]}")
    return summary, text


def measure_point(h2load: str, target, port: int, transport: str, connections: int, streams: int,
                  duration: float, warmup: float, runs: int, cpus: set[int] | None, log=print) -> H2Point:
    """A warm-up run, then `runs` measured h2load runs, repeated up to twice more while other processes
    disturbed them, as the wrk runs are; the least disturbed are kept."""
    point = H2Point(target.name, transport, connections, streams)
    argv = h2load_argv(h2load, port, transport, target.host_header, connections, streams, duration, cpus)
    if warmup > 0:
        run_h2load(h2load_argv(h2load, port, transport, target.host_header, connections, streams, warmup, cpus),
                   warmup + bounded.GRACE)
    done: list[H2Run] = []
    attempts = 0
    while sum(1 for r in done if r.foreign_cpu_util <= FOREIGN_LIMIT) < runs and attempts < runs + 2:
        attempts += 1
        own = [p for root in OWN_PIDS for p in process_tree(root)]
        cpu0, own0, kids0 = cpu_seconds(target.pids()), cpu_seconds(own), children_cpu_seconds()
        busy0, t0 = machine_busy_seconds(), time.monotonic()
        summary, text = run_h2load(argv, duration + bounded.GRACE)
        wall = max(time.monotonic() - t0, 1e-9)
        cpu = cpu_seconds(target.pids()) - cpu0
        own_cpu, kids = cpu_seconds(own) - own0, children_cpu_seconds() - kids0
        foreign = max(0.0, machine_busy_seconds() - busy0 - cpu - own_cpu - kids) / wall
        ok = summary.status_2xx
        run = H2Run(rps=summary.rps, requests=summary.total, errors=summary.total - ok,
                    mean_ms=parse_mean_request_ms(text), cpu_us_per_req=cpu / ok * 1e6 if ok else None,
                    proxy_cpu_util=cpu / wall, foreign_cpu_util=foreign)
        log(f"    {target.name} h2 {transport} -c{connections} -m{streams} attempt {attempts}: {run.rps:,.0f} req/s, "
            f"mean {fmt(run.mean_ms)} ms, cpu {fmt(run.cpu_us_per_req)} us/req, proxy busy "
            f"{fmt(run.proxy_cpu_util)} cores, foreign {foreign:.2f} cores, errors {run.errors}"
            + ("  (disturbed by other processes)" if foreign > FOREIGN_LIMIT else ""))
        done.append(run)
        if not target.alive():
            raise RuntimeError(f"{target.name} died during the run:\n{target.process.output()[-3000:]}")
    keep = sorted(sorted(range(len(done)), key=lambda k: done[k].foreign_cpu_util)[:runs])
    point.runs = [done[k] for k in keep]
    return point


def h2_runs(h2load: str, target, args, cpus: set[int] | None, res: dict, log=print) -> None:
    """Every point over both transports for one proxy; results go to res["h2"], a failure to res["notes"]."""
    ports = {"tls": target.extra.get("h2_tls_port"), "h2c": target.extra.get("h2c_port")}
    for transport in TRANSPORTS:
        port = ports[transport]
        if not port:
            continue
        for connections, streams in (QUICK_POINTS if args.quick else POINTS):
            try:
                point = measure_point(h2load, target, port, transport, connections, streams, args.duration,
                                      args.warmup, args.runs, cpus, log=log)
            except RuntimeError as err:
                note = f"HTTP/2 {transport} to {target.name} not measured: {str(err).splitlines()[0][:300]}"
                log(f"  {note}")
                res["notes"].append(note)
                break   # the other points of this transport would fail the same way
            res.setdefault("h2", []).append(point.summary())


def _best(rows: list[dict], target: str, transport: str) -> dict | None:
    found = [r for r in rows if r["target"] == target and r["transport"] == transport and r.get("rps")]
    return max(found, key=lambda r: r["rps"]) if found else None


def h2_targets(res: dict) -> list[dict]:
    """The issue's goal, per transport: Portico's best h2 req/s against nginx's best, same run."""
    rows = res.get("h2") or []
    out = []
    for transport, label in (("tls", "TLS, ALPN h2"), ("h2c", "cleartext, prior knowledge")):
        p, n = _best(rows, "portico", transport), _best(rows, "nginx", transport)
        name = f"HTTP/2 throughput vs nginx ({label}, best point)"
        if p and n:
            ratio = p["rps"] / n["rps"]
            value = (f"{ratio:.2f}x ({p['rps']:,.0f} at -c{p['connections']} -m{p['streams']} vs "
                     f"{n['rps']:,.0f} at -c{n['connections']} -m{n['streams']})")
            out.append({"name": name, "goal": f">= {GOAL_RATIO:.2f}x nginx", "value": value,
                        "met": ratio >= GOAL_RATIO, "gorouter": ""})
        else:
            out.append({"name": name, "goal": f">= {GOAL_RATIO:.2f}x nginx", "value": "not measured", "met": None,
                        "gorouter": ""})
    return out


def h2_section(rows: list[dict]) -> list[str]:
    """BENCHMARKS.md's HTTP/2 table: every point, and each proxy's req/s as a ratio of nginx's at that point."""
    if not rows:
        return []
    nginx = {(r["transport"], r["connections"], r["streams"]): r for r in rows if r["target"] == "nginx"}
    out = ["## HTTP/2 (h2load): TLS with ALPN h2 and cleartext with prior knowledge", "",
           "h2load, one thread: `-c` connections with `-m` concurrent streams each; each proxy forwards to the same "
           "nginx backend over HTTP/1.1 with keep-alive. Median of runs; CPU per request is the proxy's, from "
           "/proc, over each measured run (a warm-up run goes first).", "",
           "| proxy | transport | -c | -m | req/s | x nginx | mean ms | proxy CPU us/req | proxy cores busy "
           "| foreign cores | errors |",
           "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        base = nginx.get((r["transport"], r["connections"], r["streams"]))
        ratio = f"{r['rps'] / base['rps']:.2f}x" if base and base.get("rps") and r.get("rps") else "-"

        def f(value, digits=2):
            return "-" if value is None else (f"{value:,.0f}" if digits == 0 else f"{value:.{digits}f}")
        out.append(f"| {r['target']} | {r['transport']} | {r['connections']} | {r['streams']} | {f(r.get('rps'), 0)} "
                   f"| {ratio} | {f(r.get('mean_ms'))} | {f(r.get('cpu_us_per_req'), 1)} | "
                   f"{f(r.get('proxy_cpu_util'))} | {f(r.get('foreign_cpu_util'))} | {r.get('errors', 0)} |")
    out.append("")
    return out
