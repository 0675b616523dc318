"""`--workers N`: N router processes sharing the proxy port through SO_REUSEPORT.

Each worker has its own NATS subscription and route table (NATS fans registrations out to all of them); only
worker 0 serves the status ports, so there is one status endpoint for all. The supervisor forwards SIGTERM,
SIGINT and SIGUSR1 to every worker, restarts a worker that crashes, and exits when they have all stopped.
"""

from __future__ import annotations

import logging
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from portico.stack.supervisor import RestartPolicy

log = logging.getLogger("portico.workers")

#: A crashed worker is started again at once; one that dies within a second of a restart cannot run, so all
#: workers stop (the same RestartPolicy type `portico up` supervises its parts with).
WORKER_RESTARTS = RestartPolicy(first_delay=0.0, max_delay=0.0, quick=1.0, give_up_when_quick=True)


def _spawn(config_path: Path, index: int, count: int, log_args: list[str], ready_fd: int | None = None,
           stats_dir: Path | None = None) -> subprocess.Popen:
    argv = [sys.executable, "-m", "portico", "router", "-c", str(config_path), "--workers", str(count),
            "--worker-index", str(index), *log_args]
    if stats_dir is not None:
        argv += ["--stats-dir", str(stats_dir)]
    if ready_fd is None:
        return subprocess.Popen(argv)
    return subprocess.Popen([*argv, "--ready-fd", str(ready_fd)], pass_fds=(ready_fd,))


def _spawn_and_wait_ready(config_path: Path, index: int, count: int, log_args: list[str],
                          stats_dir: Path | None = None, timeout: float = 60.0) -> subprocess.Popen:
    """Start a worker and wait until it is subscribed to NATS and listening (it writes one byte to a pipe)."""
    read_end, write_end = os.pipe()
    try:
        proc = _spawn(config_path, index, count, log_args, write_end, stats_dir)
    finally:
        os.close(write_end)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and proc.poll() is None:
            ready, _, _ = select.select([read_end], [], [], 0.1)
            if ready:
                os.read(read_end, 1)
                break
        else:
            log.warning("worker %d did not report ready in %.0fs", index, timeout)
    finally:
        os.close(read_end)
    return proc


def supervise_workers(config_path: Path, settings, log_level: str = "", log_format: str = "auto") -> int:
    count = settings.workers
    log_args = ["--log-format", log_format] + (["--log-level", log_level] if log_level else [])
    # Workers 1..N-1 leave their counters in stats_dir; worker 0 adds them to its status endpoints.
    with tempfile.TemporaryDirectory(prefix="portico-workers-") as stats_dir:
        return _supervise(config_path, settings, log_args, count, Path(stats_dir))


def _supervise(config_path: Path, settings, log_args: list[str], count: int, stats_dir: Path) -> int:
    # Workers 1..N-1 first, each ready before the next: worker 0 owns /health, so the router reports healthy
    # only once every worker is subscribed and can route (a worker that subscribed late would miss routes
    # registered in between and answer 404 until the apps re-register).
    procs = {i: _spawn_and_wait_ready(config_path, i, count, log_args, stats_dir) for i in range(1, count)}
    procs[0] = _spawn(config_path, 0, count, log_args, stats_dir=stats_dir)
    stopping = {"signal": None}

    def forward(signum, _frame):
        stopping["signal"] = signum
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signum)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1):
        signal.signal(signum, forward)
    log.info("started %d workers sharing port %d", count, settings.port)
    started = dict.fromkeys(procs, time.monotonic())
    restarts = dict.fromkeys(procs, 0)
    while True:
        alive = False
        for index, proc in list(procs.items()):
            code = proc.poll()
            if code is None:
                alive = True
                continue
            if stopping["signal"] is None and code != 0:
                now = time.monotonic()
                if WORKER_RESTARTS.next_delay(now - started[index], restarts[index], 0.0) is None:
                    log.error("worker %d keeps failing (exit %d); stopping all", index, code)
                    forward(signal.SIGTERM, None)
                    continue
                log.warning("worker %d exited with %d; restarting it", index, code)
                started[index], restarts[index] = now, restarts[index] + 1
                procs[index] = _spawn(config_path, index, count, log_args, stats_dir=stats_dir)
                alive = True
        if not alive:
            return max((p.returncode or 0) for p in procs.values())
        time.sleep(0.1)
