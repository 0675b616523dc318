"""Real parts for the scenarios: nats-server (alone or a cluster), etcd clusters, routers and backends.

Routers, backends and the NATS publisher come from tests/e2e/support.py and single servers from
portico.stack.servers, so the fault suite and the end-to-end tests start processes the same way. A `Stack`
owns everything a scenario starts and stops it all on exit, whatever happened.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for _p in (ROOT / "tests", ROOT / "tests" / "e2e"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from polling import wait_for  # type: ignore[import-not-found]  # noqa: E402
from support import Backend, Router, get, loop_thread, nats_publish, registration, unique_host  # type: ignore[import-not-found]  # noqa: E402

from portico.stack.binaries import etcd_binary, nats_server_binary  # noqa: E402
from portico.stack.processes import ManagedProcess, free_port, hold_port, wait_for_port  # noqa: E402
from portico.stack.servers import RunningServer, start_etcd, start_nats  # noqa: E402

__all__ = ["Backend", "EtcdNode", "Heartbeat", "NatsNode", "Router", "RunningServer", "Stack", "free_port", "get",
           "hold_port", "nats_log_times", "nats_publish", "registration", "unique_host", "wait_for"]


class Heartbeat:
    """A registrar: publishes these registrations now and then every `interval` s until stopped. A publish
    that fails (NATS down) is counted and retried at the next beat, as a real registrar does."""

    def __init__(self, nats_url: str, messages: list[dict[str, Any]], interval: float,
                 subject: str = "router.register") -> None:
        self.messages, self.nats_url, self.interval, self.subject = messages, nats_url, interval, subject
        self.beats = 0
        self.failed_beats = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="heartbeat")

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(15)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                loop_thread().run(publish_once(self.nats_url, self.subject, self.messages))
                self.beats += 1
            except Exception:   # NATS unreachable: a registrar keeps trying
                self.failed_beats += 1
            self._stop.wait(self.interval)


async def _quiet(_exc: Exception) -> None:
    return None


async def publish_once(nats_url: str, subject: str, messages: list[dict[str, Any]]) -> None:
    """Publish on one fresh connection; raise at once (no reconnect attempts, no logged traces) when NATS is
    not there."""
    import nats

    nc = await nats.connect(nats_url, connect_timeout=2, allow_reconnect=False, max_reconnect_attempts=0,
                            error_cb=_quiet)
    try:
        for msg in messages:
            await nc.publish(subject, json.dumps(msg).encode())
        await nc.flush()
    finally:
        await nc.close()


_NATS_TIME = re.compile(r"(\d{4}/\d\d/\d\d \d\d:\d\d:\d\d\.\d+)")


def nats_log_times(log: Path, needle: str) -> list[float]:
    """Times (seconds, the server's own clock) of the nats-server log lines containing `needle`."""
    times = []
    for line in log.read_text(errors="replace").splitlines():
        if needle in line:
            match = _NATS_TIME.search(line)
            if match:
                times.append(datetime.strptime(match.group(1), "%Y/%m/%d %H:%M:%S.%f").timestamp())
    return times


class NatsNode:
    """One nats-server of a cluster, with its monitoring port (to see who is connected)."""

    def __init__(self, name: str, workdir: Path, cluster_port: int, routes: list[int]) -> None:
        self.name = name
        self.port = free_port()
        self.monitor_port = free_port()
        self.cluster_port = cluster_port
        argv = [nats_server_binary(), "-a", "127.0.0.1", "-p", str(self.port), "-m", str(self.monitor_port),
                "--name", name, "--cluster_name", "portico-rel",
                "--cluster", f"nats://127.0.0.1:{cluster_port}",
                "--routes", ",".join(f"nats://127.0.0.1:{p}" for p in routes)]
        self.process = ManagedProcess(name, argv, workdir / f"{name}.log").start()

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def client_count(self) -> int:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.monitor_port}/connz", timeout=5) as resp:
            return int(json.load(resp)["num_connections"])

    def route_count(self) -> int:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.monitor_port}/routez", timeout=5) as resp:
            return int(json.load(resp)["num_routes"])

    def stop(self) -> None:
        self.process.stop()


class EtcdNode:
    """One member of an etcd cluster."""

    def __init__(self, name: str, workdir: Path, client_port: int, peer_port: int, cluster: str) -> None:
        self.name, self.port, self.peer_port = name, client_port, peer_port
        url, peer = f"http://127.0.0.1:{client_port}", f"http://127.0.0.1:{peer_port}"
        argv = [etcd_binary(), "--name", name, "--data-dir", str(workdir / name),
                "--listen-client-urls", url, "--advertise-client-urls", url,
                "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                "--initial-cluster", cluster, "--initial-cluster-state", "new",
                "--initial-cluster-token", "portico-rel", "--log-level", "warn"]
        self.process = ManagedProcess(name, argv, workdir / f"{name}.log").start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.process.stop()


class Stack:
    """Everything one scenario starts, in a fresh work folder; all of it stopped on exit (newest first).

    The folder is removed after a clean exit and kept (its path printed) when the scenario failed, so the
    router and server logs can be read.
    """

    def __init__(self, name: str) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix=f"portico-rel-{name}-"))
        self._exit = ExitStack()
        loop_thread()

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        self._exit.close()
        if exc_type is None:
            shutil.rmtree(self.workdir, ignore_errors=True)
        else:
            print(f"[reliability] logs kept in {self.workdir}", file=sys.stderr)

    def on_exit(self, stop: Callable[[], Any]) -> None:
        self._exit.callback(stop)

    def folder(self, name: str) -> Path:
        path = self.workdir / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def nats(self, port: int | None = None, trace: bool = False) -> RunningServer:
        """A nats-server; with `trace` it logs every protocol message with microsecond times (to time when
        a router sent router.start: `nats_log_times(server.process.log_path, "PUB router.start")`)."""
        if not trace:
            server = start_nats(port=port, workdir=self.folder(f"nats-{time.monotonic_ns()}"))
            self.on_exit(server.stop)
            return server
        port = port or free_port()
        argv = [nats_server_binary(), "-a", "127.0.0.1", "-p", str(port), "-V", "-D"]
        proc = ManagedProcess("nats-server", argv, self.folder(f"nats-{time.monotonic_ns()}") / "nats.log").start()
        self.on_exit(proc.stop)
        wait_for_port(port, timeout=30, process=proc.popen)
        return RunningServer(proc, "127.0.0.1", port, f"nats://127.0.0.1:{port}")

    def nats_cluster(self, size: int = 3) -> list[NatsNode]:
        cluster_ports = [free_port() for _ in range(size)]
        nodes = []
        for i, port in enumerate(cluster_ports):
            node = NatsNode(f"nats-{i}", self.folder("nats-cluster"), port, [p for p in cluster_ports if p != port])
            self.on_exit(node.stop)
            nodes.append(node)
        for node in nodes:
            wait_for_port(node.port, timeout=30, process=node.process.popen)
        wait_for(lambda: all(n.route_count() >= size - 1 for n in nodes), timeout=20, message="nats cluster routes")
        return nodes

    def etcd(self) -> RunningServer:
        server = start_etcd(workdir=self.folder(f"etcd-{time.monotonic_ns()}"))
        self.on_exit(server.stop)
        return server

    def etcd_cluster(self, size: int = 3) -> list[EtcdNode]:
        ports = [(free_port(), free_port()) for _ in range(size)]
        cluster = ",".join(f"etcd-{i}=http://127.0.0.1:{peer}" for i, (_, peer) in enumerate(ports))
        nodes = []
        for i, (client, peer) in enumerate(ports):
            node = EtcdNode(f"etcd-{i}", self.folder("etcd-cluster"), client, peer, cluster)
            self.on_exit(node.stop)
            nodes.append(node)
        for node in nodes:
            wait_for_port(node.port, timeout=30, process=node.process.popen)
        return nodes

    def router(self, nats_port: int, start: bool = True, **overrides: Any) -> Router:
        router = Router(self.folder(f"router-{time.monotonic_ns()}"), f"nats://127.0.0.1:{nats_port}", nats_port,
                        overrides)
        self.on_exit(router.stop)
        if start:
            router.start()
        return router

    def backend(self, name: str = "app") -> Backend:
        backend = Backend(name).start()
        self.on_exit(backend.stop)
        return backend
