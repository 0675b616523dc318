"""`--workers N`: N router processes sharing the proxy port through SO_REUSEPORT.

Each worker has its own NATS subscription and route table (NATS fans registrations out to all of them); only
worker 0 serves the status ports, so there is one status endpoint for all. The supervisor forwards SIGTERM,
SIGINT and SIGUSR1 to every worker, restarts a worker that crashes, and exits when they have all stopped.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import time
from pathlib import Path

log = logging.getLogger("portico.workers")


def _spawn(config_path: Path, index: int, count: int, log_level: str) -> subprocess.Popen:
    argv = [sys.executable, "-m", "portico", "router", "-c", str(config_path), "--workers", str(count),
            "--worker-index", str(index)]
    if log_level:
        argv += ["--log-level", log_level]
    return subprocess.Popen(argv)


def supervise_workers(config_path: Path, settings, log_level: str = "") -> int:
    count = settings.workers
    procs = {i: _spawn(config_path, i, count, log_level) for i in range(count)}
    stopping = {"signal": None}

    def forward(signum, _frame):
        stopping["signal"] = signum
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signum)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1):
        signal.signal(signum, forward)
    log.info("started %d workers sharing port %d", count, settings.port)
    restarts: dict[int, float] = {}
    while True:
        alive = False
        for index, proc in list(procs.items()):
            code = proc.poll()
            if code is None:
                alive = True
                continue
            if stopping["signal"] is None and code != 0:
                if time.monotonic() - restarts.get(index, 0.0) < 1.0:
                    log.error("worker %d keeps failing (exit %d); stopping all", index, code)
                    forward(signal.SIGTERM, None)
                    continue
                log.warning("worker %d exited with %d; restarting it", index, code)
                restarts[index] = time.monotonic()
                procs[index] = _spawn(config_path, index, count, log_level)
                alive = True
        if not alive:
            return max((p.returncode or 0) for p in procs.values())
        time.sleep(0.1)
