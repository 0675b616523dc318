"""`portico status` and `portico top` against a real router with real traffic: JSON for scripts, rich tables
in a real pty, and top's live view in a real tmux terminal (redrawn with new traffic, stopped by Ctrl-C)."""

from __future__ import annotations

import json
import os
import pty
import select
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from polling import wait_for
from support import PASS, USER, dead_port, get, unique_host

PORTICO = [sys.executable, "-m", "portico"]


@pytest.fixture(scope="module")
def scene(router_factory, backend):
    router = router_factory()
    busy, broken = unique_host("busy"), unique_host("broken")
    router.register(busy, backend.port)
    router.register(broken, dead_port())
    for _ in range(10):
        assert get(router.port, busy, "/echo").status == 200
    for _ in range(2):
        assert get(router.port, broken, "/").status == 502
    url = f"http://{USER}:{PASS}@127.0.0.1:{router.routes_port}"
    return router, url, busy, broken


@contextmanager
def steady_traffic(router, busy: str, broken: str) -> Iterator[None]:
    """`status` shows the worst routes of the last 10 s: with only the scene's requests, a loaded machine
    (each `portico status` takes seconds to start) let the window pass them by and the table read "no
    traffic". A request to each route every 0.2 s keeps both in the window for as long as the test reads."""
    stop = threading.Event()
    failures: list[str] = []

    def send() -> None:
        while not stop.is_set():
            for host, expected in ((busy, 200), (broken, 502)):
                status = get(router.port, host, "/echo" if host == busy else "/").status
                if status != expected:
                    failures.append(f"{host}: {status}")
            stop.wait(0.2)

    sender = threading.Thread(target=send, name="steady-traffic", daemon=True)
    sender.start()
    try:
        yield
    finally:
        stop.set()
        sender.join(30)
    assert not failures, failures


def _status_json(url: str) -> dict:
    done = subprocess.run([*PORTICO, "status", "--url", url, "--json"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_status_json_names_the_worst_route(scene):
    router, url, busy, broken = scene
    with steady_traffic(router, busy, broken):
        out = wait_for(lambda: (s := _status_json(url))["worst_routes"] and s, timeout=15,
                       message="worst routes")
    assert out["router"]["phase"] == "healthy" and out["router"]["nats_connected"] is True
    assert out["router"]["routes"] >= 2 and out["router"]["since_registry_update"] >= 0
    worst = out["worst_routes"]
    assert worst[0]["route"] == broken and worst[0]["error_rate"] == 1.0
    assert busy in [r["route"] for r in worst]


def _run_in_pty(argv: list[str], timeout: float = 30.0) -> tuple[int, str]:
    master, slave = pty.openpty()
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=dict(os.environ, COLUMNS="140"))
    os.close(slave)
    out = b""
    deadline = time.monotonic() + timeout
    try:
        # Read until the pty hangs up (EIO once the child has exited and its output is all read): stopping
        # as soon as the child is seen gone could drop output it wrote just before exiting.
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
        return proc.wait(10), out.decode(errors="replace")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)


def test_status_tables_in_a_terminal(scene):
    router, url, busy, broken = scene
    with steady_traffic(router, busy, broken):
        wait_for(lambda: _status_json(url)["worst_routes"], timeout=15, message="worst routes")
        code, text = _run_in_pty([*PORTICO, "status", "--url", url])
    assert code == 0, text
    assert "healthy" in text and "connected" in text and "Worst routes" in text
    assert broken in text and "100.0 %" in text


def test_status_of_an_unreachable_router_fails_clearly():
    done = subprocess.run([*PORTICO, "status", "--url", f"http://127.0.0.1:{dead_port()}"], capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 1 and "cannot reach" in done.stderr


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (scripts/test installs it)")
def test_top_redraws_live_in_tmux(scene):
    router, url, busy, _ = scene
    server = f"portico-test-{uuid.uuid4().hex[:8]}"   # a private tmux server, killed at the end
    tmux = ["tmux", "-L", server]
    command = " ".join([*PORTICO, "top", "--url", url, "--interval", "0.5", "--filter", "busy"])
    subprocess.run([*tmux, "new-session", "-d", "-s", "top", "-x", "150", "-y", "40",
                    f"{command}; echo TOP-EXITED=$?; sleep 60"], check=True, timeout=10)

    def screen() -> str:
        return subprocess.run([*tmux, "capture-pane", "-p", "-t", "top"], capture_output=True, text=True,
                              timeout=10).stdout

    def total_shown() -> int:
        for line in screen().splitlines():
            if busy in line:
                return int(line.split()[-2] if line.split()[-1] in "│|" else line.split()[-1])
        return -1

    try:
        wait_for(lambda: busy in screen() and "Busiest routes" in screen(), timeout=20, message="top's table")
        before = total_shown()
        assert before >= 10
        for _ in range(7):
            assert get(router.port, busy, "/echo").status == 200
        wait_for(lambda: total_shown() >= before + 7, timeout=20, message="top redrawn with the new traffic")
        assert "broken" not in screen()  # --filter busy
        subprocess.run([*tmux, "send-keys", "-t", "top", "C-c"], check=True, timeout=10)
        wait_for(lambda: "TOP-EXITED=0" in screen(), timeout=15, message="top stopping on Ctrl-C")
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True, timeout=10)
