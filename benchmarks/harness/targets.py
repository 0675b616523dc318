"""Start the backend and the proxies under test, each on 127.0.0.1, each as a ManagedProcess."""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from portico.stack.processes import ManagedProcess, free_port, wait_for_port

from .httpprobe import http_status, wait_for_status
from .procs import process_tree, taskset_prefix

BENCH_DIR = Path(__file__).resolve().parent.parent
BENCH_HOST = "bench.local"
# idle kept-alive connections each proxy may keep to the backend: nginx's `keepalive`, Portico's
# max_idle_conns_per_host. Portico's default is gorouter's 100, which at 200 concurrent requests made it close and
# re-dial about one backend connection in five requests while nginx kept its 256 (benchmarks/README.md).
BACKEND_IDLE_CONNECTIONS = 256


@dataclass
class Target:
    """A running server: its name, port, process, and the Host header requests to it should carry."""

    name: str
    port: int
    process: ManagedProcess
    host_header: str = BENCH_HOST
    extra: dict = field(default_factory=dict)

    def pids(self) -> list[int]:
        return process_tree(self.process.pid)

    def alive(self) -> bool:
        return self.process.running()

    def stop(self) -> None:
        self.process.stop()


def _nginx_common(workdir: Path) -> str:
    temp = "\n".join(f"  {name}_temp_path {workdir}/{name}_temp;" for name in
                     ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return f"""
worker_processes 1;
daemon off;
master_process on;
pid {workdir}/nginx.pid;
error_log {workdir}/error.log warn;
events {{ worker_connections 8192; }}
"""  + "http {\n" + temp + "\n"


def start_nginx_backend(nginx: str, workdir: Path, cpus: set[int] | None) -> Target:
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = _nginx_common(workdir) + f"""
  access_log off;
  keepalive_requests 10000000;
  keepalive_timeout 300s;
  server {{
    listen 127.0.0.1:{port} backlog=8192;
    location / {{ default_type text/plain; return 200 "ok\\n"; }}
  }}
}}
"""
    (workdir / "nginx.conf").write_text(conf)
    argv = [*taskset_prefix(cpus), nginx, "-p", str(workdir), "-c", str(workdir / "nginx.conf")]
    proc = ManagedProcess("backend-nginx", argv, workdir / "stdout.log").start()
    wait_for_port(port, timeout=10, process=proc.popen)
    return Target("backend (nginx return 200)", port, proc)


def start_builtin_backend(workdir: Path, cpus: set[int] | None) -> Target:
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    argv = [*taskset_prefix(cpus), sys.executable, "-m", "harness.backend", str(port)]
    proc = ManagedProcess("backend-builtin", argv, workdir / "stdout.log", cwd=str(BENCH_DIR)).start()
    wait_for_port(port, timeout=10, process=proc.popen)
    return Target("backend (built-in uvloop)", port, proc)


def start_nginx_proxy(nginx: str, backend_port: int, workdir: Path, cpus: set[int] | None,
                      extra_listen: str = "", wrap: tuple[str, ...] = ()) -> Target:
    """nginx, 1 worker, upstream keep-alive, access log to a file, X-Forwarded-* and a request id added;
    `extra_listen`: more listen lines in the same server (harness/h2.py's HTTP/2 ones)."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    # under valgrind (`wrap`) one process: callgrind then counts the process that serves the requests
    common = _nginx_common(workdir).replace("master_process on;", "master_process off;") if wrap else \
        _nginx_common(workdir)
    conf = common + f"""
  log_format bench '$host - [$time_local] "$request" $status $request_length $body_bytes_sent '
                   '"$http_referer" "$http_user_agent" "$remote_addr:$remote_port" "$upstream_addr" '
                   'x_forwarded_for:"$proxy_add_x_forwarded_for" vcap_request_id:"$request_id" '
                   'response_time:$request_time';
  access_log {workdir}/access.log bench;
  keepalive_requests 10000000;
  keepalive_timeout 300s;
  upstream backend {{
    server 127.0.0.1:{backend_port};
    keepalive {BACKEND_IDLE_CONNECTIONS};
    keepalive_requests 10000000;
  }}
  server {{
    listen 127.0.0.1:{port} backlog=8192;
{extra_listen}    location / {{
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Request-Id $request_id;
    }}
  }}
}}
"""
    (workdir / "nginx.conf").write_text(conf)
    argv = [*taskset_prefix(cpus), *wrap, nginx, "-p", str(workdir), "-c", str(workdir / "nginx.conf")]
    proc = ManagedProcess("nginx", argv, workdir / "stdout.log").start()
    wait_for_port(port, timeout=120 if wrap else 10, process=proc.popen)
    wait_for_status(port, BENCH_HOST, 200, timeout=120 if wrap else 10)
    return Target("nginx", port, proc)


def start_haproxy(haproxy: str, backend_port: int, workdir: Path, cpus: set[int] | None,
                  extra_bind: str = "", wrap: tuple[str, ...] = ()) -> Target:
    """HAProxy, 1 thread, http-reuse always, log lines to stdout (a file), X-Forwarded-For and a request id;
    `extra_bind`: more bind lines in the same frontend (harness/h2.py's HTTP/2 ones)."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = f"""
global
  nbthread 1
  maxconn 8000
  log stdout format raw local0 info

defaults
  mode http
  log global
  option httplog
  timeout connect 5s
  timeout client 300s
  timeout server 300s
  timeout http-keep-alive 300s

frontend fe
  bind 127.0.0.1:{port}
{extra_bind}  option forwardfor
  http-request set-header X-Forwarded-Proto http
  unique-id-format %{{+X}}o\\ %ci:%cp_%fi:%fp_%Ts_%rt:%pid
  unique-id-header X-Request-Id
  default_backend be

backend be
  http-reuse always
  server b1 127.0.0.1:{backend_port} maxconn 10000
"""
    (workdir / "haproxy.cfg").write_text(conf)
    argv = [*taskset_prefix(cpus), *wrap, haproxy, "-db", "-f", str(workdir / "haproxy.cfg")]
    proc = ManagedProcess("haproxy", argv, workdir / "haproxy.log").start()
    wait_for_port(port, timeout=120 if wrap else 10, process=proc.popen)
    wait_for_status(port, BENCH_HOST, 200, timeout=120 if wrap else 10)
    return Target("haproxy", port, proc)


def start_forwarder(backend_port: int, workdir: Path, cpus: set[int] | None, wrap: tuple[str, ...] = ()) -> Target:
    """The featureless uvloop + httptools forwarder (harness/forwarder.py): the floor under Portico."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    argv = [*taskset_prefix(cpus), *wrap, sys.executable, "-m", "harness.forwarder", str(port), str(backend_port)]
    proc = ManagedProcess("forwarder", argv, workdir / "stdout.log", cwd=str(BENCH_DIR)).start()
    wait_for_port(port, timeout=120 if wrap else 10, process=proc.popen)
    wait_for_status(port, BENCH_HOST, 200, timeout=120 if wrap else 10)
    return Target(FORWARDER, port, proc)


FORWARDER = "bare uvloop+httptools forwarder"


def portico_config(workdir: Path, nats_port: int, port: int, status_port: int, routes_port: int) -> str:
    return f"""status:
  host: 127.0.0.1
  port: {status_port}
  user: admin
  pass: admin
  routes:
    port: {routes_port}
nats:
  hosts:
    - hostname: 127.0.0.1
      port: {nats_port}
port: {port}
listen_host: 127.0.0.1
start_response_delay_interval: 0s
max_idle_conns_per_host: {BACKEND_IDLE_CONNECTIONS}
access_log:
  file: {workdir}/access.log
droplet_stale_threshold: 600s
prune_stale_droplets_interval: 600s
route_snapshot:
  enabled: false
"""


def start_portico(nats_port: int, workdir: Path, cpus: set[int] | None, workers: int = 1,
                  timeout: float = 30.0, attempts: int = 2, extra_config: str = "", pure: bool = False,
                  wrap: tuple[str, ...] = ()) -> Target:
    """`python -m portico router -c FILE [--workers N]`, waited for until /health answers 200; a router that
    dies while starting is started once more (the failure is kept in STARTUP_FAILURES for the report).
    `pure`: PORTICO_PURE_PYTHON=1, the pure-Python modules instead of the compiled ones (target `portico (pure)`);
    `wrap`: a command the router runs under (harness/instructions.py's valgrind)."""
    for attempt in range(attempts):
        try:
            return _start_portico(nats_port, workdir / f"try{attempt}" if attempt else workdir, cpus, workers,
                                  timeout, extra_config, pure, wrap)
        except (RuntimeError, TimeoutError) as err:
            STARTUP_FAILURES.append(f"{type(err).__name__}: {str(err)[:300]}")
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


STARTUP_FAILURES: list[str] = []


def _start_portico(nats_port: int, workdir: Path, cpus: set[int] | None, workers: int,
                   timeout: float, extra_config: str = "", pure: bool = False, wrap: tuple[str, ...] = ()) -> Target:
    workdir.mkdir(parents=True, exist_ok=True)
    port, status_port, routes_port = free_port(), free_port(), free_port()
    cfg = workdir / "portico.yml"
    cfg.write_text(portico_config(workdir, nats_port, port, status_port, routes_port) + extra_config)
    argv = [*taskset_prefix(cpus), *wrap, sys.executable, "-m", "portico", "router", "-c", str(cfg)]
    if workers != 1:
        argv += ["--workers", str(workers)]
    env = {**os.environ, "PORTICO_PURE_PYTHON": "1" if pure else "0"}
    proc = ManagedProcess(f"portico-{workers}w", argv, workdir / "portico.log", env=env).start()
    deadline = time.monotonic() + timeout
    while http_status(f"http://127.0.0.1:{status_port}/health") != 200:
        if not proc.running():
            raise RuntimeError(f"portico exited ({proc.popen.returncode}):\n{proc.output()[-3000:]}")
        if time.monotonic() > deadline:
            out = proc.output()[-3000:]
            proc.stop()
            raise TimeoutError(f"portico /health not 200 after {timeout}s:\n{out}")
        time.sleep(0.05)
    name = ("portico" if workers == 1 else f"portico --workers {workers}") + (" (pure)" if pure else "")
    return Target(name, port, proc, extra={"status_port": status_port, "routes_port": routes_port,
                                            "workers": workers, "workdir": str(workdir)})
