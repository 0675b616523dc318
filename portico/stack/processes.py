"""Start, watch and stop child processes cleanly.

Tests and `portico up` both run real servers (nats-server, etcd, HAProxy, routers). Each child gets its own
process group so that stopping it also stops anything it forked, and nothing outlives its owner: on Linux each
child also asks the kernel for SIGTERM when its parent dies (PR_SET_PDEATHSIG), so even an owner killed with
SIGKILL takes its children with it.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


def free_port(host: str = "127.0.0.1") -> int:
    """A port free on `host` that nobody else is handed before the caller's server binds it.

    A port merely bound and released goes straight back into the pool: the kernel picks bind(0) ports at
    random, so the next few calls in any process repeat it about once in 3,500, and a server started on it a
    moment later then fails with "Address already in use" (tests and `portico up` pick several ports, then
    start the processes). So the port is held (hold_port) instead.
    """
    return hold_port(0, host)


def hold_port(port: int, host: str = "127.0.0.1") -> int:
    """Leave `port` (0: any free one) in TIME_WAIT and return it: a connection to it is accepted and closed
    from this side first. For the minute TIME_WAIT lasts the kernel gives the port to no bind(0) and no
    outgoing connection, while a server that sets SO_REUSEADDR binds it at once (nats-server, etcd, HAProxy,
    redis, ZooKeeper, asyncio servers and Portico's listeners all do); a connection to it is refused until
    then. A test that stops a server to start it again on the same port holds the port in between.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(1)
        address = listener.getsockname()
        with socket.create_connection(address[:2]):
            accepted, _ = listener.accept()
            accepted.close()   # this side closes first, so it is this side (the port) that waits
        return int(address[1])


def wait_for_port(port: int, host: str = "127.0.0.1", timeout: float = 10.0,
                  process: subprocess.Popen | None = None) -> None:
    """Block until something accepts TCP connections on host:port, or raise TimeoutError.

    When `process` is given and exits first, raise RuntimeError at once instead of waiting out the timeout.
    """
    deadline = time.monotonic() + timeout
    while True:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with code {process.returncode} before port {port} opened")
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s") from None
            time.sleep(0.02)


PR_SET_PDEATHSIG = 1
_prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None


def die_with_parent(signum: int = signal.SIGTERM) -> Callable[[], None] | None:
    """A preexec_fn that makes the child get `signum` when this process dies; None where it cannot work.

    The kernel sends it when the *thread* that forked exits, so it is only set up from the main thread (which
    lives as long as the process). The child checks its parent right after the call: a parent that died in
    between would otherwise leave it running.
    """
    if _prctl is None or threading.current_thread() is not threading.main_thread():
        return None
    parent = os.getpid()
    prctl = _prctl

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0)
        if os.getppid() != parent:
            os.kill(os.getpid(), signum)

    return preexec


@dataclass
class ManagedProcess:
    """A child process in its own process group, with its output captured to a log file."""

    name: str
    argv: list[str]
    log_path: Path
    env: dict[str, str] | None = None
    cwd: str | None = None
    extra_logs: dict[int, Path] = field(default_factory=dict)   # fd number in the child -> file appended to
    die_with_parent: bool = True
    popen: subprocess.Popen | None = field(default=None, init=False)

    def start(self) -> ManagedProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        # closed below once the child has its own copies (a `with` cannot hold a variable number of files)
        log = open(self.log_path, "ab")  # noqa: SIM115
        extra = {fd: open(path, "ab") for fd, path in self.extra_logs.items()}  # noqa: SIM115

        parent_death = die_with_parent() if self.die_with_parent else None

        def prepare_child() -> None:   # in the child, before exec
            if parent_death is not None:
                parent_death()
            for fd, file in extra.items():   # each file at the fd number asked for
                os.dup2(file.fileno(), fd)

        try:
            self.popen = subprocess.Popen(
                self.argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=self.env, cwd=self.cwd, start_new_session=True,
                preexec_fn=prepare_child if extra or parent_death else None, pass_fds=tuple(extra),
            )
        finally:
            log.close()
            for file in extra.values():
                file.close()
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def send_signal(self, signum: int) -> None:
        if self.popen is not None and self.popen.poll() is None:
            os.killpg(self.popen.pid, signum)

    def stop(self, timeout: float = 5.0, signum: int = signal.SIGTERM) -> int | None:
        """Signal the whole group, wait, then SIGKILL what is left. Returns the exit code."""
        if self.popen is None:
            return None
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, signum)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        try:  # the leader may be gone while children of the group live on
            os.killpg(self.popen.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
        return self.popen.returncode

    def output(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
