"""Instructions per request under callgrind: a ratio between proxies that machine noise cannot move.

CPU seconds per request on a shared VM swing 30-50 % between runs; the instructions a proxy executes per
request do not (repeat runs agree to ~0.1 %). Each proxy runs under `valgrind --tool=callgrind`, is warmed up,
has its counters zeroed, serves wrk for a fixed time, and is dumped; the figure is user-space instructions
(Ir) of its whole process tree divided by the requests wrk counted. The kernel is not counted (every proxy
here makes the same two reads and two writes per request), and callgrind's slowdown (~50x) means a few
thousand requests at low concurrency, so this is a per-request cost, not a throughput.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import time
from pathlib import Path

from .load import run_wrk
from .natspub import NatsPublisher, register_payload
from .scale import REGISTER
from .targets import BENCH_HOST, start_forwarder, start_haproxy, start_nginx_proxy, start_portico

CONNECTIONS = 8


def _valgrind(out: Path) -> tuple[str, ...]:
    return ("valgrind", "--tool=callgrind", f"--callgrind-out-file={out}.%p", "--dump-instr=no")


def _control(flag: str, pids: list[int]) -> None:
    for pid in pids:
        subprocess.run(["callgrind_control", flag, str(pid)], capture_output=True, timeout=60)


def _dumped_total(out: Path, pids: list[int]) -> int:
    """Instructions in each process's newest dump (the one `callgrind_control -d` just wrote)."""
    total = 0
    for pid in pids:
        dumps = sorted(glob.glob(f"{out}.{pid}.*"), key=os.path.getmtime)
        if not dumps:
            continue
        for line in Path(dumps[-1]).read_text(errors="replace").splitlines():
            if line.startswith(("summary:", "totals:")):
                total += int(line.split()[1])
                break
    return total


def _measure(wrk: str, target, out: Path, seconds: float, log) -> dict:
    run_wrk_args = (target.port, target.host_header, CONNECTIONS)
    run_wrk(wrk, *run_wrk_args, 3, None)                       # warm-up: connections, pools, caches
    pids = target.pids()
    _control("-z", pids)
    res, _ = run_wrk(wrk, *run_wrk_args, seconds, None)
    _control("-d", pids)
    deadline = time.monotonic() + 30
    total = 0
    while time.monotonic() < deadline and not total:
        time.sleep(0.5)
        total = _dumped_total(out, pids)
    ok = res.requests - res.non_2xx
    row = {"target": target.name, "requests": ok, "instructions_per_request": total / ok if ok and total else None}
    log(f"    {target.name}: {ok} requests, {row['instructions_per_request'] or 0:,.0f} instructions per request")
    return row


def instructions_runs(tools, backend_port: int, nats_port: int | None, targets: list[str], workdir: Path,
                      seconds: float, log=print) -> list[dict]:
    """One row per proxy: instructions per request under callgrind (see the module docstring)."""
    if not tools.valgrind or not shutil.which("callgrind_control"):
        log("instructions per request: valgrind missing (apt-get install -y valgrind); skipped")
        return []
    rows = []
    for name in targets:
        out = workdir / name / "callgrind.out"
        out.parent.mkdir(parents=True, exist_ok=True)
        wrap = _valgrind(out)
        target = pub = None
        try:
            if name == "nginx" and tools.nginx:
                target = start_nginx_proxy(tools.nginx, backend_port, workdir / name, None, wrap=wrap)
            elif name == "haproxy" and tools.haproxy:
                target = start_haproxy(tools.haproxy, backend_port, workdir / name, None, wrap=wrap)
            elif name == "forwarder":
                target = start_forwarder(backend_port, workdir / name, None, wrap=wrap)
            elif name in ("portico", "portico-pure") and nats_port:
                target = start_portico(nats_port, workdir / name, None, timeout=300, attempts=1,
                                       pure=name == "portico-pure", wrap=wrap)
                pub = NatsPublisher("127.0.0.1", nats_port)
                pub.publish(REGISTER, register_payload("127.0.0.1", backend_port, [BENCH_HOST]))
                pub.flush()
                from .httpprobe import wait_for_status

                wait_for_status(target.port, BENCH_HOST, 200, timeout=120)
            else:
                continue
            rows.append(_measure(tools.wrk, target, out, seconds, log))
        except Exception as err:  # one proxy's failure costs its row, not the run
            log(f"    instructions per request, {name}: failed: {err}")
            rows.append({"target": name, "requests": 0, "instructions_per_request": None, "error": str(err)[:300]})
        finally:
            if pub:
                pub.close()
            if target:
                target.stop()
    return rows
