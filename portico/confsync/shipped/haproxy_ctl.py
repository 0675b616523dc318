"""Hitless HAProxy reload through the master CLI, used as the shipped resource's reload_cmd.

`python -m portico.confsync.shipped.haproxy_ctl reload --socket S --state-file F` saves the worker's server
state (so health status survives the reload), then asks the master to reload. The master starts new workers
with the new config and takes the listening sockets over from the old ones, which finish their connections.
Exit 0 when the master reports success, 1 otherwise (the new config failed to load or the master is gone).

Two reloads must not overlap: while the master re-executes itself (HAProxy < 2.7) its CLI socket refuses
connections, so a second reload (confsync and an operator at the same moment, or confsync twice) would fail.
Every reload therefore holds a lock file next to the master socket until the new master answers, and first
waits for the master to answer in case something else (a SIGUSR2, another tool) started a reload.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import re
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path


def master_command(sock_path: str, command: str, timeout: float = 5.0) -> str:
    """Send one command to the master CLI and return everything it answers before closing."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(sock_path)
        sock.sendall(command.encode() + b"\n")
        sock.shutdown(socket.SHUT_WR)   # end of input: the CLI answers and closes
        chunks = []
        while True:
            try:
                data = sock.recv(65536)
            except (TimeoutError, ConnectionResetError):
                break
            if not data:
                break
            chunks.append(data)
    return b"".join(chunks).decode(errors="replace")


def save_server_state(sock_path: str, state_file: str, timeout: float) -> bool:
    """Write the current worker's `show servers state` to state_file, atomically."""
    try:
        state = master_command(sock_path, "@1 show servers state", timeout)
    except OSError:
        return False
    if not state.strip() or "Unknown command" in state:
        return False
    tmp = Path(f"{state_file}.tmp")
    tmp.write_text(state)
    os.replace(tmp, state_file)
    return True


def _failed_reloads(sock_path: str, timeout: float = 1.0) -> int | None:
    """The master's failed-reload counter from `show proc` ("0 [failed: N]"), None when unreachable."""
    try:
        answer = master_command(sock_path, "show proc", timeout)
    except OSError:
        return None
    match = re.search(r"master\s+\d+\s+\[failed:\s*(\d+)\]", answer)
    return int(match.group(1)) if match else None


@contextlib.contextmanager
def _reload_lock(sock_path: str, deadline: float) -> Iterator[bool]:
    """Hold `<socket>.lock` (flock) for one reload; yields False when another reload held it until deadline."""
    try:
        lock_file = open(f"{sock_path}.lock", "a")  # noqa: SIM115 - closed below, after the reload
    except OSError as exc:
        print(f"haproxy reload lock {sock_path}.lock unavailable ({exc}); reloading without it", file=sys.stderr)
        yield True
        return
    with lock_file:
        while True:
            try:
                fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    yield False
                    return
                time.sleep(0.05)
        try:
            yield True
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def _wait_for_master(sock_path: str, deadline: float) -> int | None:
    """Poll until the master answers `show proc` (a reload begun elsewhere may still be running): its counter."""
    while True:
        failed = _failed_reloads(sock_path)
        if failed is not None or time.monotonic() >= deadline:
            return failed
        time.sleep(0.1)


def reload(sock_path: str, state_file: str | None, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    with _reload_lock(sock_path, deadline) as locked:
        if not locked:
            print(f"another haproxy reload still held {sock_path}.lock after {timeout}s", file=sys.stderr)
            return 1
        return _reload_locked(sock_path, state_file, timeout, deadline)


def _reload_locked(sock_path: str, state_file: str | None, timeout: float, deadline: float) -> int:
    failed_before = _wait_for_master(sock_path, deadline)
    if failed_before is None:
        print(f"haproxy master CLI {sock_path} did not answer within {timeout}s", file=sys.stderr)
        return 1
    if state_file:
        save_server_state(sock_path, state_file, min(timeout, 3.0))
    try:
        answer = master_command(sock_path, "reload", max(deadline - time.monotonic(), 1.0))
    except OSError as exc:
        print(f"haproxy master CLI {sock_path} unreachable: {exc}", file=sys.stderr)
        return 1
    if "Success=0" in answer:
        print(f"haproxy reload failed: {answer.strip()}", file=sys.stderr)
        return 1
    if "Success=1" in answer:
        return 0
    # HAProxy < 2.7 answers nothing: wait for the re-executed master, then compare its failure counter.
    failed_after = _wait_for_master(sock_path, deadline)
    if failed_after is None:
        print("haproxy master did not come back after reload", file=sys.stderr)
        return 1
    if failed_after > failed_before:
        print("haproxy reload failed (see haproxy's own log)", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="haproxy_ctl", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("reload", help="save server state, then reload through the master CLI")
    r.add_argument("--socket", required=True, help="the master CLI socket given to haproxy -S")
    r.add_argument("--state-file", default=None, help="server-state-file of the config")
    r.add_argument("--timeout", type=float, default=10.0)
    args = parser.parse_args(argv)
    return reload(args.socket, args.state_file, args.timeout)


if __name__ == "__main__":
    sys.exit(main())
