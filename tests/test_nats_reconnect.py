"""Issue 10.3: after nats-server comes back, the router is subscribed again and has sent router.start within
0.5 s of the server accepting connections, every time, through both NATS readers (the fast lane with nats-py
for router.start, and nats-py alone).

A real nats-server is stopped and restarted on the same port a few times; the outage lasts long enough each
time for the reconnect backoff to reach its cap.
"""

from __future__ import annotations

import asyncio
import json
import random
import time

import nats
import pytest
from polling import eventually

from portico.bus.subscriber import RouteBus
from portico.config.settings import NatsServer, NatsSettings, RouterConfig
from portico.routes import RouteTable
from portico.stack.servers import start_nats
from portico.state import RouterState

GOAL = 0.5
CYCLES = 3


async def _first_accept(port: int, timeout: float = 20.0) -> float:
    """The moment something first accepts a TCP connection on the port (polled every 5 ms)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.005)
            continue
        at = time.monotonic()
        writer.close()
        return at
    raise AssertionError(f"nothing accepted on {port}")


@pytest.mark.parametrize("fastlane", [True, False], ids=["fastlane", "nats-py"])
async def test_router_start_within_half_a_second_of_nats_return(nats_server, tmp_path, fastlane):
    port = nats_server.port
    config = RouterConfig(nats=NatsSettings(hosts=(NatsServer("127.0.0.1", port),)), ip="10.9.8.7")
    state = RouterState()
    bus = RouteBus(config, RouteTable(), state, fastlane=fastlane)
    sent: list[float] = []
    publish = bus.publish_start

    async def recording_publish_start() -> None:
        await publish()
        if bus.nc is not None and bus.nc.is_connected:
            sent.append(time.monotonic())

    bus.publish_start = recording_publish_start  # observe when router.start goes out; behaviour unchanged
    server = nats_server
    gaps: list[float] = []
    loop = asyncio.get_running_loop()
    try:
        await bus.start()
        for cycle in range(CYCLES):
            before = len(sent)
            server.stop()
            await eventually(lambda: not bus.connected, message="bus noticed the outage")
            await asyncio.sleep(random.uniform(0.6, 1.2))   # long enough for the backoff to reach its cap
            starting = loop.run_in_executor(None, lambda c=cycle: start_nats(port=port,
                                                                            workdir=tmp_path / f"n{c}"))
            accepted_at = await _first_accept(port)
            server = await starting
            await eventually(lambda b=before: len(sent) > b, timeout=10, message="router.start after reconnect")
            gaps.append(sent[before] - accepted_at)
            assert bus.connected
            # subscribed again: a registration published now is applied
            nc = await nats.connect(f"nats://127.0.0.1:{port}")
            try:
                uri = f"after-{cycle}.reconnect.test"
                await nc.publish("router.register", json.dumps({"host": "10.0.0.1", "port": 80 + cycle,
                                                                "uris": [uri]}).encode())
                await nc.flush()
                await eventually(lambda u=uri: bus.table.lookup(u) is not None)
            finally:
                await nc.close()
        assert max(gaps) < GOAL, f"router.start {[f'{g:.3f}' for g in gaps]} s after NATS accepted again"
    finally:
        await bus.stop()
        server.stop()
