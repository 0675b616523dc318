"""nats-server killed (SIGKILL) under load and started again, behind the whole entrance (`portico up --nats`).

While NATS is away nobody can register, so the routers keep every route (`portico up` runs them with
`suspend_pruning_if_nats_unavailable`) and traffic flows. When NATS is back the routers subscribe again and
the registrar registers every healthy route at once instead of waiting for its next interval.

The full version keeps NATS down for 35 s, longer than the routers' pruning interval (30 s), with one extra
route registered with a 5 s TTL just before the kill: without the suspension that route would be pruned
during the outage and answer 404.
"""

from __future__ import annotations

import signal
import time

from reliability.core import Result, scenario
from reliability.entrance import Entrance
from reliability.load import SteadyLoad
from reliability.parts import Stack, hold_port, nats_publish, registration, unique_host, wait_for, wait_for_port

GOAL = ("0 failed requests (no 404: routes survive) while nats-server is down, also for a route whose TTL "
        "runs out during the outage; the registrar's registrations reach the routers again within 10 s of "
        "NATS being back")


def _registrations(up: Entrance, routers: int) -> list[int]:
    return [int(up.router_varz(i)["registrations"]) for i in range(1, routers + 1)]


@scenario("nats_restart", GOAL)
def run(quick: bool) -> Result:
    routers, outage, settle = (2, 3.0, 1.0) if quick else (3, 35.0, 8.0)
    with Stack("nats-restart") as stack:
        nats = stack.nats()
        up = Entrance(stack, routers=routers, nats_url=nats.url).start()
        load = up.load(150.0, 6)
        short_ttl: SteadyLoad | None = None
        if not quick:
            host = unique_host("shortttl")
            demo_port = up.state()["parts"]["demo-1"]["ports"]["http"]
            nats_publish(nats.url, "router.register", registration(host, demo_port, ttl=5))
            wait_for(lambda: all(host in up.router_routes(i) for i in range(1, routers + 1)), timeout=20,
                     message="the 5 s TTL route on every router")
            short_ttl = SteadyLoad(up.front_port, host, "/", rate=30.0, connections=2).start()
        time.sleep(2.0)
        logged = {i: len(up.router_log(i)) for i in range(1, routers + 1)}
        nats.process.stop(signum=signal.SIGKILL)
        hold_port(nats.port)   # it comes back on this port: no one else may be handed it meanwhile
        time.sleep(outage)
        nats.process.start()
        wait_for_port(nats.port, timeout=30, process=nats.process.popen)
        back = time.monotonic()
        short_stats = short_ttl.stop() if short_ttl is not None else None
        before = _registrations(up, routers)
        wait_for(lambda: all(now > was for now, was in zip(_registrations(up, routers), before, strict=True)),
                 timeout=60, interval=0.05, message="registrations reaching every router again")
        registered = time.monotonic() - back
        time.sleep(settle)
        stats = load.stop()
        suspended = sum("pruning suspended" in up.router_log(i)[logged[i]:] for i in range(1, routers + 1))
        figures: dict[str, object] = {"routers": routers, "nats-server down (s)": outage}
        figures |= stats.figures()
        if short_stats is not None:
            figures |= short_stats.figures("5 s TTL route during the outage: ")
        figures["registrations reached every router again, s after NATS was back"] = round(registered, 2)
        figures["routers that logged pruning suspended"] = suspended
    met = (stats.failed == 0 and stats.sent > 0 and registered < 10.0
           and (short_stats is None or (short_stats.failed == 0 and short_stats.sent > 0)))
    return Result(figures, met=met)
