"""Run a real nats-server or etcd on 127.0.0.1, for tests and for `portico up`."""

from __future__ import annotations

import json
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from portico.stack.binaries import etcd_binary, nats_server_binary
from portico.stack.processes import ManagedProcess, free_port, wait_for_port


@dataclass
class RunningServer:
    """A started server: its process, where it listens, and its URL."""

    process: ManagedProcess
    host: str
    port: int
    url: str

    def stop(self) -> None:
        self.process.stop()


def start_nats(port: int | None = None, workdir: Path | None = None, timeout: float = 30.0,
               args: Sequence[str] = ()) -> RunningServer:
    """nats-server on 127.0.0.1; `args` adds options, e.g. ["--user", "u", "--pass", "p"] or --tls ones."""
    port = port or free_port()
    workdir = workdir or Path(tempfile.mkdtemp(prefix="portico-nats-"))
    argv = [nats_server_binary(), "-a", "127.0.0.1", "-p", str(port), *args]
    proc = ManagedProcess("nats-server", argv, workdir / "nats-server.log").start()
    try:
        wait_for_port(port, timeout=timeout, process=proc.popen)
    except Exception:
        proc.stop()
        raise
    return RunningServer(proc, "127.0.0.1", port, f"nats://127.0.0.1:{port}")


def start_etcd(port: int | None = None, peer_port: int | None = None, workdir: Path | None = None,
               timeout: float = 60.0, name: str = "portico", tls: tuple[str, str, str] | None = None
               ) -> RunningServer:
    """etcd on 127.0.0.1. `tls=(cert file, key file, client CA file)`: clients speak TLS (https) and must
    present a certificate signed by the CA (an empty CA file name: no client certificates).

    Returns once etcd serves: its client port is bound before it has elected itself leader, and a client
    call made in that gap waits (or times out) on a loaded machine, so without TLS /health must say true."""
    port = port or free_port()
    peer_port = peer_port or free_port()
    workdir = workdir or Path(tempfile.mkdtemp(prefix="portico-etcd-"))
    client_url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    peer_url = f"http://127.0.0.1:{peer_port}"
    argv = [
        etcd_binary(),
        "--name", name,
        "--data-dir", str(workdir / "data"),
        "--listen-client-urls", client_url,
        "--advertise-client-urls", client_url,
        "--listen-peer-urls", peer_url,
        "--initial-advertise-peer-urls", peer_url,
        "--initial-cluster", f"{name}={peer_url}",
        "--log-level", "warn",
    ]
    if tls:
        cert, key, client_ca = tls
        argv += ["--cert-file", cert, "--key-file", key]
        if client_ca:
            argv += ["--client-cert-auth", "--trusted-ca-file", client_ca]
    proc = ManagedProcess("etcd", argv, workdir / "etcd.log").start()
    deadline = time.monotonic() + timeout
    try:
        wait_for_port(port, timeout=timeout, process=proc.popen)
        if not tls:
            _wait_etcd_healthy(client_url, deadline, proc)
    except Exception:
        proc.stop()
        raise
    return RunningServer(proc, "127.0.0.1", port, client_url)


def _wait_etcd_healthy(client_url: str, deadline: float, proc: ManagedProcess) -> None:
    """Poll etcd's /health until it reports true (it has a leader and answers reads)."""
    last = "no answer"
    while True:
        try:
            with urllib.request.urlopen(f"{client_url}/health", timeout=2) as resp:
                answer = json.loads(resp.read() or b"{}")
            if answer.get("health") == "true":
                return
            last = str(answer)
        except (OSError, ValueError) as exc:   # urllib.error.URLError is an OSError
            last = str(exc)
        code = proc.popen.poll() if proc.popen is not None else None
        if code is not None:
            raise RuntimeError(f"etcd exited with code {code} before it was healthy")
        if time.monotonic() > deadline:
            raise TimeoutError(f"etcd on {client_url} not healthy in time (last answer: {last})")
        time.sleep(0.1)
