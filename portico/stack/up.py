"""`portico up`: the whole architecture on one machine, started, supervised and stopped as one.

    client ──▶ HAProxy (front port) ──▶ routers ×N ──▶ apps
                  ▲                       │  ▲
                  │ reload                │  └── router.register (NATS) ◀── portico register / registrar
      portico confsync ◀── watch ── etcd ◀┘ (each router announces itself under a lease)

Order of start: nats-server, etcd (unless --nats / --etcd point at existing ones), confsync's first render,
HAProxy (master-worker), confsync --watch, the routers, then (--demo) two demo apps and a registrar that keeps
them registered. Stop is the reverse. Every child runs in its own process group (ManagedProcess), so stopping
a part also stops whatever it forked, and nothing outlives `portico up`.

This module keeps the start order and the readiness checks; the port plan (plan.py), the supervisor
(supervisor.py), the config files (configs.py), HAProxy's runtime view (confsync/shipped/haproxy_view.py) and
the console (console.py) each live in their own module. While running, one readable line is printed per
event: a part that exits, HAProxy marking a router UP or DOWN, confsync rewriting haproxy.cfg and reloading
HAProxy. `state.json` in the work directory lists every part's pid, ports and log file.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from rich.console import Console

from portico.confsync.shipped.haproxy_view import ServerState, changes, servers_state
from portico.stack import configs
from portico.stack.binaries import BinaryNotFound, stack_binaries
from portico.stack.console import ConfsyncLogTail, StackConsole, exit_line, haproxy_change_line, part_rows, try_it_lines
from portico.stack.dashboard import RouterLink, StackDashboard
from portico.stack.leftovers import stop_leftovers
from portico.stack.plan import (
    PortPlan,
    UpError,
    UpOptions,
    check_existing_etcd,
    check_existing_nats,
    check_ports,
    plan_ports,
)
from portico.stack.processes import ManagedProcess
from portico.stack.supervisor import Part, PartKind, StartFailed, Supervisor, exit_text, log_tail

# HAProxy writes its access log (one line per request, with its termination state) to this inherited fd, a file
# in the work dir. One thread: with more, HAProxy drops log lines when two threads log at once.
HAPROXY_ACCESS_LOG_FD = 3


class _Interrupted(BaseException):
    """SIGINT/SIGTERM while starting."""


class Stack:
    def __init__(self, opts: UpOptions, console: Console | None = None) -> None:
        self.opts = opts
        self.out = StackConsole(console)
        self.supervisor = Supervisor(restart=opts.restart)
        # state.json at once when a part starts: a portico up killed while starting leaves a list to clean up
        self.supervisor.on_change = self.write_state
        self.workdir = Path(opts.workdir or tempfile.mkdtemp(prefix="portico-up-")).resolve()
        self.plan: PortPlan | None = None
        self.nats_url = ""
        self.etcd_urls: list[str] = []
        self._stop_signal: int | None = None
        self._starting = True
        self.haproxy_socket = self.workdir / "haproxy" / "master.sock"
        self._haproxy_servers: dict[str, ServerState] | None = None
        self._haproxy_misses = 0
        self._stats_error_reported = False
        self.dashboard: StackDashboard | None = None
        self.confsync_log = ConfsyncLogTail(self.workdir / "confsync.log")

    @property
    def parts(self) -> list[Part]:
        return self.supervisor.parts

    @property
    def ports(self) -> PortPlan:
        assert self.plan is not None, "the port plan is made by start()"
        return self.plan

    def say(self, message: str, style: str = "") -> None:
        self.out.say(message, style)

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
        try:
            try:
                self.start()
            except _Interrupted:
                self.say("interrupted while starting; stopping what was started", "yellow")
                return 0
            except (UpError, StartFailed) as exc:
                self.out.error(f"portico up: {exc}")
                return 1
            except OSError as exc:   # a binary that cannot be run, a workdir that cannot be written
                self.out.error(f"portico up: cannot start: {exc}")
                return 1
            self._starting = False
            if self._stop_signal is not None:
                return 0
            self._start_dashboard()
            self.print_summary()
            return self.supervise()
        finally:
            # Ctrl-C while stopping must not interrupt the cleanup
            for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                signal.signal(signum, signal.SIG_IGN)
            if self.dashboard is not None:
                self.dashboard.stop()
            if self.parts:
                self.stop()
                self.say(f"stopped; logs and configs are in {self.workdir}")

    def start(self) -> None:
        opts = self.opts
        if opts.routers < 1:
            raise UpError("--routers must be at least 1")
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            hb = stack_binaries(nats=not opts.nats_url, etcd=not opts.etcd_url)
        except BinaryNotFound as exc:
            raise UpError(str(exc)) from None
        for line in stop_leftovers(self.workdir / "state.json"):
            self.say(f"stopped a leftover of an earlier portico up: {line}", "yellow")
        self.plan = plan = plan_ports(opts)
        check_ports(plan)
        self.say(f"starting Portico in {self.workdir}")

        # NATS
        if opts.nats_url:
            check_existing_nats(opts.nats_url)
            self.nats_url = opts.nats_url
            self.say(f"using NATS at {opts.nats_url}")
        else:
            assert plan.nats is not None
            self._start_server(PartKind.NATS, plan.nats)
            self.nats_url = f"nats://127.0.0.1:{plan.nats}"

        # etcd
        if opts.etcd_url:
            self.etcd_urls = check_existing_etcd(opts.etcd_url)
            self.say(f"using etcd at {', '.join(self.etcd_urls)}")
        else:
            assert plan.etcd is not None
            self._start_server(PartKind.ETCD, plan.etcd)
            self.etcd_urls = [f"http://127.0.0.1:{plan.etcd}"]

        self._start_haproxy_and_confsync(hb)
        for i in range(1, opts.routers + 1):
            self._start_router(i)
        if opts.demo:
            self._start_demo()
        self.write_state()
        self._wait_ready()
        self.write_state()

    def _start_server(self, kind: PartKind, port: int) -> None:
        from portico.stack.servers import start_etcd, start_nats

        name = "nats-server" if kind is PartKind.NATS else "etcd"
        self.say(f"starting {name} on 127.0.0.1:{port}")
        try:
            if kind is PartKind.NATS:
                server = start_nats(port=port, workdir=self.workdir / "nats")
                ports = {"client": port}
            else:
                peer = self.ports.etcd_peer
                assert peer is not None
                shutil.rmtree(self.workdir / "etcd", ignore_errors=True)   # no stale router keys
                server = start_etcd(port=port, peer_port=peer, workdir=self.workdir / "etcd")
                ports = {"client": port, "peer": peer}
        except BinaryNotFound as exc:
            raise UpError(str(exc)) from None
        except (RuntimeError, TimeoutError) as exc:
            log = self.workdir / ("nats/nats-server.log" if kind is PartKind.NATS else "etcd/etcd.log")
            raise UpError(f"{name} did not start: {exc}\n{log_tail(log)}") from None
        self.supervisor.add(Part(name, kind, server.process, ports, critical=True))

    def _start_haproxy_and_confsync(self, hb: str) -> None:
        from portico.confsync.shipped import haproxy_env, haproxy_master_argv, install_haproxy_resource

        plan = self.ports
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
        self.supervisor.add(Part("haproxy", PartKind.HAPROXY, haproxy,
                                 {"front": plan.front, "stats": plan.haproxy_stats}, critical=True),
                            ).wait_for_port("front", timeout=15, label="HAProxy")
        # 3. confsync following etcd
        self.confsync_argv = [*confsync, "--watch", "--status-port", str(plan.confsync_status)]
        proc = ManagedProcess("confsync", self.confsync_argv, self.confsync_log.path).start()
        self.supervisor.add(Part("confsync", PartKind.CONFSYNC, proc, {"status": plan.confsync_status})
                            ).wait_for_port("status", timeout=15)

    def haproxy_access_log(self) -> Path:
        return self.workdir / "haproxy" / "access.log"

    def router_config_path(self, i: int) -> Path:
        return self.workdir / f"router-{i}" / "gorouter.yml"

    def _write_router_config(self, i: int) -> Path:
        setup = configs.RouterSetup(self.nats_url, self.etcd_urls, self.opts.prefix, self.opts.lease_ttl)
        return configs.write_router_config(self.router_config_path(i), i, self.ports.routers[i - 1], setup)

    def _start_router(self, i: int) -> None:
        ports = self.ports.routers[i - 1]
        path = self._write_router_config(i)
        self.say(f"starting router-{i}: proxy 127.0.0.1:{ports.proxy}, status :{ports.status}, "
                 f"routes :{ports.routes}")
        proc = ManagedProcess(f"router-{i}", [sys.executable, "-m", "portico", "router", "-c", str(path)],
                              self.workdir / f"router-{i}" / "router.log").start()
        self.supervisor.add(Part(f"router-{i}", PartKind.ROUTER, proc,
                                 {"proxy": ports.proxy, "status": ports.status, "routes": ports.routes}, index=i))

    def _start_demo(self) -> None:
        demo_dir = self.workdir / "demo"
        demo_dir.mkdir(parents=True, exist_ok=True)
        routes = []
        for i, port in enumerate(self.ports.demo, 1):
            name = f"demo-{i}"
            self.say(f"starting {name} on 127.0.0.1:{port}")
            proc = ManagedProcess(name, [sys.executable, "-m", "portico.stack.demo_app", "--port", str(port),
                                         "--name", name], demo_dir / f"{name}.log").start()
            self.supervisor.add(Part(name, PartKind.DEMO, proc, {"http": port}, index=i))
            routes.append(configs.demo_route(i, port))
        for part in self.supervisor.of_kind(PartKind.DEMO):
            part.wait_for_port("http", timeout=10)
        cfg_path = configs.write_registrar_config(demo_dir / "registrar.yml", self.nats_url, routes)
        self.say(f"starting registrar: {configs.DEMO_HOST} -> demo-1, demo-2")
        proc = ManagedProcess("registrar", [sys.executable, "-m", "portico", "registrar", "-c", str(cfg_path)],
                              demo_dir / "registrar.log").start()
        self.supervisor.add(Part("registrar", PartKind.REGISTRAR, proc))

    def _wait_ready(self) -> None:
        """Routers listening, HAProxy checking them all UP, and (--demo) the demo route answering."""
        deadline = time.monotonic() + self.opts.ready_timeout
        for part in self.supervisor.of_kind(PartKind.ROUTER):
            for what in ("status", "proxy"):
                part.wait_for_port(what, timeout=max(1.0, deadline - time.monotonic()),
                                   label=f"{part.name} ({what} port)")
        self.say("waiting for HAProxy to check every router UP")
        want = set(range(1, len(self.ports.routers) + 1))
        while True:
            servers = self.haproxy_servers()
            up = {self.ports.router_index(s.address) for s in (servers or {}).values() if s.status == "UP"}
            if want <= up:
                break
            self._check_exits_while_starting()
            if time.monotonic() > deadline:
                seen = ", ".join(f"router-{i}" for i in sorted(i for i in up if i is not None)) or "none"
                raise UpError(f"HAProxy does not see every router UP after {self.opts.ready_timeout:g}s "
                              f"(UP: {seen}); see {self.confsync_log.path} and {self.workdir / 'haproxy.log'}")
            time.sleep(0.2)
        self._haproxy_servers = self.haproxy_servers()
        self.confsync_log.skip_to_end()
        if self.opts.demo:
            while True:
                status, _ = self.front_get("/", configs.DEMO_HOST)
                if status == 200:
                    break
                self._check_exits_while_starting()
                if time.monotonic() > deadline:
                    raise UpError(f"{configs.DEMO_HOST} does not answer through the front after "
                                  f"{self.opts.ready_timeout:g}s (last status {status}); see "
                                  f"{self.workdir / 'demo' / 'registrar.log'}")
                time.sleep(0.2)

    def _check_exits_while_starting(self) -> None:
        part = self.supervisor.first_exited()
        if part is not None:
            raise UpError(f"{part.name} exited while starting ({exit_text(part.returncode)})\n"
                          f"{log_tail(part.proc.log_path)}")

    # ---------------------------------------------------------------- probes
    def front_get(self, path: str, host: str, timeout: float = 2.0) -> tuple[int | None, str]:
        req = urllib.request.Request(f"http://127.0.0.1:{self.ports.front}{path}", headers={"Host": host})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, resp.read().decode(errors="replace")
        except urllib.error.HTTPError as exc:
            return exc.code, ""
        except (OSError, ValueError):
            return None, ""

    def haproxy_servers(self) -> dict[str, ServerState] | None:
        """The routers' backend as HAProxy's current worker sees it; None when HAProxy does not answer."""
        return servers_state(str(self.haproxy_socket))

    def router_name_for(self, addr: str, svname: str) -> str:
        i = self.ports.router_index(addr)
        return f"router-{i} ({addr})" if i is not None else f"router {addr} (id {svname}, not ours)"

    def _start_dashboard(self) -> None:
        """The stack's page: a failure to serve it is reported, and the stack runs on without it."""
        plan = self.ports

        def routers() -> list[RouterLink]:
            return [RouterLink(p.name, p.ports["proxy"], p.ports["routes"]) for p in self.parts
                    if p.kind == PartKind.ROUTER]

        def haproxy() -> dict[str, tuple[str, str]]:
            return {sv: (s.address, s.status) for sv, s in (self._haproxy_servers or {}).items()}

        self.dashboard = StackDashboard(plan.dashboard, routers, haproxy, plan.confsync_status, configs.ADMIN_USER,
                                        configs.ADMIN_PASS).start_or_report(self.say)

    # ---------------------------------------------------------------- summary and state
    def write_state(self) -> None:
        """state.json: every part's pid, ports and log, for people and for tests."""
        configs.write_state_file(self.workdir, self.ports, self.nats_url, self.etcd_urls, self.opts.prefix, self.parts,
                         [self.router_config_path(i) for i in range(1, len(self.ports.routers) + 1)])

    def print_summary(self) -> None:
        existing = [("nats", self.nats_url)] if self.opts.nats_url else []
        existing += [("etcd", ", ".join(self.etcd_urls))] if self.opts.etcd_url else []
        self.out.table("Portico is up", ("part", "pid", "listens on", "log"),
                       part_rows(self.parts, self.workdir, existing))
        self.out.lines(try_it_lines(self.workdir, self.ports, self.nats_url, self.etcd_urls, self.opts))
        routers = ", ".join(self.router_name_for(s.address, sv).split(" (")[0] for sv, s in
                            sorted((self._haproxy_servers or {}).items()) if s.status == "UP")
        self.say(f"ready: HAProxy routes to {routers}", "bold green")

    # ---------------------------------------------------------------- supervision
    def supervise(self) -> int:
        while self._stop_signal is None:
            code = self._check_parts()
            if code is not None:
                return code
            for message, style in self.confsync_log.new_messages():
                self.say(f"confsync: {message}", style)
            self._watch_haproxy()
            time.sleep(0.25)
        self.say(f"received {signal.Signals(self._stop_signal).name}: stopping", "yellow")
        return 0

    def _before_restart(self, part: Part) -> None:
        if part.kind is PartKind.ROUTER:
            self._write_router_config(part.index)

    def _check_parts(self) -> int | None:
        now = time.monotonic()
        restarted = self.supervisor.due_restarts(now, self._before_restart)
        for part in restarted:
            self.say(f"{part.name} restarted (pid {part.pid})", "green")
        exited = self.supervisor.new_exits(now)
        for part in exited:
            self.say(*exit_line(part, self.opts.lease_ttl))
            if part.critical and part.restart_at is None:
                self.write_state()
                return 1
            if part.restart_at is not None and part.delay > 1.0:
                self.say(f"{part.name} will be restarted in {part.delay:g}s", "dim")
        if restarted or exited:
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
        for change in changes(self._haproxy_servers or {}, servers):
            self.say(*haproxy_change_line(change, self.router_name_for(change.address, change.name)))
        self._haproxy_servers = servers

    # ---------------------------------------------------------------- stop
    def stop(self) -> None:
        """Stop in reverse dependency order; parts of one stage are signalled together."""
        self.supervisor.stop()
        if self.parts and self.plan is not None:
            try:
                self.write_state()
            except OSError:
                pass


def run_up(opts: UpOptions) -> int:
    return Stack(opts).run()
