"""A router restarted under load, with and without its route snapshot (issue 10, item 4)."""

from __future__ import annotations

import socket
import time

from reliability.core import Result, scenario
from reliability.load import SteadyLoad
from reliability.parts import Heartbeat, Router, Stack, registration, unique_host

GOAL = ("with the route snapshot: 0 x 404 after a restart for routes live at shutdown, first 200 within 0.5 s "
        "of the proxy port opening (without it, gorouter's behaviour: 404 until registrars heartbeat again)")


def _wait_port_open(port: int, timeout: float = 60.0) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return time.monotonic()
        except OSError:
            time.sleep(0.005)
    raise TimeoutError(f"proxy port {port} did not open within {timeout}s")


def _restart(stack: Stack, nats_url: str, nats_port: int, snapshot: bool, heartbeat: float,
             settle: float) -> dict[str, object]:
    label = "snapshot on" if snapshot else "snapshot off"
    router: Router = stack.router(nats_port, start=False, route_snapshot={"enabled": snapshot, "interval": "30s"})
    router.start()
    router.config["start_response_delay_interval"] = "5s"     # gorouter's default, for the restart
    backend = stack.backend("restart")
    hosts = [unique_host(f"restart{i}") for i in range(20)]
    beat = Heartbeat(nats_url, [registration(h, backend.port, ttl=120) for h in hosts], heartbeat).start()
    stack.on_exit(beat.stop)
    router.wait_route(hosts[-1])
    load = SteadyLoad(router.port, hosts[0], "/echo", rate=100, connections=4).start()
    time.sleep(1.0)
    stopped = time.monotonic()
    router.stop()
    router.start(wait_healthy=False)
    opened = _wait_port_open(router.port)
    time.sleep(settle)
    stats = load.stop()
    beat.stop()
    after = [f for f in stats.failures if f.at >= load.seconds_at(opened)]
    return {
        f"{label}: proxy port closed for (s)": round(opened - stopped, 2),
        f"{label}: first 200 after the port opened (s)": load.first_ok_after(opened),
        f"{label}: 404s after the restart": sum(1 for f in after if f.kind == "status 404"),
        f"{label}: other failures after the port opened": sum(1 for f in after if f.kind != "status 404"),
        f"{label}: requests refused while down": sum(1 for f in stats.failures if f.at < load.seconds_at(opened)),
        f"{label}: requests": stats.sent,
    }


@scenario("restart_snapshot", GOAL)
def run(quick: bool) -> Result:
    figures: dict[str, object] = {}
    with Stack("restart") as stack:
        nats = stack.nats()
        # the registrar heartbeats every 20 s (quick: never again within the run, the harder case)
        heartbeat, settle = (3600.0, 2.0) if quick else (20.0, 25.0)
        figures |= _restart(stack, nats.url, nats.port, True, heartbeat, settle)
        if not quick:
            figures |= _restart(stack, nats.url, nats.port, False, heartbeat, settle)
    first = figures["snapshot on: first 200 after the port opened (s)"]
    met = (figures["snapshot on: 404s after the restart"] == 0
           and figures["snapshot on: other failures after the port opened"] == 0
           and isinstance(first, float) and first <= 0.5)
    return Result(figures, met, notes="The registrar of 20 routes heartbeats every 20 s; load: 100 req/s on "
                                      "one of them. start_response_delay_interval is 5 s in both runs.")
