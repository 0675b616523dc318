"""`portico up` end to end: the real stack as a subprocess (nats-server, etcd, HAProxy, confsync, routers, demo apps).

The main test curls through HAProxy's front port, SIGKILLs a router while a client keeps sending GETs (one retry
each, as a client retrying idempotent requests does), checks the supervisor reports it and restarts it, then
SIGINTs `portico up` and checks that no process it started is left.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from polling import wait_for

from portico.stack.binaries import BinaryNotFound, haproxy_binary
from portico.stack.console import confsync_message as _confsync_message
from portico.stack.plan import UpOptions, plan_ports, port_problem

try:
    haproxy_binary()
    HAVE_HAPROXY = True
except BinaryNotFound:
    HAVE_HAPROXY = False

DEMO = "demo.portico.local"


def _get(port: int, host: str, path: str = "/", timeout: float = 3.0, auth: str | None = None) -> tuple[int, str]:
    headers = {"Host": host}
    if auth:
        import base64
        headers["Authorization"] = "Basic " + base64.b64encode(auth.encode()).decode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, ""
    except OSError:
        return 0, ""


def _tail(out: Path):
    """The end of `portico up`'s output, for a failed wait."""
    return lambda: out.read_text(errors="replace")[-3000:]


def _session_members(sids: set[int]) -> list[str]:
    """Processes (other than zombies) whose session id is one of `sids`: what a stopped part left behind."""
    left = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        state, sid = fields[0], int(fields[3])
        if sid in sids and state != "Z":
            left.append(f"{entry}: {stat[:120]}")
    return left


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2] != "Z"


def test_port_plan_defaults_and_base_port():
    plan = plan_ports(UpOptions(routers=2, demo=True))
    assert plan.front == 8080 and plan.nats == 4222 and plan.etcd == 2379
    assert [(r.proxy, r.status, r.routes) for r in plan.routers] == [(8100, 8101, 8102), (8110, 8111, 8112)]
    assert plan.confsync_status == 8099 and plan.haproxy_stats == 8098 and plan.demo == [9001, 9002]
    assert plan.dashboard == 8097
    moved = plan_ports(UpOptions(routers=1, base_port=20000, nats_url="nats://127.0.0.1:4222"))
    assert moved.nats is None and moved.routers[0].proxy == 20000
    auto = plan_ports(UpOptions(routers=3, demo=True, auto_ports=True))
    ports = [p for _, p in auto.owned()]
    assert len(ports) == len(set(ports))


def test_port_problem_names_a_taken_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert "already in use" in port_problem(port)


@pytest.mark.skipif(not HAVE_HAPROXY, reason="no haproxy binary")
def test_up_fails_early_when_the_front_port_is_taken(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        proc = subprocess.run([sys.executable, "-m", "portico", "up", "--ports", "auto", "--front-port", str(port),
                               "--workdir", str(tmp_path / "w")], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1
    assert f"HAProxy front: port {port} is already in use" in proc.stdout
    assert not (tmp_path / "w" / "state.json").exists()   # nothing was started


def test_up_fails_when_a_binary_is_missing(tmp_path):
    env = dict(os.environ, PORTICO_HAPROXY=str(tmp_path / "no-such-haproxy"))
    proc = subprocess.run([sys.executable, "-m", "portico", "up", "--ports", "auto", "--workdir", str(tmp_path / "w")],
                          capture_output=True, text=True, timeout=30, env=env)
    assert proc.returncode == 1
    assert "no-such-haproxy is missing or not executable" in proc.stdout


def test_confsync_lines_are_shortened():
    line = ("2026-01-01 10:00:00,000 confsync INFO haproxy: target config /run/haproxy.cfg has been updated")
    assert _confsync_message(line) == "haproxy: /run/haproxy.cfg has been updated"
    assert _confsync_message("2026-01-01 10:00:00,000 confsync INFO haproxy: reload_cmd ok") == \
        "haproxy: HAProxy reloaded (hitless)"
    assert _confsync_message("2026-01-01 10:00:00,000 confsync INFO etcd watch on /portico from revision 2") is None


@pytest.mark.skipif(not HAVE_HAPROXY, reason="no haproxy binary")
def _stack_state(url: str) -> dict:
    with urllib.request.urlopen(url + "state", timeout=10) as resp:
        return json.loads(resp.read())


def _check_stack_dashboard(url: str) -> None:
    def complete():
        s = _stack_state(url)
        routers_ok = len(s["routers"]) == 2 and all(
            r["reachable"] and r["haproxy_status"] == "UP" and r["router"]["phase"] == "healthy"
            and r["router"]["nats_connected"] for r in s["routers"])
        reloaded = any(c["last_reload"] for c in s["confsync"].get("resources", {}).values())
        traffic = routers_ok and any(r["now"]["requests_per_sec"] > 0 for r in s["routers"])  # the demo requests
        return s if traffic and reloaded and len(s["haproxy"]) >= 2 else None
    wait_for(complete, 20, 0.1, "the stack dashboard's state")
    with urllib.request.urlopen(url, timeout=10) as resp:
        page = resp.read().decode()
    assert resp.status == 200 and "HAProxy's view" in page and "/state" in page
    _stack_page_in_chromium(url)


def _stack_page_in_chromium(url: str) -> None:
    """The page itself, drawn by Debian's Chromium: both routers, HAProxy's servers, confsync's last reload."""
    from playwright.sync_api import sync_playwright

    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium", args=flags)
        try:
            page = browser.new_page()
            page.goto(url)
            page.wait_for_function("document.querySelectorAll('#routers tbody tr').length === 2 && "
                                   "document.querySelectorAll('#haproxy tbody tr').length >= 2", timeout=15000)
            routers = page.locator("#routers tbody").inner_text()
            assert "router-1" in routers and "router-2" in routers and "healthy" in routers
            assert "UP" in page.locator("#haproxy tbody").inner_text()
            confsync = page.locator("#confsync tbody").inner_text()
            assert "haproxy" in confsync and "never" not in confsync
        finally:
            browser.close()


def test_up_demo_end_to_end(tmp_path):
    workdir = tmp_path / "stack"
    out = tmp_path / "up.out"
    env = dict(os.environ, PYTHONUNBUFFERED="1", COLUMNS="200")
    with open(out, "wb") as f:
        up = subprocess.Popen([sys.executable, "-m", "portico", "up", "--demo", "--ports", "auto", "--restart",
                               "--lease-ttl", "3", "--workdir", str(workdir)],
                              stdout=f, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    sids: set[int] = set()
    try:
        wait_for(lambda: " ready: " in out.read_text(errors="replace") or up.poll() is not None, 60, 0.1, "ready",
                 detail=_tail(out))
        assert up.poll() is None, out.read_text()
        state = json.loads((workdir / "state.json").read_text())
        sids |= {p["pid"] for p in state["parts"].values()}
        front = state["front_port"]
        summary = out.read_text()
        assert f"curl -H 'Host: {DEMO}' http://127.0.0.1:{front}/" in summary
        assert "portico register" in summary

        # round-robin over both demo instances, through HAProxy and the routers
        bodies = {_get(front, DEMO)[1] for _ in range(8)}
        assert bodies == {"hello from demo-1\n", "hello from demo-2\n"}, bodies
        routes_port = state["parts"]["router-1"]["ports"]["routes"]
        status, text = _get(routes_port, "x", "/routes", auth="admin:admin")
        assert status == 200 and DEMO in json.loads(text)

        # the stack's dashboard: printed, and showing every router, HAProxy's view and confsync's last reload
        assert state["dashboard"] in summary and f"@127.0.0.1:{routes_port}/dashboard" in summary
        _check_stack_dashboard(state["dashboard"])

        # kill a router: HAProxy retries on another one, so a client never sees a failure
        router_pid = state["parts"]["router-1"]["pid"]
        os.kill(router_pid, signal.SIGKILL)
        failures = []
        for i in range(100):
            status, body = _get(front, DEMO)
            if status != 200 or not body.startswith("hello from demo-"):
                failures.append((i, status))
            time.sleep(0.03)
        assert failures == []
        wait_for(lambda: "router-1 exited (code -9, SIGKILL)" in out.read_text(), 10, 0.1, "the exit report",
                 detail=_tail(out))
        wait_for(lambda: "router-1 restarted" in out.read_text(), 10, 0.1, "the restart",
                 detail=_tail(out))
        # Routers announce under their address, so a router back within its lease keeps its HAProxy server
        # (DOWN, then UP); one back after the lease expired leaves and joins again. Either way HAProxy has it.
        wait_for(lambda: any("router-1 (127.0.0.1:" in line and ("is UP" in line or "joined" in line)
                              for line in out.read_text().split("router-1 restarted")[1].splitlines()),
                 20, 0.1, "HAProxy taking it back", detail=_tail(out))
        state = json.loads((workdir / "state.json").read_text())
        assert state["parts"]["router-1"]["pid"] != router_pid
        sids |= {p["pid"] for p in state["parts"].values()}
        assert all(_get(front, DEMO)[0] == 200 for _ in range(10))

        # HAProxy's access log in the work dir: one line per request, with its termination state
        access = (workdir / "haproxy" / "access.log").read_text(errors="replace")
        assert any(" portico_http portico_routers/" in line and " 200 " in line and " ---- " in line
                   for line in access.splitlines()), access[-2000:]

        # with --restart, NATS and etcd come back too, and the stack goes on serving
        for part, kind in (("nats-server", "nats"), ("etcd", "etcd")):
            os.kill(state["parts"][part]["pid"], signal.SIGKILL)
            wait_for(lambda p=part: f"{p} restarted" in out.read_text(), 20, 0.1, f"{kind} restarted",
                 detail=_tail(out))
            assert up.poll() is None, out.read_text()[-3000:]
            assert all(_get(front, DEMO)[0] == 200 for _ in range(10))
        state = json.loads((workdir / "state.json").read_text())
        sids |= {p["pid"] for p in state["parts"].values()}

        # Ctrl-C: everything stops, exit 0, nothing left
        up.send_signal(signal.SIGINT)
        assert up.wait(30) == 0, out.read_text()[-3000:]
        assert "received SIGINT: stopping" in out.read_text()
        assert [pid for pid in sids if _alive(pid)] == []
        assert _session_members(sids) == []
    finally:
        if up.poll() is None:
            up.send_signal(signal.SIGTERM)
            try:
                up.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(up.pid, signal.SIGKILL)
        for sid in sids:   # never leave a stack behind, even when an assertion failed
            try:
                os.killpg(sid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def test_restart_policy_backs_off_quick_failures_and_workers_give_up():
    from portico.stack.supervisor import RestartPolicy
    from portico.workers import WORKER_RESTARTS

    up = RestartPolicy()
    assert up.next_delay(uptime=100, restarts=0, previous=0) == 1.0
    assert [up.next_delay(3, n, prev) for n, prev in ((1, 1.0), (2, 2.0), (3, 16.0), (4, 30.0))] == [2, 4, 30, 30]
    assert up.next_delay(uptime=60, restarts=4, previous=30.0) == 1.0   # ran long enough: back to the start
    assert WORKER_RESTARTS.next_delay(uptime=0.2, restarts=0, previous=0) == 0.0   # first crash: at once
    assert WORKER_RESTARTS.next_delay(uptime=0.2, restarts=1, previous=0) is None  # again right away: give up


def test_haproxy_view_reads_show_servers_state_and_diffs_it():
    from portico.confsync.shipped.haproxy_view import ServerState, changes, parse_servers_state

    header = ("1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight "
              "srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state "
              "srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port\n")
    text = header + ("3 portico_routers 1 r1 127.0.0.1 2 0 1 1 5 6 3 4 6 0 0 0 - 8110\n"
                     "3 portico_routers 2 r2 127.0.0.1 0 0 1 1 5 6 3 0 6 0 0 0 - 8120\n"
                     "4 other 1 x 10.0.0.1 2 0 1 1 5 6 3 4 6 0 0 0 - 80\n")
    now = parse_servers_state(text)
    assert now == {"r1": ServerState("127.0.0.1:8110", "UP"), "r2": ServerState("127.0.0.1:8120", "DOWN")}
    assert parse_servers_state("Unknown command\n") is None
    before = {"r1": ServerState("127.0.0.1:8110", "DOWN"), "r0": ServerState("127.0.0.1:8100", "UP")}
    assert sorted((c.name, c.what, c.status) for c in changes(before, now)) == [
        ("r0", "left", ""), ("r1", "status", "UP"), ("r2", "joined", "DOWN")]


def test_supervisor_reports_exits_restarts_by_policy_and_stops_in_stages(tmp_path):
    from portico.stack.processes import ManagedProcess
    from portico.stack.supervisor import Part, PartKind, Supervisor

    def part(name: str, kind: PartKind, code: str, critical: bool = False) -> Part:
        proc = ManagedProcess(name, [sys.executable, "-c", code], tmp_path / f"{name}.log").start()
        return Part(name, kind, proc, critical=critical, index=1)

    sup = Supervisor(restart=True)
    quitter = sup.add(part("router-1", PartKind.ROUTER, "import sys; sys.exit(3)"))
    sleeper = sup.add(part("registrar", PartKind.REGISTRAR, "import time; time.sleep(60)"))
    haproxy = sup.add(part("haproxy", PartKind.HAPROXY, "import sys; sys.exit(1)", critical=True))
    wait_for(lambda: not quitter.proc.running() and not haproxy.proc.running(), 10, 0.05, "both exits")
    now = time.monotonic()
    assert sorted(p.name for p in sup.new_exits(now)) == ["haproxy", "router-1"]
    assert sup.new_exits(now) == []                        # each exit is reported once
    assert quitter.restart_at == now + 1.0 and haproxy.restart_at is None   # HAProxy is not restartable
    rewritten = []
    assert sup.due_restarts(now + 0.5, rewritten.append) == []
    assert sup.due_restarts(now + 1.0, rewritten.append) == [quitter] == rewritten
    assert quitter.restarts == 1
    sup.stop(timeout=5)
    assert not sleeper.proc.running() and sleeper.returncode is not None


def test_a_part_that_dies_before_its_port_opens_fails_with_its_log_tail(tmp_path):
    from portico.stack.processes import ManagedProcess, free_port
    from portico.stack.supervisor import Part, PartKind, StartFailed

    proc = ManagedProcess("demo-1", [sys.executable, "-c", "import sys; print('boom: no config'); sys.exit(2)"],
                          tmp_path / "demo.log").start()
    part = Part("demo-1", PartKind.DEMO, proc, {"http": free_port()}, index=1)
    with pytest.raises(StartFailed) as info:
        part.wait_for_port("http", timeout=10)
    assert str(info.value).startswith("demo-1 did not start: process exited with code 2")
    assert "boom: no config" in str(info.value)
