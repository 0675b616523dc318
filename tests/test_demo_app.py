"""The demo app of `portico up --demo`, as a real process on a free port: answers, keep-alive, pipelining, bad
input, and a clean stop on SIGTERM while a keep-alive connection is open."""

from __future__ import annotations

import signal
import socket
import sys
from pathlib import Path

import pytest

from portico.stack.processes import ManagedProcess, free_port, wait_for_port


@pytest.fixture
def demo(tmp_path: Path):
    port = free_port()
    proc = ManagedProcess("demo", [sys.executable, "-m", "portico.stack.demo_app", "--port", str(port),
                                   "--name", "demo-7"], tmp_path / "demo.log").start()
    try:
        wait_for_port(port, timeout=30, process=proc.popen)
        yield port, proc
    finally:
        proc.stop()


def _read_responses(sock: socket.socket, count: int) -> list[bytes]:
    """Read `count` whole responses (head plus Content-Length body) from sock."""
    buf = b""
    out: list[bytes] = []
    while len(out) < count:
        while b"\r\n\r\n" not in buf:
            chunk = sock.recv(65536)
            assert chunk, f"connection closed after {len(out)} responses: {buf!r}"
            buf += chunk
        head, rest = buf.split(b"\r\n\r\n", 1)
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(rest) < length:
            chunk = sock.recv(65536)
            assert chunk
            rest += chunk
        out.append(head + b"\r\n\r\n" + rest[:length])
        buf = rest[length:]
    return out


def test_demo_app_answers_keeps_alive_and_pipelines(demo):
    port, _proc = demo
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: demo.portico.local\r\n\r\n")
        (first,) = _read_responses(sock, 1)
        assert first.startswith(b"HTTP/1.1 200 OK\r\n")
        assert b"X-Demo-Instance: demo-7\r\n" in first
        assert first.endswith(b"\r\n\r\nhello from demo-7\n")
        # same connection: three pipelined requests, one with a body, answered in order
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
                     b"POST /form HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nabcde"
                     b"GET /a/b?c=d HTTP/1.1\r\nHost: x\r\n\r\n")
        health, post, hello = _read_responses(sock, 3)
        assert health.startswith(b"HTTP/1.1 200 OK") and health.endswith(b"\r\n\r\nok\n")
        assert post.startswith(b"HTTP/1.1 501 ")
        assert hello.endswith(b"hello from demo-7\n")


def test_demo_app_head_http10_and_bad_request(demo):
    port, _proc = demo
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"HEAD / HTTP/1.0\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
        assert data.startswith(b"HTTP/1.1 200 OK") and b"Content-Length: 18\r\n" in data
        assert b"Connection: close" in data and data.endswith(b"\r\n\r\n")   # no body, then closed
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
        assert data.startswith(b"HTTP/1.1 400 Bad Request")


def test_demo_app_stops_on_sigterm_with_an_idle_keepalive_connection(demo):
    port, proc = demo
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        _read_responses(sock, 1)
        proc.send_signal(signal.SIGTERM)
        assert proc.popen is not None
        assert proc.popen.wait(timeout=20) == 0
        assert sock.recv(100) == b""   # the idle connection was closed, not left hanging
