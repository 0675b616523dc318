"""The whole entrance for a scenario: `portico up --demo --restart` as a subprocess, and what it writes.

A scenario kills one part of it (a router, confsync, or the nats-server / etcd it was pointed at) while a
`SteadyLoad` goes through HAProxy's front port to the demo apps, then reads the figures from the stack's own
files: `state.json` (pids), confsync's log (reloads, watch resumptions), HAProxy's access log (retries and
termination states) and the routers' /varz.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from typing import Any

from reliability.load import SteadyLoad
from reliability.parts import Stack, wait_for

DEMO_HOST = "demo.portico.local"


class Entrance:
    """One `portico up` run in `stack`'s folder; stopped (and everything it started) when the stack closes."""

    def __init__(self, stack: Stack, routers: int = 2, nats_url: str | None = None, etcd_url: str | None = None,
                 lease_ttl: float = 5.0) -> None:
        self.workdir = stack.folder("up")
        self.out = stack.workdir / "up.out"
        self.argv = [sys.executable, "-m", "portico", "up", "--demo", "--restart", "--ports", "auto",
                     "--routers", str(routers), "--lease-ttl", f"{lease_ttl:g}", "--workdir", str(self.workdir)]
        if nats_url:
            self.argv += ["--nats", nats_url]
        if etcd_url:
            self.argv += ["--etcd", etcd_url]
        self.popen: subprocess.Popen | None = None
        self._sessions: set[int] = set()
        stack.on_exit(self.stop)

    def start(self, timeout: float = 120.0) -> Entrance:
        env = dict(os.environ, PYTHONUNBUFFERED="1", COLUMNS="200")
        with open(self.out, "wb") as out:
            self.popen = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT, env=env,
                                          start_new_session=True)
        wait_for(lambda: " ready: " in self.output() or self.popen.poll() is not None, timeout=timeout,
                 interval=0.2, message="portico up ready")
        if self.popen.poll() is not None:
            raise RuntimeError(f"portico up exited while starting:\n{self.output()[-3000:]}")
        self._remember_sessions()
        return self

    def stop(self) -> None:
        if self.popen is None:
            return
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGINT)
            try:
                self.popen.wait(60)
            except subprocess.TimeoutExpired:
                pass
        self._remember_sessions()
        for sid in self._sessions | {self.popen.pid}:   # never leave a part behind, whatever happened
            try:
                os.killpg(sid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    # ------------------------------------------------------------------ what the stack says
    def output(self) -> str:
        try:
            return self.out.read_text(errors="replace")
        except OSError:
            return ""

    def state(self) -> dict[str, Any]:
        return json.loads((self.workdir / "state.json").read_text())

    def _remember_sessions(self) -> None:
        try:
            self._sessions |= {p["pid"] for p in self.state()["parts"].values() if p.get("pid")}
        except (OSError, ValueError):
            pass

    @property
    def front_port(self) -> int:
        return int(self.state()["front_port"])

    def pid(self, part: str) -> int:
        return int(self.state()["parts"][part]["pid"])

    def kill(self, part: str) -> int:
        """SIGKILL one part (its whole process group, as a crash would); returns the pid it had."""
        pid = self.pid(part)
        os.killpg(pid, signal.SIGKILL)
        return pid

    def wait_restarted(self, part: str, old_pid: int, timeout: float = 60.0) -> float:
        """Block until `portico up` has restarted `part`; returns time.monotonic() of that moment."""
        def restarted() -> bool:
            self._remember_sessions()
            info = self.state()["parts"][part]
            return info["pid"] != old_pid and info["running"]
        wait_for(restarted, timeout=timeout, interval=0.05, message=f"{part} restarted")
        return time.monotonic()

    def load(self, rate: float, connections: int) -> SteadyLoad:
        return SteadyLoad(self.front_port, DEMO_HOST, "/", rate=rate, connections=connections).start()

    # ------------------------------------------------------------------ HAProxy and confsync
    def confsync_log(self) -> str:
        try:
            return (self.workdir / "confsync.log").read_text(errors="replace")
        except OSError:
            return ""

    def reloads(self) -> int:
        """HAProxy reloads confsync has made so far (every run of confsync appends to the same log)."""
        return self.confsync_log().count("reload_cmd ok")

    def settle(self, quiet: float = 3.0, timeout: float = 60.0) -> None:
        """Wait until confsync has made no reload for `quiet` seconds (the routers joining are behind us)."""
        deadline = time.monotonic() + timeout
        count, since = self.reloads(), time.monotonic()
        while time.monotonic() - since < quiet:
            if time.monotonic() > deadline:
                raise AssertionError(f"confsync still reloading HAProxy after {timeout}s")
            time.sleep(0.1)
            now = self.reloads()
            if now != count:
                count, since = now, time.monotonic()

    def watch_starts(self) -> int:
        return len(re.findall(r"etcd watch on \S+ from revision", self.confsync_log()))

    def haproxy_cfg_digest(self) -> str:
        return hashlib.sha256((self.workdir / "haproxy" / "haproxy.cfg").read_bytes()).hexdigest()[:12]

    def reload_haproxy(self) -> None:
        """A hitless reload through the master CLI, exactly as confsync's reload_cmd does it."""
        from portico.confsync.shipped.haproxy_ctl import reload

        if reload(str(self.workdir / "haproxy" / "master.sock"), None, 15.0) != 0:
            raise RuntimeError("HAProxy reload failed")

    def access_log_lines(self) -> int:
        try:
            with open(self.workdir / "haproxy" / "access.log", "rb") as f:
                return sum(1 for _ in f)
        except OSError:
            return 0

    def access_summary(self, skip_lines: int = 0) -> dict[str, Any]:
        """From HAProxy's access log (after `skip_lines`): requests, those it retried, how the others ended."""
        requests, retried = 0, 0
        endings: Counter[str] = Counter()
        with open(self.workdir / "haproxy" / "access.log", "rb") as f:
            for i, raw in enumerate(f):
                if i < skip_lines:
                    continue
                fields = raw.decode(errors="replace").split()
                if len(fields) < 12 or fields[2] != "portico_http" or not fields[3].startswith("portico_routers/"):
                    continue
                requests += 1
                retries = fields[10].rsplit("/", 1)[-1]
                if retries not in ("0", ""):
                    retried += 1
                if fields[9] != "----" or fields[5] != "200":
                    endings[f"{fields[5]} {fields[9]}"] += 1
        return {"HAProxy: requests logged": requests, "HAProxy: requests it retried on another router": retried,
                "HAProxy: requests not ended cleanly (status termination)": dict(endings) or "none"}

    # ------------------------------------------------------------------ routers
    def router_varz(self, index: int = 1) -> dict[str, Any]:
        port = self.state()["parts"][f"router-{index}"]["ports"]["status"]
        req = urllib.request.Request(f"http://127.0.0.1:{port}/varz",
                                     headers={"Authorization": "Basic " + base64.b64encode(b"admin:admin").decode()})
        with urllib.request.urlopen(req, timeout=5) as resp:
            return json.load(resp)

    def router_log(self, index: int = 1) -> str:
        return (self.workdir / f"router-{index}" / "router.log").read_text(errors="replace")

    def router_routes(self, index: int = 1) -> dict[str, Any]:
        port = self.state()["parts"][f"router-{index}"]["ports"]["routes"]
        req = urllib.request.Request(f"http://127.0.0.1:{port}/routes",
                                     headers={"Authorization": "Basic " + base64.b64encode(b"admin:admin").decode()})
        with urllib.request.urlopen(req, timeout=5) as resp:
            return json.load(resp)
