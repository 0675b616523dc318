"""Instructions (and, with --cache-sim, cache misses) per request with N routes loaded, counted by callgrind.

The router of this checkout runs under `valgrind --tool=callgrind` with instrumentation off while N routes are
registered as the benchmark registers them (harness/million.py's paced chunks of `r<i>.bench.local`), then on;
wrk with the benchmark's random-host script alternates 1 host (r0) and N hosts on the same process, and each run
is dumped: counts per request, deterministic to ~0.1 % (wall-clock ratios on a shared machine are not).
`--only uv__read` counts only what runs under libuv's read callback (the request path, not the status tick).

    .venv/bin/python benchmarks/callgrind_routes.py --routes 100000 --only uv__read [--cache-sim] [--pure]
"""

from __future__ import annotations

import argparse
import glob
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, os.getcwd())

import harness.targets as targets
from harness.httpprobe import wait_for_status
from harness.load import RANDOM_HOST_LUA
from harness.million import _payload, publish_paced
from harness.natspub import NatsPublisher
from harness.scale import REGISTER, scale_host

from portico.stack.binaries import nats_server_binary
from portico.stack.processes import ManagedProcess, free_port, wait_for_port


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--routes", type=int, default=100_000)
    ap.add_argument("--seconds", type=int, default=10, help="measured wrk seconds per run")
    ap.add_argument("--conns", type=int, default=8)
    ap.add_argument("--cache-sim", action="store_true", help="callgrind's cache simulation (D1/LL misses)")
    ap.add_argument("--only", default="", help="count only under this function (callgrind --toggle-collect)")
    ap.add_argument("--order", default="1,n", help="runs in this order: 1 = host r0 only, n = random of N")
    ap.add_argument("--pure", action="store_true", help="PORTICO_PURE_PYTHON=1")
    args = ap.parse_args()
    work = Path(f"/tmp/callgrind-routes-{os.getpid()}")
    work.mkdir()
    lua = work / "random_host.lua"
    lua.write_text(RANDOM_HOST_LUA)
    nats_port = free_port()
    nats = ManagedProcess("nats", [nats_server_binary(), "-a", "127.0.0.1", "-p", str(nats_port)],
                          work / "nats.log").start()
    wait_for_port(nats_port, timeout=10)
    backend = targets.start_nginx_backend("/usr/sbin/nginx", work / "be", {1})
    out = work / "cg.out"
    valgrind = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}.%p", "--instr-atstart=no",
                "--dump-instr=no"]
    if args.cache_sim:
        valgrind.append("--cache-sim=yes")
    if args.only:
        valgrind += ["--collect-atstart=no", f"--toggle-collect={args.only}"]
    targets.taskset_prefix = lambda cpus: valgrind
    router = targets.start_portico(nats_port, work / "portico", None, pure=args.pure, timeout=300)
    try:
        pid = router.pids()[-1]
        pub = NatsPublisher("127.0.0.1", nats_port)
        pub.publish(REGISTER, _payload(scale_host(0), backend.port))
        pub.flush()
        wait_for_status(router.port, scale_host(0), 200, timeout=60)
        if args.routes > 1:
            took = publish_paced(pub, router.port, backend.port, args.routes, timeout=3600)
            print(f"loaded {args.routes:,} routes in {took:.1f}s (valgrind, not instrumented)", flush=True)
        subprocess.run(["callgrind_control", "-i", "on", str(pid)], capture_output=True, check=False)
        for which in args.order.split(","):
            hosts = 1 if which == "1" else args.routes
            _wrk(router.port, lua, args.conns, 4, hosts)
            subprocess.run(["callgrind_control", "-z", str(pid)], capture_output=True, check=False)
            requests = _wrk(router.port, lua, args.conns, args.seconds, hosts)
            subprocess.run(["callgrind_control", "-d", str(pid)], capture_output=True, check=False)
            time.sleep(1)
            dump = sorted(glob.glob(f"{out}.{pid}*"), key=os.path.getmtime)[-1]
            per = "  ".join(f"{name} {count / requests:,.1f}" for name, count in _events(dump).items())
            print(f"hosts {hosts:>9,}  requests {requests}  per request: {per}  dump {dump}", flush=True)
    finally:
        router.stop()
        backend.stop()
        nats.stop()


def _wrk(port: int, lua: Path, conns: int, seconds: int, hosts: int) -> int:
    run = subprocess.run(["wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "-s", str(lua), f"http://127.0.0.1:{port}/",
                          "--", str(hosts)], capture_output=True, text=True, check=False)
    line = [text for text in run.stdout.splitlines() if "requests in" in text]
    if not line:
        raise SystemExit(f"wrk failed: {run.stdout} {run.stderr}")
    return int(line[0].split()[0])


def _events(dump: str) -> dict[str, int]:
    names: list[str] = []
    with open(dump) as lines:
        for line in lines:
            if line.startswith("events:"):
                names = line.split()[1:]
            elif line.startswith(("summary:", "totals:")):
                return dict(zip(names, (int(x) for x in line.split()[1:]), strict=False))
    return {}


if __name__ == "__main__":
    main()
