"""Hitless HAProxy reload through the master CLI, used as the shipped resource's reload_cmd.

`python -m portico.confsync.shipped.haproxy_ctl reload --socket S --state-file F` saves the worker's server
state (so health status survives the reload), then asks the master to reload. The master starts new workers
with the new config and takes the listening sockets over from the old ones, which finish their connections.
Exit 0 when the master reports success, 1 otherwise (the new config failed to load or the master is gone).
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import sys
import time
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


def reload(sock_path: str, state_file: str | None, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    failed_before = _failed_reloads(sock_path)
    if state_file:
        save_server_state(sock_path, state_file, min(timeout, 3.0))
    try:
        answer = master_command(sock_path, "reload", timeout)
    except OSError as exc:
        print(f"haproxy master CLI {sock_path} unreachable: {exc}", file=sys.stderr)
        return 1
    if "Success=0" in answer:
        print(f"haproxy reload failed: {answer.strip()}", file=sys.stderr)
        return 1
    if "Success=1" in answer:
        return 0
    # HAProxy < 2.7 answers nothing: wait for the re-executed master, then compare its failure counter.
    while time.monotonic() < deadline:
        failed_after = _failed_reloads(sock_path)
        if failed_after is not None:
            if failed_before is not None and failed_after > failed_before:
                print("haproxy reload failed (see haproxy's own log)", file=sys.stderr)
                return 1
            return 0
        time.sleep(0.1)
    print("haproxy master did not come back after reload", file=sys.stderr)
    return 1


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
