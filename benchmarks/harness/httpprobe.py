"""A tiny keep-alive HTTP/1.1 client for readiness checks and publish-to-routable polling (loopback only)."""

from __future__ import annotations

import base64
import json
import socket
import time
import urllib.error
import urllib.request


class Probe:
    """GET / with a chosen Host over one reused connection; returns the status code (0 on connection error)."""

    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 2.0) -> None:
        self.addr = (host, port)
        self.timeout = timeout
        self.sock: socket.socket | None = None
        self.buf = b""

    def _connect(self) -> None:
        self.sock = socket.create_connection(self.addr, timeout=self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock = None

    def get(self, host_header: str, path: str = "/") -> int:
        try:
            if self.sock is None:
                self._connect()
            self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: portico-bench\r\n\r\n"
                              .encode())
            return self._read_response()
        except (OSError, ValueError):
            self.close()
            return 0

    def _read_response(self) -> int:
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ValueError("closed")
            self.buf += chunk
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        length, close, chunked = 0, False, False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value.strip())
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
        if chunked:
            while not self.buf.endswith(b"0\r\n\r\n"):
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise ValueError("closed")
                self.buf += chunk
            self.buf = b""
        else:
            while len(self.buf) < length:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise ValueError("closed")
                self.buf += chunk
            self.buf = self.buf[length:]
        if close:
            self.close()
        return status


def wait_for_status(port: int, host_header: str, want: int = 200, timeout: float = 30.0,
                    interval: float = 0.002) -> float:
    """Poll until a request with this Host answers `want`; returns seconds waited. Raises TimeoutError."""
    probe = Probe(port)
    start = time.monotonic()
    try:
        for _ in range(int(timeout / max(interval, 1e-4)) + 1000):
            if probe.get(host_header) == want:
                return time.monotonic() - start
            if time.monotonic() - start > timeout:
                break
            time.sleep(interval)
    finally:
        probe.close()
    raise TimeoutError(f"Host {host_header} did not answer {want} on port {port} within {timeout}s")


def get_json(url: str, user: str | None = None, password: str | None = None, timeout: float = 30.0):
    req = urllib.request.Request(url)
    if user is not None:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read())


def http_status(url: str, timeout: float = 2.0) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status
    except urllib.error.HTTPError as err:
        return err.code
    except OSError:
        return 0
