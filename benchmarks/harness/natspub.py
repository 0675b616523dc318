"""A minimal NATS publisher speaking the text protocol over a blocking socket.

Bulk registration must not be limited by the publisher: messages are pre-encoded and written in large batches,
so the router, not this client, is what the ingest figure measures. Every wait here has a deadline.
"""

from __future__ import annotations

import json
import socket
import time


def register_payload(host: str, port: int, uris: list[str], **extra) -> bytes:
    body = {"host": host, "port": port, "uris": uris}
    body.update(extra)
    return json.dumps(body, separators=(",", ":")).encode()


def pub_frame(subject: str, payload: bytes) -> bytes:
    return b"PUB %s %d\r\n%s\r\n" % (subject.encode(), len(payload), payload)


class NatsPublisher:
    def __init__(self, host: str, port: int, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buf = b""
        info = self._read_line(timeout)
        if not info.startswith(b"INFO"):
            raise RuntimeError(f"unexpected NATS greeting: {info[:200]!r}")
        self.sock.sendall(b'CONNECT {"verbose":false,"pedantic":false,"name":"portico-bench"}\r\n')
        self.flush(timeout)

    def _read_line(self, timeout: float) -> bytes:
        deadline = time.monotonic() + timeout
        while b"\r\n" not in self._buf:
            if time.monotonic() > deadline:
                raise TimeoutError("NATS server did not answer")
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("NATS server closed the connection")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\r\n", 1)
        return line

    def publish(self, subject: str, payload: bytes) -> None:
        self.sock.sendall(pub_frame(subject, payload))

    def publish_many(self, frames: list[bytes], batch: int = 2000) -> None:
        """Send pre-built PUB frames in large writes."""
        for start in range(0, len(frames), batch):
            self.sock.sendall(b"".join(frames[start:start + batch]))

    def flush(self, timeout: float = 10.0) -> None:
        """PING and wait for PONG: the server has then received everything sent before."""
        self.sock.sendall(b"PING\r\n")
        deadline = time.monotonic() + timeout
        while True:
            line = self._read_line(max(0.01, deadline - time.monotonic()))
            if line == b"PONG":
                return
            if line.startswith(b"-ERR"):
                raise RuntimeError(f"NATS error: {line.decode(errors='replace')}")
            # +OK / PING / INFO: keep reading
            if line == b"PING":
                self.sock.sendall(b"PONG\r\n")

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass
