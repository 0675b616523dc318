"""A 3-node nats-server cluster: the node the router uses is killed while a registrar publishes through another."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import threading
import time

from reliability.core import Result, scenario
from reliability.load import SteadyLoad
from reliability.parts import Stack, loop_thread, registration, unique_host, wait_for

GOAL = ("kill the nats-server node the router is connected to: 0 failed requests, 0 lost registrations "
        "(every route the registrar announced is routable one heartbeat later), failover under 1 s")


class ChurningRegistrar:
    """Announces a new route every `every` s and re-announces all of them every `heartbeat` s, through one
    cluster node, on one connection (a registrar's)."""

    def __init__(self, nats_url: str, port: int, every: float, heartbeat: float) -> None:
        self.nats_url, self.port, self.every, self.heartbeat = nats_url, port, every, heartbeat
        self.hosts: list[tuple[float, str]] = []     # (monotonic time first published, host)
        self._stop = threading.Event()
        self._future: concurrent.futures.Future[None] | None = None

    def start(self) -> ChurningRegistrar:
        self._future = asyncio.run_coroutine_threadsafe(self._run(), loop_thread().loop)
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._future is not None:
            self._future.result(15)

    async def _run(self) -> None:
        import nats

        nc = await nats.connect(self.nats_url, connect_timeout=5)
        try:
            last_beat = time.monotonic()
            while not self._stop.is_set():
                host = unique_host("cluster")
                self.hosts.append((time.monotonic(), host))
                await nc.publish("router.register", json.dumps(registration(host, self.port, ttl=120)).encode())
                if time.monotonic() - last_beat >= self.heartbeat:
                    last_beat = time.monotonic()
                    for _, h in self.hosts:
                        await nc.publish("router.register", json.dumps(registration(h, self.port, ttl=120)).encode())
                await nc.flush()
                await asyncio.sleep(self.every)
        finally:
            await nc.close()


@scenario("nats_cluster", GOAL)
def run(quick: bool) -> Result:
    before, after = (2.0, 4.0) if quick else (10.0, 20.0)
    with Stack("nats-cluster") as stack:
        nodes = stack.nats_cluster(3)
        router_nodes, registrar_node = nodes[:2], nodes[2]
        hosts = [{"hostname": "127.0.0.1", "port": n.port} for n in router_nodes]
        router = stack.router(router_nodes[0].port, nats={"hosts": hosts})
        backend = stack.backend("cluster")
        registrar = ChurningRegistrar(registrar_node.url, backend.port, every=0.1, heartbeat=2.0).start()
        stack.on_exit(registrar.stop)
        wait_for(lambda: registrar.hosts, message="first registration")
        host = registrar.hosts[0][1]
        router.wait_route(host)
        load = SteadyLoad(router.port, host, "/echo", rate=100, connections=4).start()
        time.sleep(before)
        counts = {n.name: n.client_count() for n in nodes}
        victim = max(router_nodes, key=lambda n: counts[n.name])   # the router's (both readers') node
        alive = [n for n in nodes if n is not victim]
        victim.process.stop(signum=9)
        killed = time.monotonic()
        # a NATS client learns every cluster member from the server and may fail over to any of them
        wanted = sum(counts[n.name] for n in alive) + counts[victim.name]
        wait_for(lambda: sum(n.client_count() for n in alive) >= wanted, timeout=30, interval=0.01,
                 message="the router's connections back on the surviving nodes")
        failover = time.monotonic() - killed
        time.sleep(after)
        registrar.stop()
        announced = [h for _, h in registrar.hosts]
        gap = [h for t, h in registrar.hosts if killed <= t <= killed + failover]
        time.sleep(2.5)                                     # one more heartbeat's worth for the last ones
        table = router.routes_json()
        stats = load.stop()
        lost = [h for h in announced if h not in table]
    figures: dict[str, object] = {
        "failover time (s)": round(failover, 3),
        "router connections on the killed node before": counts[victim.name],
        "routes announced": len(announced),
        "announced while the router was between nodes": len(gap),
        "lost registrations": len(lost),
    } | stats.figures()
    met = stats.failed == 0 and not lost and failover < 1.0
    return Result(figures, met, notes="The router lists two of the three nodes; the registrar publishes through "
                                      "the third, a new route every 0.1 s and all of them again every 2 s. The "
                                      "node is killed with SIGKILL. Failover: until the router's connections "
                                      "are back on the surviving nodes (a NATS client learns every member of "
                                      "the cluster and may use any). Load: 100 req/s.")
