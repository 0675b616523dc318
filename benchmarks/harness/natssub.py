"""A NATS subscriber beside the router, speaking the text protocol over a blocking socket.

Why: publish-to-routable is a chain (publisher -> nats-server -> router -> request). A second subscriber to the
router's subject receives each message in the same fan-out as the router, so the moment it reads a message
splits the chain at nats-server's delivery: what comes before is the NATS hop, what comes after is the router's.
"""

from __future__ import annotations

import socket
import time


class NatsSubscriber:
    """Subscribes to one subject; `wait_for(marker)` blocks until a message whose payload holds `marker` arrives."""

    def __init__(self, host: str, port: int, subject: str, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buf = b""
        info = self._line(time.monotonic() + timeout)
        if not info.startswith(b"INFO"):
            raise RuntimeError(f"unexpected NATS greeting: {info[:200]!r}")
        self.sock.sendall(b'CONNECT {"verbose":false,"pedantic":false,"name":"portico-bench-twin"}\r\n'
                          b"SUB " + subject.encode() + b" 1\r\nPING\r\n")
        deadline = time.monotonic() + timeout
        while (line := self._line(deadline)) != b"PONG":   # the server has the subscription once it answers
            if line.startswith(b"-ERR"):
                raise RuntimeError(f"NATS error: {line.decode(errors='replace')}")

    def _fill(self, deadline: float) -> None:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no message from NATS in time")
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(65536)
        except TimeoutError as err:   # socket.timeout
            raise TimeoutError("no message from NATS in time") from err
        if not chunk:
            raise ConnectionError("NATS server closed the connection")
        self._buf += chunk

    def _line(self, deadline: float) -> bytes:
        while b"\r\n" not in self._buf:
            self._fill(deadline)
        line, self._buf = self._buf.split(b"\r\n", 1)
        return line

    def wait_for(self, marker: bytes, timeout: float = 2.0) -> None:
        """Read messages until one whose payload contains `marker`; TimeoutError when none came in time."""
        deadline = time.monotonic() + timeout
        while True:
            line = self._line(deadline)
            if line == b"PING":
                self.sock.sendall(b"PONG\r\n")
                continue
            if not line.startswith(b"MSG "):
                continue   # PONG, +OK, INFO
            size = int(line.rsplit(b" ", 1)[1])
            while len(self._buf) < size + 2:
                self._fill(deadline)
            payload, self._buf = self._buf[:size], self._buf[size + 2:]
            if marker in payload:
                return

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass
