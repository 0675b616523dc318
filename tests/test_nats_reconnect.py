"""Issue 10.3: after nats-server comes back, the router is subscribed again and has sent router.start within
0.5 s of the server accepting connections, every time, through both NATS readers (the fast lane with nats-py
for router.start, and nats-py alone).

A real nats-server is stopped and restarted on the same port a few times; the outage lasts long enough each
time for the reconnect backoff to reach its cap.

The half second is the backoff's cap (0.25 s) plus a connect-and-subscribe that takes milliseconds on an idle
machine. On a loaded machine (CI, five test runs at once) a freshly started nats-server and this process can
both be kept waiting for the CPU, so the handshake alone may take a large part of it. The test therefore
measures, in each cycle, what a bare handshake costs at that very moment: the probe that notices the port open
completes its own CONNECT/PING/PONG at once (no backoff), and the router may take GOAL plus that. Idle, the
bound is the promise; a router whose backoff overshoots the cap still fails it.
"""

from __future__ import annotations

import asyncio
import json
import random
import time

import nats
import pytest
from polling import eventually
from ports import stop_keeping_port

from portico.bus.subscriber import RouteBus
from portico.config.settings import NatsServer, NatsSettings, RouterConfig
from portico.routes import RouteTable
from portico.stack.servers import start_nats
from portico.state import RouterState

GOAL = 0.5
CYCLES = 3


async def _first_accept(port: int, timeout: float = 20.0) -> tuple[float, float]:
    """The moment something first accepts a TCP connection on the port (polled every 5 ms), and how long a
    client that wastes no time then needs to be connected to nats-server (INFO, CONNECT, PING, PONG)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.005)
            continue
        at = time.monotonic()
        try:
            async with asyncio.timeout(timeout):
                info = await reader.readline()
            assert info.startswith(b"INFO "), info
            writer.write(b'CONNECT {"verbose":false,"pedantic":false}\r\nPING\r\n')
            async with asyncio.timeout(timeout):
                while (line := await reader.readline()) != b"PONG\r\n":
                    assert line, "nats-server closed the probe's connection"
            return at, time.monotonic() - at
        finally:
            writer.close()
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
    handshakes: list[float] = []
    loop = asyncio.get_running_loop()
    try:
        await bus.start()
        for cycle in range(CYCLES):
            before = len(sent)
            stop_keeping_port(server)
            await eventually(lambda: not bus.connected, message="bus noticed the outage")
            await asyncio.sleep(random.uniform(0.6, 1.2))   # long enough for the backoff to reach its cap
            starting = loop.run_in_executor(None, lambda c=cycle: start_nats(port=port,
                                                                            workdir=tmp_path / f"n{c}"))
            accepted_at, handshake = await _first_accept(port)
            server = await starting
            await eventually(lambda b=before: len(sent) > b, timeout=10, message="router.start after reconnect")
            gaps.append(sent[before] - accepted_at)
            handshakes.append(handshake)
            assert bus.connected, "router.start went out before both NATS readers were connected"
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
        late = [(gap, handshake) for gap, handshake in zip(gaps, handshakes, strict=True) if gap >= GOAL + handshake]
        assert not late, (f"router.start {[f'{g:.3f}' for g in gaps]} s after NATS accepted again; a bare "
                          f"handshake took {[f'{h:.3f}' for h in handshakes]} s")
    finally:
        await bus.stop()
        server.stop()
