"""The whole entrance on this machine: wrk through `portico up` (HAProxy -> 2 routers -> app), next to the same
HAProxy config in front of the app directly, and the demo app a newcomer points wrk at.

Rows (each the median of the closed-loop runs, CPU summed over every process on the request path):
- HAProxy -> app: portico up's rendered haproxy.cfg, its router servers replaced by the backend;
- HAProxy -> 2 routers -> app: `portico up --routers 2`, the benchmark host registered on its NATS;
- HAProxy -> 2 routers -> demo app: what `portico up --demo` and wrk against the front port show.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from portico.stack.processes import ManagedProcess, free_port, wait_for_port

from .httpprobe import wait_for_status
from .load import closed_loop
from .natspub import NatsPublisher, register_payload
from .procs import process_tree
from .targets import BENCH_HOST

DEMO_HOST = "demo.portico.local"


@dataclass
class StackTarget:
    """A closed_loop target made of several processes (their CPU is summed): the request path's parts."""

    name: str
    port: int
    host_header: str
    roots: list[int]
    process: ManagedProcess          # the one whose log is shown if the target dies
    extra: dict = field(default_factory=dict)

    def pids(self) -> list[int]:
        return [p for root in self.roots for p in process_tree(root)]

    def alive(self) -> bool:
        return all(Path(f"/proc/{pid}").exists() for pid in self.roots)


class PorticoUp:
    """`portico up --demo --routers 2 --ports auto` in workdir; its state.json and rendered haproxy.cfg."""

    def __init__(self, workdir: Path, routers: int = 2) -> None:
        self.workdir = workdir
        self.out = workdir.parent / "up.out"
        argv = [sys.executable, "-m", "portico", "up", "--demo", "--ports", "auto", "--routers", str(routers),
                "--workdir", str(workdir)]
        env = dict(os.environ, PYTHONUNBUFFERED="1", COLUMNS="200")
        workdir.parent.mkdir(parents=True, exist_ok=True)
        with open(self.out, "wb") as out:
            self.popen = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env,
                                          start_new_session=True)
        deadline = time.monotonic() + 120
        while " ready: " not in self.out.read_text(errors="replace"):
            if self.popen.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"portico up did not start:\n{self.out.read_text(errors='replace')[-2000:]}")
            time.sleep(0.2)
        self.state = json.loads((workdir / "state.json").read_text())

    def pids(self, kind: str) -> list[int]:
        return [p["pid"] for p in self.state["parts"].values() if p["kind"] == kind and p.get("pid")]

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGINT)
            try:
                self.popen.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)


def haproxy_in_front_of(cfg_text: str, backend_port: int) -> tuple[str, int]:
    """portico up's haproxy.cfg with a new front port, no stats listener or state file, and the routers replaced
    by one server: the backend. Returns (config, front port)."""
    front = free_port()
    out, skipping = [], False
    for line in cfg_text.splitlines():
        if line.startswith("listen portico_stats"):
            skipping = True
        elif skipping and line and not line.startswith(" "):
            skipping = False
        if skipping or "server-state" in line or line.strip().startswith("server "):
            continue
        if line.strip().startswith("bind "):
            line = re.sub(r":\d+\s*$", f":{front}", line)
        out.append(line)
        if line.startswith("backend portico_routers"):
            out.append(f"    server app 127.0.0.1:{backend_port}")
    return "\n".join(out) + "\n", front


def whole_stack(wrk: str, haproxy: str, backend_port: int, connections: list[int], duration: float,
                warmup: float, runs: int, workdir: Path, log=print) -> list[dict]:
    """Closed-loop rows for the three paths above; see the module docstring."""
    from portico.confsync.shipped import haproxy_env

    rows: list[dict] = []
    up = PorticoUp(workdir / "up")
    pub = None
    direct = None
    try:
        cfg, front = haproxy_in_front_of((workdir / "up" / "haproxy" / "haproxy.cfg").read_text(), backend_port)
        (workdir / "direct").mkdir(parents=True, exist_ok=True)
        (workdir / "direct" / "haproxy.cfg").write_text(cfg)
        direct = ManagedProcess("haproxy-direct", [haproxy, "-f", str(workdir / "direct" / "haproxy.cfg")],
                                workdir / "direct" / "haproxy.log", env=haproxy_env(haproxy),
                                extra_logs={3: workdir / "direct" / "access.log"}).start()
        wait_for_port(front, timeout=15, process=direct.popen)
        pub = NatsPublisher("127.0.0.1", int(up.state["nats"].rsplit(":", 1)[1]))
        edge = up.pids("haproxy") + up.pids("router")
        targets = [
            StackTarget("HAProxy -> app", front, BENCH_HOST, [direct.pid], direct),
            StackTarget("HAProxy -> 2 routers -> app", up.state["front_port"], BENCH_HOST, edge,
                        up_part(up, "router-1")),
            StackTarget("HAProxy -> 2 routers -> demo app", up.state["front_port"], DEMO_HOST,
                        edge + up.pids("demo"), up_part(up, "router-1")),
        ]
        for target in targets:
            for c in connections:
                if target.host_header == BENCH_HOST:   # (re-)register: a run must not outlive the route's TTL
                    pub.publish("router.register", register_payload("127.0.0.1", backend_port, [BENCH_HOST]))
                    pub.flush()
                wait_for_status(target.port, target.host_header, 200, timeout=15)
                log(f"whole stack: {target.name}, c={c}")
                rows.append(closed_loop(wrk, target, c, duration, warmup, runs, None, log=log).summary())
    finally:
        if pub is not None:
            pub.close()
        if direct is not None:
            direct.stop()
        up.stop()
    return rows


def up_part(up: PorticoUp, name: str) -> ManagedProcess:
    """A ManagedProcess view of one of portico up's parts, for its log when it dies during a run."""
    part = up.state["parts"][name]
    return ManagedProcess(name, [], Path(part["log"]))
