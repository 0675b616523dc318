"""The embedded servers start on free loopback ports and stop without leaving processes behind."""

import socket

from portico.stack.plan import port_problem


def test_nats_server_accepts_and_stops(nats_server):
    with socket.create_connection((nats_server.host, nats_server.port), timeout=2) as sock:
        assert sock.recv(4).startswith(b"INFO")
    nats_server.stop()
    assert not nats_server.process.running()
    assert port_problem(nats_server.port) is None


def test_etcd_accepts_and_stops(etcd_server):
    with socket.create_connection((etcd_server.host, etcd_server.port), timeout=2):
        pass
    etcd_server.stop()
    assert not etcd_server.process.running()
    assert port_problem(etcd_server.port) is None
