"""A restarted router routes at once from its route snapshot: no 404 for routes live at shutdown."""

from __future__ import annotations

import json
import socket
import time

from support import get, unique_host, wait_for


def _first_answer(port: int, host: str, timeout: float = 30.0):
    """Poll until the proxy port accepts, then return the first response and when the port opened."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            time.sleep(0.01)
            continue
        opened = time.monotonic()
        return get(port, host, "/echo"), opened
    raise TimeoutError("proxy port never opened")



def snapshot_routes(path) -> dict:
    """Every route of a snapshot file: a head line, then lines of routes."""
    head, *lines = path.read_bytes().splitlines()
    assert json.loads(head)["format"] == 2
    return {key: eps for line in lines for key, eps in json.loads(line).items()}

def test_restart_serves_snapshot_routes_without_waiting_for_registrations(router_factory, backend_factory):
    router = router_factory(route_snapshot={"interval": "1h"})
    backend = backend_factory("snap")
    host = unique_host("snap")
    router.register(host, backend.port, ttl=120)
    router.stop()                                           # SIGTERM: the snapshot is written on the way out
    routes = snapshot_routes(router.workdir / "routes-snapshot.json")
    assert [e["port"] for e in routes[host]] == [backend.port]

    # restarted with a long start_response_delay_interval: without the snapshot the port would stay closed 30 s
    router.config["start_response_delay_interval"] = "30s"
    started = time.monotonic()
    router.start(wait_healthy=False)
    response, opened = _first_answer(router.port, host)
    assert response.status == 200 and response.json()["name"] == "snap"
    assert opened - started < 20, "the port waited for start_response_delay_interval despite the snapshot"
    router.wait_healthy()
    assert "endpoints restored" in router.output()


def test_snapshot_is_written_on_drain_and_periodically(router_factory, backend_factory):
    router = router_factory(route_snapshot={"interval": "0.5s"}, drain_wait="0s")
    backend = backend_factory("periodic")
    host = unique_host("periodic")
    router.register(host, backend.port)
    path = router.workdir / "routes-snapshot.json"
    wait_for(lambda: path.exists() and host in snapshot_routes(path), timeout=15,
             message="periodic snapshot with the new route")
    other = unique_host("drain")
    router.register(other, backend.port)
    router.process.send_signal(__import__("signal").SIGUSR1)
    wait_for(lambda: not router.process.running(), timeout=30, message="drained router exits")
    assert other in snapshot_routes(path)


def test_disabled_snapshot_writes_nothing_and_restores_nothing(router_factory, backend_factory):
    router = router_factory(route_snapshot={"enabled": False})
    backend = backend_factory("off")
    host = unique_host("off")
    router.register(host, backend.port)
    router.stop()
    assert not (router.workdir / "routes-snapshot.json").exists()
    router.start()
    assert get(router.port, host, "/echo").status == 404
