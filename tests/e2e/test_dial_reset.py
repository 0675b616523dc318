"""An endpoint that accepts a connection and resets it at once: the dial counts as failed and the client gets
its answer (a retry, then a 502), never a request written to a closed transport and a client left waiting."""

from __future__ import annotations

import socket
import struct
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from support import get, unique_host


@pytest.fixture(scope="module")
def resetting_port():
    """A listener that accepts and resets every connection (SO_LINGER 0), as a crashing app does."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(512)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    listener.close()
    thread.join(timeout=5)


def test_an_endpoint_that_resets_every_connection_is_answered_502(router, resetting_port):
    host = unique_host("reset")
    router.register(host, resetting_port)
    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(lambda _: get(router.port, host, timeout=15).status, range(200)))
    assert answers == [502] * 200
