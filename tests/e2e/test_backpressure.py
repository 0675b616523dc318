"""Backpressure over real sockets: a backend that answers an upload before reading it.

Many apps answer a large upload early (401, 413, a redirect) and read or drop the body afterwards. The router
stops reading the client while the backend's write buffer is full; once the answer is complete and the
exchange lets go of that backend, the client must be read again: the rest of its body is dropped and its next
request served. Before the Flow (portico/proxy/flow.py), that pause was never given back and the client
connection hung until the idle timeout.
"""

from __future__ import annotations

import socket
import threading

import pytest
from polling import wait_for
from support import IMPLEMENTATIONS, Client, build_request, implementation_env, unique_host

BODY = 64 * 1024 * 1024      # more than the kernel's buffers on both sides plus the router's high-water mark


class EarlyAnswerBackend:
    """Answers each request as soon as its head is in; reads a body only once `read_bodies` is set."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.read_bodies = threading.Event()
        self.conns: list[socket.socket] = []
        self.heads: list[bytes] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                head, _, buf = buf.partition(b"\r\n\r\n")
                self.heads.append(head)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                if head.startswith(b"POST"):
                    self.read_bodies.wait(120)
                    while conn.recv(1 << 20):
                        pass
                    return
        except OSError:
            return

    def stop(self) -> None:
        self.read_bodies.set()
        self.listener.close()
        for conn in self.conns:
            conn.close()


@pytest.fixture(scope="module", params=IMPLEMENTATIONS)
def router(request, router_factory):
    return router_factory(env=implementation_env(request.param))


def test_a_client_paused_for_a_backend_that_answered_early_reads_again(router):
    backend = EarlyAnswerBackend()
    host = unique_host("early")
    try:
        router.register(host, backend.port)
        with Client(router.port, timeout=30) as c:
            c.send(build_request("POST", "/upload", host, [("Content-Length", str(BODY))], None))
            sent = threading.Event()

            def send_body() -> None:
                piece = b"z" * (1 << 20)
                try:
                    for _ in range(BODY // len(piece)):
                        c.sock.sendall(piece)
                except OSError:
                    return
                sent.set()

            sender = threading.Thread(target=send_body, daemon=True)
            sender.start()
            r = c.read_response()
            assert (r.status, r.body) == (200, b"ok")
            # The backend still reads nothing; the router must take (and drop) the rest of the body itself.
            wait_for(sent.is_set, timeout=30, message="the client's whole body was taken by the router")
            r = c.request("GET", "/next", host)
            assert (r.status, r.body) == (200, b"ok")
        assert backend.heads[-1].startswith(b"GET /next ")
    finally:
        backend.stop()
