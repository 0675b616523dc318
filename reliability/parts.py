"""Real parts for the scenarios: nats-server (alone or a cluster), etcd clusters, routers and backends.

Routers, backends and the NATS publisher come from tests/e2e/support.py and single servers from
portico.stack.servers, so the fault suite and the end-to-end tests start processes the same way. A `Stack`
owns everything a scenario starts and stops it all on exit, whatever happened.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
import urllib.request
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
for _p in (ROOT / "tests", ROOT / "tests" / "e2e"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from polling import wait_for  # noqa: E402
from support import Backend, Router, get, loop_thread, nats_publish, registration, unique_host  # noqa: E402

from portico.stack.binaries import etcd_binary, nats_server_binary  # noqa: E402
from portico.stack.processes import ManagedProcess, free_port, wait_for_port  # noqa: E402
from portico.stack.servers import RunningServer, start_etcd, start_nats  # noqa: E402

__all__ = ["Stack", "Backend", "Router", "RunningServer", "get", "nats_publish", "registration", "unique_host",
           "wait_for", "free_port", "NatsNode", "EtcdNode"]


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

    def __enter__(self) -> "Stack":
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

    def nats(self, port: int | None = None) -> RunningServer:
        server = start_nats(port=port, workdir=self.folder(f"nats-{time.monotonic_ns()}"))
        self.on_exit(server.stop)
        return server

    def nats_cluster(self, size: int = 3) -> list[NatsNode]:
        cluster_ports = [free_port() for _ in range(size)]
        nodes = []
        for i, port in enumerate(cluster_ports):
            node = NatsNode(f"nats-{i}", self.folder("nats-cluster"), port, [p for p in cluster_ports if p != port])
            self.on_exit(node.stop)
            nodes.append(node)
        for node in nodes:
            wait_for_port(node.port, timeout=10, process=node.process.popen)
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
