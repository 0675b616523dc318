"""The embedded servers start on free loopback ports and stop without leaving processes behind."""

import socket


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
