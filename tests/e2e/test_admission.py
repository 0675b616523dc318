"""max_client_connections and slow clients: past the bound a worker stops accepting (new connections wait in
the backlog, nothing is refused), slowloris connections are closed by the header timeout, and a normal client
is served throughout."""

from __future__ import annotations

import socket
import statistics
import time

from support import Client, get, unique_host, wait_for


def _slowloris(port: int, n: int, host: str) -> list[socket.socket]:
    """n connections that each send half a request head and then nothing."""
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        s.sendall(f"GET /slow HTTP/1.1\r\nHost: {host}\r\nX-Slow: ".encode())
        socks.append(s)
    return socks


def _closed_by_router(s: socket.socket, timeout: float) -> bool:
    s.settimeout(timeout)
    try:
        data = s.recv(65536)
    except TimeoutError:
        return False
    except OSError:
        return True
    return data == b"" or data.startswith(b"HTTP/1.1 408")


def _timed_get(port: int, host: str) -> float:
    started = time.monotonic()
    r = get(port, host, "/normal")
    assert r.status == 200
    return time.monotonic() - started


def test_limit_pauses_accepting_until_slow_connections_are_shed(router_factory, backend):
    limit = 20
    router = router_factory(max_client_connections=limit, read_header_timeout="2s")
    host = unique_host("admit")
    router.register(host, backend.port)
    slow = _slowloris(router.port, limit, host)
    extra = _slowloris(router.port, 10, host)   # past the bound: they wait in the backlog, not refused
    try:
        wait_for(lambda: router.varz()["open_client_connections"] >= limit, message="slow clients accepted")
        time.sleep(0.3)
        assert router.varz()["open_client_connections"] <= limit + 2   # a burst may slip in before the pause
        # a normal client is queued, then served once the header timeout sheds the slow ones
        with Client(router.port, timeout=30) as c:
            started = time.monotonic()
            r = c.request("GET", "/normal", host)
            assert r.status == 200
            assert time.monotonic() - started < 20
        assert all(_closed_by_router(s, 10) for s in slow)
        assert all(_closed_by_router(s, 10) for s in extra)   # accepted after the pause, then timed out too
        assert _timed_get(router.port, host) < 5
    finally:
        for s in slow + extra:
            s.close()


def _slowloris_do_not_starve(router_factory, backend, count: int) -> None:
    router = router_factory(read_header_timeout="3s")
    host = unique_host("loris")
    router.register(host, backend.port)
    baseline = sorted(_timed_get(router.port, host) for _ in range(30))
    slow = _slowloris(router.port, count, host)
    try:
        wait_for(lambda: router.varz()["open_client_connections"] >= count, timeout=30,
                 message="slow clients accepted")
        during = sorted(_timed_get(router.port, host) for _ in range(30))
        p99 = during[int(len(during) * 0.99) - 1]
        # "unchanged" on a shared, loaded test machine: within a generous bound of the baseline
        assert p99 < max(10 * statistics.median(baseline), 0.5), (baseline, during)
        assert sum(_closed_by_router(s, 10) for s in slow) == count    # shed by the header timeout
    finally:
        for s in slow:
            s.close()


def test_a_thousand_slowloris_do_not_starve_a_normal_client(router_factory, backend):
    _slowloris_do_not_starve(router_factory, backend, 1000)


def test_stalled_tls_handshake_is_shed_by_the_header_timeout(router_factory):
    import trustme

    cert = trustme.CA().issue_cert("stall.tls.test")
    router = router_factory(enable_ssl=True, read_header_timeout="2s", tls_pem=[{
        "cert_chain": "".join(b.bytes().decode() for b in cert.cert_chain_pems),
        "private_key": cert.private_key_pem.bytes().decode()}])
    s = socket.create_connection(("127.0.0.1", router.ssl_port), timeout=30)
    try:
        s.sendall(b"\x16\x03\x01")            # the first bytes of a ClientHello, then nothing
        started = time.monotonic()
        assert _closed_by_router(s, 15)
        assert time.monotonic() - started < 10   # not the 60 s default handshake timeout
    finally:
        s.close()
