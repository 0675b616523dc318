"""`portico up`: the whole architecture on one machine, started, supervised and stopped as one.

    client ──▶ HAProxy (front port) ──▶ routers ×N ──▶ apps
                  ▲                       │  ▲
                  │ reload                │  └── router.register (NATS) ◀── portico register / registrar
      portico confsync ◀── watch ── etcd ◀┘ (each router announces itself under a lease)

Order of start: nats-server, etcd (unless --nats / --etcd point at existing ones), confsync's first render,
HAProxy (master-worker), confsync --watch, the routers, then (--demo) two demo apps and a registrar that keeps
them registered. Stop is the reverse. Every child runs in its own process group (ManagedProcess), so stopping
a part also stops whatever it forked, and nothing outlives `portico up`.

While running, a supervision loop prints one readable line per event: a part that exits, HAProxy marking a
router UP or DOWN, confsync rewriting haproxy.cfg and reloading HAProxy. `state.json` in the work directory
lists every part's pid, ports and log file.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from portico.stack.binaries import BinaryNotFound, haproxy_binary
from portico.stack.leftovers import process_identity, remember, stop_leftovers
from portico.stack.processes import ManagedProcess, free_port, wait_for_port

DEMO_HOST = "demo.portico.local"
ADMIN_USER = "admin"
ADMIN_PASS = "admin"

# Fixed default ports (the summary and docs/walkthrough.md show them). --base-port moves every port below
# except NATS, etcd and the front; --ports auto takes free ports for everything not given explicitly.
DEFAULT_FRONT_PORT = 8080
DEFAULT_NATS_PORT = 4222
DEFAULT_ETCD_PORT = 2379
DEFAULT_ETCD_PEER_PORT = 2380
DEFAULT_BASE_PORT = 8100       # router i (1-based): proxy base+10(i-1), status +1, routes +2
                               # confsync status base-1, HAProxy stats base-2, demo-i base+900+i


# HAProxy writes its access log (one line per request, with its termination state) to this inherited fd, a file
# in the work dir. One thread: with more, HAProxy drops log lines when two threads log at once.
HAPROXY_ACCESS_LOG_FD = 3


class UpError(RuntimeError):
    """A part could not start; the message is the reason shown to the user."""


class _Interrupted(BaseException):
    """SIGINT/SIGTERM while starting."""


@dataclass
class UpOptions:
    routers: int = 2
    front_port: int | None = None        # None: 8080 (fixed ports) or a free one (auto)
    nats_url: str | None = None          # existing NATS instead of an embedded one
    etcd_url: str | None = None          # existing etcd instead of an embedded one
    demo: bool = False
    workdir: Path | None = None
    base_port: int = DEFAULT_BASE_PORT
    auto_ports: bool = False
    restart: bool = False
    prefix: str = "/portico"
    lease_ttl: float = 5.0
    ready_timeout: float = 30.0


@dataclass
class RouterPorts:
    proxy: int
    status: int
    routes: int


@dataclass
class PortPlan:
    front: int
    nats: int | None
    etcd: int | None
    etcd_peer: int | None
    confsync_status: int
    haproxy_stats: int
    routers: list[RouterPorts]
    demo: list[int]

    def owned(self) -> list[tuple[str, int]]:
        """(what, port) for every port this stack will listen on."""
        out = [("HAProxy front", self.front)]
        if self.nats:
            out.append(("nats-server", self.nats))
        if self.etcd:
            out += [("etcd client", self.etcd), ("etcd peer", self.etcd_peer)]
        out += [("confsync status", self.confsync_status), ("HAProxy stats", self.haproxy_stats)]
        for i, r in enumerate(self.routers, 1):
            out += [(f"router-{i} proxy", r.proxy), (f"router-{i} status", r.status),
                    (f"router-{i} routes", r.routes)]
        out += [(f"demo-{i}", p) for i, p in enumerate(self.demo, 1)]
        return out


def plan_ports(opts: UpOptions) -> PortPlan:
    n = opts.routers
    if opts.auto_ports:
        taken: set[int] = set()

        def pick() -> int:
            while True:
                port = free_port()
                if port not in taken:
                    taken.add(port)
                    return port

        front = opts.front_port or pick()
        taken.add(front)
        return PortPlan(
            front=front,
            nats=None if opts.nats_url else pick(),
            etcd=None if opts.etcd_url else pick(),
            etcd_peer=None if opts.etcd_url else pick(),
            confsync_status=pick(), haproxy_stats=pick(),
            routers=[RouterPorts(pick(), pick(), pick()) for _ in range(n)],
            demo=[pick() for _ in range(2)] if opts.demo else [],
        )
    b = opts.base_port
    return PortPlan(
        front=opts.front_port or DEFAULT_FRONT_PORT,
        nats=None if opts.nats_url else DEFAULT_NATS_PORT,
        etcd=None if opts.etcd_url else DEFAULT_ETCD_PORT,
        etcd_peer=None if opts.etcd_url else DEFAULT_ETCD_PEER_PORT,
        confsync_status=b - 1, haproxy_stats=b - 2,
        routers=[RouterPorts(b + 10 * i, b + 10 * i + 1, b + 10 * i + 2) for i in range(n)],
        demo=[b + 900 + i for i in range(1, 3)] if opts.demo else [],
    )


def port_problem(port: int, host: str = "127.0.0.1") -> str | None:
    """None when we can listen on host:port, else why not."""
    if not 0 < port < 65536:
        return f"port {port} is not a valid port"
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except PermissionError:
            return (f"port {port} needs privileges (run as root, give haproxy CAP_NET_BIND_SERVICE, "
                    f"or lower net.ipv4.ip_unprivileged_port_start)")
        except OSError as exc:
            return f"port {port} is already in use ({exc.strerror})"
    return None


def check_ports(plan: PortPlan) -> None:
    seen: dict[int, str] = {}
    problems = []
    for what, port in plan.owned():
        if port in seen:
            problems.append(f"{what} and {seen[port]} would both use port {port}")
            continue
        seen[port] = what
        problem = port_problem(port)
        if problem:
            problems.append(f"{what}: {problem}")
    if problems:
        hint = ("choose other ports with --front-port / --base-port, or --ports auto for free ones; "
                "--nats URL / --etcd URL use servers that already run")
        if len(problems) >= len(seen) - 1 and len(problems) > 2:
            hint = "is another `portico up` running? " + hint
        raise UpError("cannot start:\n" + "\n".join(f"  - {p}" for p in problems) + f"\n  hint: {hint}")


def _split_urls(value: str) -> list[str]:
    return [u.strip() for u in value.split(",") if u.strip()]


def _nats_hosts(url: str) -> list[dict]:
    hosts = []
    for u in _split_urls(url):
        parts = urllib.parse.urlsplit(u if "://" in u else f"nats://{u}")
        entry: dict = {"hostname": parts.hostname or "127.0.0.1", "port": parts.port or 4222}
        if parts.username:
            entry["user"] = urllib.parse.unquote(parts.username)
            entry["pass"] = urllib.parse.unquote(parts.password or "")
        hosts.append(entry)
    return hosts


def _etcd_endpoints(url: str) -> list[str]:
    return [u if "://" in u else f"http://{u}" for u in _split_urls(url)]


def _reachable(host: str, port: int, timeout: float = 2.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _exit_text(code: int | None) -> str:
    if code is None:
        return "unknown code"
    if code < 0:
        try:
            return f"code {code}, {signal.Signals(-code).name}"
        except ValueError:
            return f"code {code}"
    return f"code {code}"


def _tail(path: Path, lines: int = 8) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return "\n".join("    " + line for line in text[-lines:])


@dataclass
class Part:
    """One supervised child: its process, what it is for, where it listens."""

    name: str
    kind: str                     # nats, etcd, haproxy, confsync, router, demo, registrar
    proc: ManagedProcess
    ports: dict[str, int] = field(default_factory=dict)
    critical: bool = False        # the stack cannot work without it: exit when it dies (NATS and etcd are
                                  # restarted instead under --restart)
    reported_exit: bool = False
    restart_at: float | None = None
    restarts: int = 0
    started_at: float = field(default_factory=time.monotonic)
    backoff: float = 1.0


class Stack:
    def __init__(self, opts: UpOptions, console: Console | None = None) -> None:
        self.opts = opts
        self.console = console or Console(highlight=False, soft_wrap=True)
        self.parts: list[Part] = []
        self.plan: PortPlan | None = None
        self.workdir = Path(opts.workdir or tempfile.mkdtemp(prefix="portico-up-")).resolve()
        self.nats_url = ""
        self.etcd_urls: list[str] = []
        self._stop_signal: int | None = None
        self._starting = True
        self._confsync_log_pos = 0
        self._haproxy_misses = 0
        self.haproxy_socket = self.workdir / "haproxy" / "master.sock"
        self._haproxy_servers: dict[str, tuple[str, str]] | None = None   # svname -> (addr, status)
        self._stats_error_reported = False

    # ---------------------------------------------------------------- output
    def say(self, message: str, style: str = "") -> None:
        line = Text(time.strftime("%H:%M:%S "), style="dim")
        line.append(message, style=style)
        self.console.print(line)
        try:
            self.console.file.flush()
        except (AttributeError, ValueError, OSError):
            pass

    # ---------------------------------------------------------------- signals
    def _on_signal(self, signum, _frame) -> None:
        if self._stop_signal is None:
            self._stop_signal = signum
            if self._starting:
                raise _Interrupted()

    def install_signals(self) -> None:
        # SIGHUP too: the children live in their own sessions, so a closed terminal must stop them through us
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, self._on_signal)

    # ---------------------------------------------------------------- run
    def run(self) -> int:
        """Start everything, supervise until SIGINT/SIGTERM, stop everything. Returns the exit status."""
        self.install_signals()
        code = 0
        try:
            try:
                self.start()
            except _Interrupted:
                self.say("interrupted while starting; stopping what was started", "yellow")
                return 0
            except UpError as exc:
                self.console.print(Text(f"portico up: {exc}", style="bold red"))
                code = 1
                return code
            except OSError as exc:   # a binary that cannot be run, a workdir that cannot be written
                self.console.print(Text(f"portico up: cannot start: {exc}", style="bold red"))
                code = 1
                return code
            self._starting = False
            if self._stop_signal is not None:
                return 0
            self.print_summary()
            code = self.supervise()
            return code
        finally:
            # Ctrl-C while stopping must not interrupt the cleanup
            for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                signal.signal(signum, signal.SIG_IGN)
            if self.parts:
                self.stop()
                self.say(f"stopped; logs and configs are in {self.workdir}")

    def start(self) -> None:
        opts = self.opts
        if opts.routers < 1:
            raise UpError("--routers must be at least 1")
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            hb = haproxy_binary()
            if not (os.path.isfile(hb) and os.access(hb, os.X_OK)):
                raise BinaryNotFound(f"haproxy binary {hb} is missing or not executable")
            if not opts.nats_url:
                from portico.stack.binaries import nats_server_binary
                nats_server_binary()
            if not opts.etcd_url:
                from portico.stack.binaries import etcd_binary
                etcd_binary()
        except BinaryNotFound as exc:
            raise UpError(str(exc)) from None
        for line in stop_leftovers(self.workdir / "state.json"):
            self.say(f"stopped a leftover of an earlier portico up: {line}", "yellow")
        self.plan = plan = plan_ports(opts)
        check_ports(plan)
        self.say(f"starting Portico in {self.workdir}")

        # NATS
        if opts.nats_url:
            self.nats_url = opts.nats_url
            hosts = _nats_hosts(opts.nats_url)
            if not any(_reachable(h["hostname"], h["port"]) for h in hosts):
                raise UpError(f"cannot reach NATS at {opts.nats_url}")
            self.say(f"using NATS at {opts.nats_url}")
        else:
            self._start_server("nats-server", "nats", plan.nats)
            self.nats_url = f"nats://127.0.0.1:{plan.nats}"

        # etcd
        if opts.etcd_url:
            self.etcd_urls = _etcd_endpoints(opts.etcd_url)
            ok = False
            for url in self.etcd_urls:
                parts = urllib.parse.urlsplit(url)
                ok = ok or _reachable(parts.hostname or "127.0.0.1", parts.port or 2379)
            if not ok:
                raise UpError(f"cannot reach etcd at {opts.etcd_url}")
            self.say(f"using etcd at {', '.join(self.etcd_urls)}")
        else:
            self._start_server("etcd", "etcd", plan.etcd)
            self.etcd_urls = [f"http://127.0.0.1:{plan.etcd}"]

        self._start_haproxy_and_confsync(hb)
        for i in range(1, opts.routers + 1):
            self._start_router(i)
        if opts.demo:
            self._start_demo()
        self.write_state()
        self._wait_ready()
        self.write_state()

    def _add(self, part: Part) -> Part:
        self.parts.append(part)
        self.write_state()     # at once: a portico up killed while starting leaves a list to clean up from
        return part

    def _start_server(self, name: str, kind: str, port: int) -> None:
        from portico.stack.servers import start_etcd, start_nats

        self.say(f"starting {name} on 127.0.0.1:{port}")
        try:
            if kind == "nats":
                server = start_nats(port=port, workdir=self.workdir / "nats")
                ports = {"client": port}
            else:
                shutil.rmtree(self.workdir / "etcd", ignore_errors=True)   # no stale router keys
                server = start_etcd(port=port, peer_port=self.plan.etcd_peer, workdir=self.workdir / "etcd")
                ports = {"client": port, "peer": self.plan.etcd_peer}
        except BinaryNotFound as exc:
            raise UpError(str(exc)) from None
        except (RuntimeError, TimeoutError) as exc:
            log = self.workdir / ("nats/nats-server.log" if kind == "nats" else "etcd/etcd.log")
            raise UpError(f"{name} did not start: {exc}\n{_tail(log)}") from None
        self._add(Part(name, kind, server.process, ports, critical=True))

    def _start_haproxy_and_confsync(self, hb: str) -> None:
        from portico.confsync.shipped import haproxy_env, haproxy_master_argv, install_haproxy_resource

        plan = self.plan
        run = self.workdir / "haproxy"
        run.mkdir(parents=True, exist_ok=True)
        cfg, sock, pidfile = run / "haproxy.cfg", run / "master.sock", run / "haproxy.pid"
        cfg.unlink(missing_ok=True)   # a stale file from a previous run would trip the empty guard
        sock.unlink(missing_ok=True)
        self.haproxy_cfg = cfg
        confdir = self.workdir / "confd"
        install_haproxy_resource(confdir, etcd_prefix=self.opts.prefix, haproxy_cfg=cfg, front_port=plan.front,
                                 stats_port=plan.haproxy_stats, haproxy_bin=hb, master_socket=sock,
                                 check_interval="1s", debounce=0.2, min_reload_interval=0.5,
                                 access_log=f"fd@{HAPROXY_ACCESS_LOG_FD} format raw local0", nbthread=1,
                                 send_proxy=True)   # client addresses reach the routers (enable_proxy)
        confsync = [sys.executable, "-m", "portico", "confsync", "--confdir", str(confdir)]
        for url in self.etcd_urls:
            confsync += ["--node", url]
        # 1. first render, without check/reload: HAProxy is not running yet
        self.say("confsync: first render of haproxy.cfg")
        try:
            first = subprocess.run([*confsync, "--onetime", "--sync-only"], capture_output=True, text=True,
                                   timeout=30)
        except subprocess.TimeoutExpired:
            raise UpError("confsync's first render did not finish within 30s") from None
        if first.returncode != 0 or not cfg.exists():
            out = "\n".join("    " + line for line in (first.stdout + first.stderr).strip().splitlines()[-8:])
            raise UpError(f"confsync's first render failed (exit {first.returncode}):\n{out}")
        # 2. HAProxy, master-worker
        self.say(f"starting HAProxy ({hb}) on 127.0.0.1:{plan.front}")
        haproxy = ManagedProcess("haproxy", haproxy_master_argv(hb, cfg, pidfile, sock), self.workdir / "haproxy.log",
                                 env=haproxy_env(hb),
                                 extra_logs={HAPROXY_ACCESS_LOG_FD: self.haproxy_access_log()}).start()
        self._add(Part("haproxy", "haproxy", haproxy, {"front": plan.front, "stats": plan.haproxy_stats},
                       critical=True))
        try:
            wait_for_port(plan.front, timeout=15, process=haproxy.popen)
        except (RuntimeError, TimeoutError) as exc:
            raise UpError(f"HAProxy did not start: {exc}\n{_tail(self.workdir / 'haproxy.log')}") from None
        # 3. confsync following etcd
        self.confsync_argv = [*confsync, "--watch", "--status-port", str(plan.confsync_status)]
        proc = ManagedProcess("confsync", self.confsync_argv, self.workdir / "confsync.log").start()
        self._add(Part("confsync", "confsync", proc, {"status": plan.confsync_status}))
        try:
            wait_for_port(plan.confsync_status, timeout=15, process=proc.popen)
        except (RuntimeError, TimeoutError) as exc:
            raise UpError(f"confsync did not start: {exc}\n{_tail(self.workdir / 'confsync.log')}") from None

    def haproxy_access_log(self) -> Path:
        return self.workdir / "haproxy" / "access.log"

    def router_config_path(self, i: int) -> Path:
        return self.workdir / f"router-{i}" / "gorouter.yml"

    def _write_router_config(self, i: int) -> Path:
        ports = self.plan.routers[i - 1]
        rdir = self.workdir / f"router-{i}"
        rdir.mkdir(parents=True, exist_ok=True)
        config = {
            "index": i,
            "status": {"host": "127.0.0.1", "port": ports.status, "user": ADMIN_USER, "pass": ADMIN_PASS,
                       "routes": {"port": ports.routes}},
            "nats": {"hosts": _nats_hosts(self.nats_url)},
            "port": ports.proxy,
            "listen_host": "127.0.0.1",
            "enable_proxy": True,     # HAProxy sends each client's address in a PROXY protocol header
            "start_response_delay_interval": "1s",
            "suspend_pruning_if_nats_unavailable": True,
            "droplet_stale_threshold": "120s",
            "prune_stale_droplets_interval": "30s",
            "etcd": {"endpoints": self.etcd_urls, "prefix": self.opts.prefix,
                     "lease_ttl": f"{self.opts.lease_ttl:g}s", "advertise_host": "127.0.0.1"},
            "access_log": {"file": str(rdir / "access.log")},
            # a router restarted by --restart comes back with its routes (docs/route-snapshot.md)
            "route_snapshot": {"file": str(rdir / "routes-snapshot.json")},
        }
        path = self.router_config_path(i)
        # JSON is valid YAML, and needs no YAML writer
        path.write_text(f"# router-{i}, written by portico up\n" + json.dumps(config, indent=2) + "\n")
        return path

    def _start_router(self, i: int) -> None:
        ports = self.plan.routers[i - 1]
        path = self._write_router_config(i)
        self.say(f"starting router-{i}: proxy 127.0.0.1:{ports.proxy}, status :{ports.status}, "
                 f"routes :{ports.routes}")
        proc = ManagedProcess(f"router-{i}", [sys.executable, "-m", "portico", "router", "-c", str(path)],
                              self.workdir / f"router-{i}" / "router.log").start()
        self._add(Part(f"router-{i}", "router", proc,
                       {"proxy": ports.proxy, "status": ports.status, "routes": ports.routes}))

    def _start_demo(self) -> None:
        demo_dir = self.workdir / "demo"
        demo_dir.mkdir(parents=True, exist_ok=True)
        routes = []
        for i, port in enumerate(self.plan.demo, 1):
            name = f"demo-{i}"
            self.say(f"starting {name} on 127.0.0.1:{port}")
            proc = ManagedProcess(name, [sys.executable, "-m", "portico.stack.demo_app", "--port", str(port),
                                         "--name", name], demo_dir / f"{name}.log").start()
            self._add(Part(name, "demo", proc, {"http": port}))
            routes.append({
                "name": name, "port": port, "uris": [DEMO_HOST], "registration_interval": "5s",
                "private_instance_id": name, "private_instance_index": str(i - 1),
                "health_check": {"name": f"{name}-up", "http_url": f"http://127.0.0.1:{port}/health",
                                 "timeout": "2s"},
            })
        for part in self.parts:
            if part.kind == "demo":
                try:
                    wait_for_port(part.ports["http"], timeout=10, process=part.proc.popen)
                except (RuntimeError, TimeoutError) as exc:
                    raise UpError(f"{part.name} did not start: {exc}\n{_tail(part.proc.log_path)}") from None
        registrar_cfg = {"nats": _split_urls(self.nats_url), "host": "127.0.0.1", "routes": routes}
        cfg_path = demo_dir / "registrar.yml"
        cfg_path.write_text("# demo routes, kept registered by `portico registrar`\n"
                            + json.dumps(registrar_cfg, indent=2) + "\n")
        self.say(f"starting registrar: {DEMO_HOST} -> demo-1, demo-2")
        proc = ManagedProcess("registrar", [sys.executable, "-m", "portico", "registrar", "-c", str(cfg_path)],
                              demo_dir / "registrar.log").start()
        self._add(Part("registrar", "registrar", proc))

    def _wait_ready(self) -> None:
        """Routers listening, HAProxy checking them all UP, and (--demo) the demo route answering."""
        deadline = time.monotonic() + self.opts.ready_timeout
        for part in self.parts:
            if part.kind != "router":
                continue
            for what in ("status", "proxy"):
                try:
                    wait_for_port(part.ports[what], timeout=max(1.0, deadline - time.monotonic()),
                                  process=part.proc.popen)
                except (RuntimeError, TimeoutError) as exc:
                    raise UpError(f"{part.name} did not start ({what} port): {exc}\n"
                                  f"{_tail(part.proc.log_path)}") from None
        self.say("waiting for HAProxy to check every router UP")
        want = set(range(1, len(self.plan.routers) + 1))
        while True:
            servers = self.haproxy_servers()
            up = {self.router_index(addr) for addr, status in (servers or {}).values() if status == "UP"}
            if want <= up:
                break
            self._check_exits_while_starting()
            if time.monotonic() > deadline:
                seen = ", ".join(f"router-{i}" for i in sorted(up - {None})) or "none"
                raise UpError(f"HAProxy does not see every router UP after {self.opts.ready_timeout:g}s "
                              f"(UP: {seen}); see {self.workdir / 'confsync.log'} and "
                              f"{self.workdir / 'haproxy.log'}")
            time.sleep(0.2)
        self._haproxy_servers = self.haproxy_servers()
        # confsync's start-up lines (first render, the routers joining) are summed up by "ready"; show what
        # happens from now on
        try:
            data = self.confsync_log().read_bytes()
            self._confsync_log_pos = data.rfind(b"\n") + 1
        except OSError:
            pass
        if self.opts.demo:
            while True:
                status, _ = self.front_get("/", DEMO_HOST)
                if status == 200:
                    break
                self._check_exits_while_starting()
                if time.monotonic() > deadline:
                    raise UpError(f"{DEMO_HOST} does not answer through the front after "
                                  f"{self.opts.ready_timeout:g}s (last status {status}); see "
                                  f"{self.workdir / 'demo' / 'registrar.log'}")
                time.sleep(0.2)

    def _check_exits_while_starting(self) -> None:
        for part in self.parts:
            if not part.proc.running():
                raise UpError(f"{part.name} exited while starting ({_exit_text(part.proc.popen.returncode)})\n"
                              f"{_tail(part.proc.log_path)}")

    # ---------------------------------------------------------------- probes
    def front_get(self, path: str, host: str, timeout: float = 2.0) -> tuple[int | None, str]:
        req = urllib.request.Request(f"http://127.0.0.1:{self.plan.front}{path}", headers={"Host": host})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, resp.read().decode(errors="replace")
        except urllib.error.HTTPError as exc:
            return exc.code, ""
        except (OSError, ValueError):
            return None, ""

    def haproxy_servers(self) -> dict[str, tuple[str, str]] | None:
        """server name -> (address, UP/DOWN/...) of backend portico_routers, asked from HAProxy's current
        worker through the master CLI (`show servers state` has the addresses the stats CSV hides); None when
        HAProxy does not answer."""
        from portico.confsync.shipped.haproxy_ctl import master_command

        try:
            text = master_command(str(self.haproxy_socket), "@1 show servers state portico_routers", 1.0)
        except OSError:
            return None
        columns: list[str] = []
        servers = {}
        for line in text.splitlines():
            if line.startswith("# be_id"):
                columns = line[2:].split()
                continue
            fields = line.split()
            if not columns or len(fields) < len(columns) or fields[1] != "portico_routers":
                continue
            row = dict(zip(columns, fields, strict=False))
            state = {"0": "DOWN", "1": "STARTING", "2": "UP", "3": "STOPPING"}.get(row["srv_op_state"], "?")
            if row.get("srv_admin_state", "0") not in ("0", ""):
                state = "MAINT"
            servers[row["srv_name"]] = (f"{row['srv_addr']}:{row['srv_port']}", state)
        if not columns:
            return None
        return servers

    def router_index(self, addr: str) -> int | None:
        """Which of our routers listens on addr (None: a router of someone else's, on a shared etcd)."""
        for i, ports in enumerate(self.plan.routers, 1):
            if addr == f"127.0.0.1:{ports.proxy}":
                return i
        return None

    def router_name_for(self, addr: str, svname: str) -> str:
        i = self.router_index(addr)
        return f"router-{i} ({addr})" if i is not None else f"router {addr} (id {svname}, not ours)"

    # ---------------------------------------------------------------- summary and state
    def write_state(self) -> None:
        plan = self.plan
        state = {
            "up_pid": os.getpid(),
            "up_identity": process_identity(os.getpid()),
            "workdir": str(self.workdir),
            "front": f"http://127.0.0.1:{plan.front}",
            "front_port": plan.front,
            "nats": self.nats_url,
            "etcd": self.etcd_urls,
            "etcd_prefix": self.opts.prefix,
            "haproxy_stats": f"http://127.0.0.1:{plan.haproxy_stats}/",
            "confsync_status": f"http://127.0.0.1:{plan.confsync_status}/status",
            "parts": {
                p.name: {"kind": p.kind, "pid": p.proc.popen.pid if p.proc.popen else None,
                         "identity": process_identity(p.proc.popen.pid) if p.proc.popen else None,
                         "running": p.proc.running(), "ports": p.ports, "log": str(p.proc.log_path),
                         "restarts": p.restarts}
                for p in self.parts
            },
            "routers": {f"router-{i}": str(self.router_config_path(i)) for i in range(1, len(plan.routers) + 1)},
        }
        path = self.workdir / "state.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(state, indent=2) + "\n")
        os.replace(tmp, path)
        remember(path)

    def print_summary(self) -> None:
        plan = self.plan
        c = self.console
        table = Table(title="Portico is up", title_justify="left", show_lines=False)
        table.add_column("part")
        table.add_column("pid", justify="right")
        table.add_column("listens on")
        table.add_column("log")
        if self.opts.nats_url:
            table.add_row("nats", "-", self.nats_url, "(existing server)")
        if self.opts.etcd_url:
            table.add_row("etcd", "-", ", ".join(self.etcd_urls), "(existing server)")
        for p in self.parts:
            try:
                log = str(p.proc.log_path.relative_to(self.workdir))
            except ValueError:
                log = str(p.proc.log_path)
            listens = ", ".join(f"{k} :{v}" for k, v in p.ports.items()) or "-"
            table.add_row(p.name, str(p.proc.pid), listens, log)
        c.print(table)
        front = f"127.0.0.1:{plan.front}"
        r1 = plan.routers[0]
        lines = [
            f"work dir      {self.workdir}   (state.json lists pids and ports; logs are here)",
            f"front         http://{front}/  HAProxy -> {len(plan.routers)} router(s), round-robin, "
            f"health-checked on /health",
            f"HAProxy stats http://127.0.0.1:{plan.haproxy_stats}/   confsync status "
            f"http://127.0.0.1:{plan.confsync_status}/status",
            f"NATS          {self.nats_url}     etcd {', '.join(self.etcd_urls)} "
            f"(routers under {self.opts.prefix}/routers)",
            "",
            "Try it:",
        ]
        if self.opts.demo:
            lines.append(f"  curl -H 'Host: {DEMO_HOST}' http://{front}/        # demo-1 and demo-2 take turns")
        lines += [
            f"  portico register   --nats {self.nats_url} --host 127.0.0.1 --port 9528 --uri test.a.com",
            f"  curl -H 'Host: test.a.com' http://{front}/",
            f"  portico routes     --url http://{ADMIN_USER}:{ADMIN_PASS}@127.0.0.1:{r1.routes}",
            f"  portico unregister --nats {self.nats_url} --host 127.0.0.1 --port 9528 --uri test.a.com",
            "  kill -9 <router pid>   # HAProxy routes around it"
            + ("; --restart brings it back" if not self.opts.restart else "; it is restarted"),
            "Ctrl-C stops everything.",
        ]
        for line in lines:
            c.print(Text(line))
        routers = ", ".join(self.router_name_for(addr, sv).split(" (")[0] for sv, (addr, st) in
                            sorted((self._haproxy_servers or {}).items()) if st == "UP")
        self.say(f"ready: HAProxy routes to {routers}", "bold green")

    # ---------------------------------------------------------------- supervision
    def supervise(self) -> int:
        while self._stop_signal is None:
            code = self._check_parts()
            if code is not None:
                return code
            self._tail_confsync()
            self._watch_haproxy()
            time.sleep(0.25)
        self.say(f"received {signal.Signals(self._stop_signal).name}: stopping", "yellow")
        return 0

    def _check_parts(self) -> int | None:
        now = time.monotonic()
        changed = False
        for part in self.parts:
            if part.restart_at is not None and now >= part.restart_at:
                part.restart_at = None
                part.reported_exit = False
                part.restarts += 1
                if part.kind == "router":
                    self._write_router_config(int(part.name.split("-")[1]))
                part.proc.start()
                part.started_at = time.monotonic()
                self.say(f"{part.name} restarted (pid {part.proc.pid})", "green")
                changed = True
                continue
            if part.reported_exit or part.proc.running():
                continue
            part.reported_exit = True
            changed = True
            code = _exit_text(part.proc.popen.returncode)
            restartable = self.opts.restart and part.kind in ("nats", "etcd")
            if part.critical and not restartable:
                self.say(f"{part.name} exited ({code}); the stack cannot work without it: stopping. "
                         f"Last lines of {part.proc.log_path}:\n{_tail(part.proc.log_path)}", "bold red")
                self.write_state()
                return 1
            if part.kind == "router":
                self.say(f"{part.name} exited ({code}); HAProxy will route around it "
                         f"(health check now, etcd lease expiry within {self.opts.lease_ttl:g}s)", "bold yellow")
            elif part.kind == "nats":
                self.say(f"{part.name} exited ({code}); routers keep their routes (pruning is suspended while "
                         f"NATS is down) and the registrar registers again once it is back", "bold yellow")
            elif part.kind == "etcd":
                self.say(f"{part.name} exited ({code}); HAProxy keeps its config and traffic flows; routers "
                         f"announce themselves again and confsync resumes its watch once it is back", "bold yellow")
            elif part.kind == "confsync":
                self.say(f"confsync exited ({code}); HAProxy keeps its last config but no longer follows etcd",
                         "bold yellow")
            else:
                self.say(f"{part.name} exited ({code})", "bold yellow")
            if self.opts.restart:
                # a part that keeps dying right after its start is restarted less and less often
                part.backoff = min(30.0, part.backoff * 2) if (
                    part.restarts and now - part.started_at < 10) else 1.0
                part.restart_at = now + part.backoff
                if part.backoff > 1.0:
                    self.say(f"{part.name} will be restarted in {part.backoff:g}s", "dim")
        if changed:
            self.write_state()
        return None

    def _watch_haproxy(self) -> None:
        servers = self.haproxy_servers()
        if servers is None:
            self._haproxy_misses += 1   # one miss is normal while a reload swaps workers
            if self._haproxy_misses == 8 and not self._stats_error_reported:
                self._stats_error_reported = True
                self.say(f"HAProxy's master CLI has not answered for 2s; see {self.workdir / 'haproxy.log'}",
                         "yellow")
            return
        self._stats_error_reported = False
        self._haproxy_misses = 0
        before = self._haproxy_servers or {}
        for sv, (addr, status) in servers.items():
            name = self.router_name_for(addr, sv)
            if sv not in before:
                self.say(f"HAProxy reloaded: {name} joined as server {sv} ({status})", "cyan")
            elif before[sv][1] != status:
                style = "green" if status == "UP" else "yellow"
                self.say(f"HAProxy: {name} is {status}" + (" (health check failed)" if status == "DOWN" else ""),
                         style)
        for sv, (addr, _status) in before.items():
            if sv not in servers:
                self.say(f"HAProxy reloaded: {self.router_name_for(addr, sv)} left (server {sv}; its etcd lease "
                         f"expired or it withdrew)", "cyan")
        self._haproxy_servers = servers

    def confsync_log(self) -> Path:
        return self.workdir / "confsync.log"

    def _tail_confsync(self) -> None:
        try:
            with open(self.confsync_log(), "rb") as f:
                f.seek(self._confsync_log_pos)
                data = f.read()
        except OSError:
            return
        if not data:
            return
        end = data.rfind(b"\n")
        if end < 0:
            return
        self._confsync_log_pos += end + 1
        for raw in data[: end + 1].decode(errors="replace").splitlines():
            message = _confsync_message(raw)
            if message:
                style = "red" if " ERROR " in raw else "yellow" if " WARN" in raw else "magenta"
                self.say(f"confsync: {message}", style)

    # ---------------------------------------------------------------- stop
    def stop(self) -> None:
        """Stop in reverse dependency order; parts of one stage are signalled together."""
        stages = [("registrar",), ("demo",), ("router",), ("confsync",), ("haproxy",), ("etcd",), ("nats",)]
        for kinds in stages:
            group = [p for p in self.parts if p.kind in kinds]
            for p in group:
                p.restart_at = None
                try:
                    p.proc.send_signal(signal.SIGTERM)
                except (ProcessLookupError, PermissionError):
                    pass
            for p in group:
                p.proc.stop(timeout=5.0)
        if self.parts and self.plan is not None:
            try:
                self.write_state()
            except OSError:
                pass


_CONFSYNC_SHOWN = ("has been updated", "reload_cmd", "unreachable", "unavailable", "refus", "failed", "error",
                   "compacted")


_LOG_PREFIX = re.compile(r"^\S+ \S+ \S+ (?:DEBUG|INFO|WARNING|WARN|ERROR|CRITICAL)\s+(.*)$")


def _confsync_message(line: str) -> str | None:
    """The part of a confsync log line worth showing, or None for routine lines."""
    text = line.strip()
    if not text:
        return None
    lowered = text.lower()
    if not any(word in lowered for word in _CONFSYNC_SHOWN) and " WARN" not in text and " ERROR" not in text:
        return None
    # "2026-01-01 10:00:00,000 confsync INFO haproxy: ..." -> "haproxy: ..."
    match = _LOG_PREFIX.match(text)
    if match:
        text = match.group(1)
    text = text.replace("target config ", "")
    if text.endswith("reload_cmd ok"):
        text = text[: -len("reload_cmd ok")] + "HAProxy reloaded (hitless)"
    return text


def run_up(opts: UpOptions) -> int:
    return Stack(opts).run()
