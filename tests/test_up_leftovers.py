"""`portico up` killed with SIGKILL leaves nothing running, and the next one stops what an old state.json lists.

Real processes throughout: a real `portico up` (nats-server, etcd, HAProxy, confsync, routers) killed with
SIGKILL, and real long-running children standing in for leftovers of a crashed stack.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from polling import wait_for

from portico.stack.binaries import BinaryNotFound, haproxy_binary
from portico.stack.leftovers import leftovers, pointer_path, process_identity, stop_leftovers
from portico.stack.processes import ManagedProcess

try:
    haproxy_binary()
    HAVE_HAPROXY = True
except BinaryNotFound:
    HAVE_HAPROXY = False

SLEEPER = [sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
           "print('ignoring SIGTERM', flush=True); time.sleep(300)"]


def _start_sleeper(name: str, log: Path) -> ManagedProcess:
    """A process that ignores SIGTERM, returned once it does (a SIGTERM during Python's start would kill it)."""
    proc = ManagedProcess(name, SLEEPER, log, die_with_parent=False).start()
    wait_for(lambda: "ignoring SIGTERM" in proc.output() or proc.popen.poll() is not None, timeout=60,
             message=f"{name} ignoring SIGTERM")
    assert proc.popen.poll() is None, proc.output()
    return proc


def _alive(pid: int) -> bool:
    return process_identity(pid) is not None


def test_a_child_dies_with_its_parent_even_on_sigkill(tmp_path: Path) -> None:
    # a parent (python) that starts a ManagedProcess child, reports its pid, then waits to be killed
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from portico.stack.processes import ManagedProcess\n"
        f"p = ManagedProcess('child', [sys.executable, '-c', 'import time; time.sleep(300)'], "
        f"Path({str(tmp_path)!r}) / 'child.log').start()\n"
        "print(p.pid, flush=True)\n"
        "time.sleep(300)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        child = int(parent.stdout.readline())
        assert _alive(child)
        parent.kill()
        parent.wait(10)
        wait_for(lambda: not _alive(child), timeout=30, message="the child died with its parent")
    finally:
        parent.kill()


def _session_members(sids: list[int]) -> list[int]:
    """Live processes in these sessions (each part leads one): what a part's own children would be."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rfind(")") + 2:].split()
            if int(fields[3]) in sids and fields[0] != "Z":
                found.append(int(entry))
    return found


def _fake_state(path: Path, up_pid: int | None, parts: dict[str, int]) -> None:
    path.write_text(json.dumps({
        "up_pid": up_pid, "up_identity": process_identity(up_pid) if up_pid else "1",
        "parts": {name: {"pid": pid, "identity": process_identity(pid)} for name, pid in parts.items()},
    }))


def test_leftovers_of_a_dead_up_are_stopped_even_when_they_ignore_sigterm(tmp_path: Path) -> None:
    stubborn = _start_sleeper("stubborn", tmp_path / "s.log")
    polite = ManagedProcess("polite", [sys.executable, "-c", "import time; time.sleep(300)"], tmp_path / "p.log",
                            die_with_parent=False).start()
    try:
        dead_up = subprocess.Popen([sys.executable, "-c", "pass"])
        dead_up.wait()
        state = tmp_path / "state.json"
        _fake_state(state, dead_up.pid, {"nats": stubborn.pid, "router-1": polite.pid})
        assert sorted(leftovers(json.loads(state.read_text()))) == sorted(
            [("nats", stubborn.pid), ("router-1", polite.pid)])
        stopped = stop_leftovers(state, timeout=1.0)
        assert len(stopped) == 2 and all(str(state) in line for line in stopped)
        wait_for(lambda: stubborn.popen.poll() is not None and polite.popen.poll() is not None, timeout=10,
                 message="both leftovers stopped")
        assert stubborn.popen.returncode == -signal.SIGKILL and polite.popen.returncode == -signal.SIGTERM
    finally:
        stubborn.stop()
        polite.stop()


def test_parts_of_a_running_up_and_reused_pids_are_left_alone(tmp_path: Path) -> None:
    child = _start_sleeper("child", tmp_path / "c.log")
    try:
        live_up = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
        try:
            state = tmp_path / "state.json"
            _fake_state(state, live_up.pid, {"nats": child.pid})
            assert stop_leftovers(state) == []           # its portico up still runs
        finally:
            live_up.kill()
            live_up.wait()
        data = json.loads(state.read_text())
        data["parts"]["nats"]["identity"] = "12345"      # same pid, another process (a reused pid)
        state.write_text(json.dumps(data))
        assert stop_leftovers(state) == []
        assert child.running()
    finally:
        child.stop(signum=signal.SIGKILL)   # it ignores SIGTERM


@pytest.mark.skipif(not HAVE_HAPROXY, reason="haproxy not installed")
@pytest.mark.timeout(400)   # two `portico up` starts (up to 180 s each on a loaded machine)
def test_sigkilled_up_leaves_no_children_and_the_next_up_cleans_the_rest(tmp_path: Path) -> None:
    workdir = tmp_path / "stack"
    out = tmp_path / "up.out"
    env = dict(os.environ, PYTHONUNBUFFERED="1", COLUMNS="200")
    argv = [sys.executable, "-m", "portico", "up", "--ports", "auto", "--workdir", str(workdir)]
    with open(out, "wb") as f:
        up = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    pids: list[int] = []
    leftover: ManagedProcess | None = None
    try:
        wait_for(lambda: " ready: " in out.read_text(errors="replace") or up.poll() is not None, timeout=180,
                 interval=0.2, message="portico up ready")
        assert up.poll() is None, out.read_text()
        state = json.loads((workdir / "state.json").read_text())
        pids = [p["pid"] for p in state["parts"].values()]
        assert len(pids) >= 5 and all(_alive(pid) for pid in pids)
        assert json.loads(pointer_path().read_text())["state"] == str(workdir / "state.json")

        up.kill()                                     # SIGKILL: no chance to stop anything itself
        up.wait(10)
        wait_for(lambda: not _session_members(pids), timeout=30, interval=0.2,
                 message="every part of the killed stack, and their children (HAProxy's workers), gone")

        # a leftover that would survive (it ignores SIGTERM and has no parent-death signal), listed in the old
        # state.json as a part of the dead stack: the next portico up must stop it before starting
        leftover = _start_sleeper("leftover", tmp_path / "leftover.log")
        state["parts"]["nats"] = {"pid": leftover.pid, "identity": process_identity(leftover.pid)}
        (workdir / "state.json").write_text(json.dumps(state))
        second = subprocess.run([*argv, "--help"], capture_output=True, text=True, env=env, timeout=60)
        assert second.returncode == 0 and leftover.running()     # --help starts nothing and stops nothing
        with open(out, "wb") as f:
            up = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        wait_for(lambda: " ready: " in out.read_text(errors="replace") or up.poll() is not None, timeout=180,
                 interval=0.2, message="second portico up ready")
        text = out.read_text()
        assert f"stopped a leftover of an earlier portico up: nats (pid {leftover.pid}" in text, text
        assert leftover.popen.poll() is not None
        pids = [p["pid"] for p in json.loads((workdir / "state.json").read_text())["parts"].values()]
        up.send_signal(signal.SIGINT)
        assert up.wait(30) == 0
    finally:
        if up.poll() is None:
            up.kill()
        if leftover is not None:
            leftover.stop()
        for pid in pids:
            if _alive(pid):
                os.killpg(pid, signal.SIGKILL)
