"""The embedded servers start on free loopback ports and stop without leaving processes behind."""

import errno
import socket

import pytest
from ports import stop_keeping_port

from portico.stack.processes import free_port
from portico.stack.servers import start_nats


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when nothing accepts connections on the port any more."""
    try:
        with socket.create_connection((host, port), timeout=1):
            return False
    except OSError:
        return True


def test_nats_server_accepts_and_stops(nats_server):
    with socket.create_connection((nats_server.host, nats_server.port), timeout=2) as sock:
        assert sock.recv(4).startswith(b"INFO")
    nats_server.stop()
    assert not nats_server.process.running()
    assert port_is_free(nats_server.port)


def test_etcd_accepts_and_stops(etcd_server):
    with socket.create_connection((etcd_server.host, etcd_server.port), timeout=2):
        pass
    etcd_server.stop()
    assert not etcd_server.process.running()
    assert port_is_free(etcd_server.port)


def test_free_port_is_held_for_the_server_it_was_picked_for():
    """A picked port goes to no one else (not to a plain bind, nor to the next picks: the kernel's random
    bind(0) used to repeat one of the last few about once in 3,500), yet a server with SO_REUSEADDR (every
    server the tests and `portico up` start) binds it at once; until then a connection to it is refused."""
    port = free_port()
    with socket.socket() as plain, pytest.raises(OSError) as taken:
        plain.bind(("127.0.0.1", port))
    assert taken.value.errno == errno.EADDRINUSE
    picks = [free_port() for _ in range(500)]
    assert len(set(picks)) == len(picks) and port not in picks
    assert port_is_free(port)
    # create_server sets SO_REUSEADDR, as asyncio, Go, HAProxy and redis do
    with socket.create_server(("127.0.0.1", port)) as server, socket.create_connection(("127.0.0.1", port), 2):
        server.accept()[0].close()


def test_a_stopped_servers_port_is_held_for_its_restart(nats_server, tmp_path):
    stop_keeping_port(nats_server)
    with socket.socket() as plain, pytest.raises(OSError) as taken:
        plain.bind(("127.0.0.1", nats_server.port))
    assert taken.value.errno == errno.EADDRINUSE
    again = start_nats(port=nats_server.port, workdir=tmp_path / "again")
    try:
        with socket.create_connection((again.host, again.port), timeout=2) as sock:
            assert sock.recv(4).startswith(b"INFO")
    finally:
        again.stop()
