"""RouteBus against a real nats-server: registrations, greet, router.start on (re)connect, malformed messages."""

from __future__ import annotations

import asyncio
import json
import logging

import nats
import pytest
from polling import eventually
from ports import stop_keeping_port

from portico.bus.subscriber import RouteBus, redact
from portico.config.settings import NatsServer, NatsSettings, RouterConfig
from portico.routes import RouteTable
from portico.stack.processes import free_port
from portico.stack.servers import start_nats
from portico.state import RouterState
from portico.tasks import cancel_and_wait


def make_config(port: int, **kw) -> RouterConfig:
    return RouterConfig(nats=NatsSettings(hosts=(NatsServer("127.0.0.1", port),)), ip="10.9.8.7", **kw)


@pytest.fixture
async def client(nats_server):
    nc = await nats.connect(nats_server.url, reconnect_time_wait=0.05, max_reconnect_attempts=-1)
    yield nc
    await nc.close()


@pytest.fixture
async def bus(nats_server):
    table, state = RouteTable(), RouterState(index=1)
    rb = RouteBus(make_config(nats_server.port), table, state, clock=lambda: 100.0, reconnect_wait=0.05)
    await rb.start()
    yield rb
    await rb.stop()


async def test_register_and_unregister_apply_to_table(bus, client):
    assert bus.state.nats_connected
    msg = {"host": "10.254.90.233", "port": 9528, "uris": ["test.a.com", "test.a.com/api"]}
    await client.publish("router.register", json.dumps(msg).encode())
    await eventually(lambda: bus.table.lookup("test.a.com", "/api/x") is not None)
    snap = bus.table.snapshot()
    assert snap["test.a.com"][0]["address"] == "10.254.90.233:9528"
    assert snap["test.a.com"][0]["ttl"] == 120
    assert bus.table.lookup("test.a.com").endpoints[0].updated_at == 100.0
    assert bus.state.metrics.registrations == 1

    await client.publish("router.unregister", json.dumps(msg).encode())
    await eventually(lambda: len(bus.table) == 0)
    assert bus.state.metrics.unregistrations == 1


async def test_greet_answers_with_start_payload(bus, client):
    reply = await client.request("router.greet", b"", timeout=2)
    assert json.loads(reply.data) == {
        "id": bus.state.id, "hosts": ["10.9.8.7"], "minimumRegisterIntervalInSeconds": 5,
        "pruneThresholdInSeconds": 120,
    }


async def test_malformed_messages_are_counted_and_dropped(bus, client, caplog):
    caplog.set_level(logging.WARNING, logger="portico.bus")
    bad = [b"not json", b'{"host":"h","port":1,"uris":["x.com"],"private_instance_index":1}', b"[]",
           b'{"host":"h","uris":["x.com"],"route_service_url":"http://rs"}', b"x" * 5000]
    for payload in bad:
        await client.publish("router.register", payload)
    await client.publish("router.unregister", b"{")
    await client.publish("router.register", b'{"host":"10.0.0.1","port":80,"uris":["good.com"]}')
    await eventually(lambda: bus.table.lookup("good.com") is not None)
    assert bus.state.metrics.malformed_messages == 6
    assert bus.state.metrics.registrations == 1
    assert bus.table.lookup("x.com") is None
    lines = [r.getMessage() for r in caplog.records if "malformed" in r.getMessage()]
    assert len(lines) == 6 and all("\n" not in line for line in lines)
    assert any("router.unregister" in line for line in lines)
    assert any("private_instance_index" in line for line in lines)
    assert max(len(line) for line in lines) < 400  # payload preview is truncated


async def test_router_start_on_connect_and_after_nats_restart(nats_server, tmp_path):
    port = nats_server.port
    observer_back = asyncio.Event()

    async def observer_reconnected():
        observer_back.set()

    observer = await nats.connect(nats_server.url, reconnect_time_wait=0.05, max_reconnect_attempts=-1,
                                  reconnected_cb=observer_reconnected)
    starts: list[dict] = []

    async def on_start(msg):
        starts.append(json.loads(msg.data))

    await observer.subscribe("router.start", cb=on_start)
    await observer.flush()

    async def wait_for_observer():  # so the bus's router.start after reconnect is not missed by the test
        async with asyncio.timeout(60):
            await observer_back.wait()

    state = RouterState()
    bus = RouteBus(make_config(port), RouteTable(), state, reconnect_wait=0.05, on_reconnect=wait_for_observer)
    server = nats_server
    try:
        await bus.start()
        await eventually(lambda: len(starts) == 1)
        assert starts[0]["id"] == state.id and starts[0]["hosts"] == ["10.9.8.7"]

        stop_keeping_port(server)
        await eventually(lambda: not state.nats_connected)
        server = await asyncio.to_thread(start_nats, port=port, workdir=tmp_path / "nats2")
        await eventually(lambda: len(starts) >= 2, timeout=60)
        assert starts[1] == starts[0]
        assert state.nats_connected and state.metrics.nats_reconnects == 1

        # routes still flow after the reconnect (subscriptions were replayed)
        await observer.publish("router.register", b'{"host":"h","port":1,"uris":["after.com"]}')
        await eventually(lambda: bus.table.lookup("after.com") is not None)
        await _delivered(bus, observer)
        assert len(starts) == 2, "one router.start on connect and one after the reconnect"
    finally:
        await bus.stop()
        await observer.close()
        server.stop()


async def _delivered(bus: RouteBus, observer) -> None:
    """Every router.start the bus has published so far has reached the observer: a PING round trip on the
    bus's connection (nats-server has taken its PUBs) and then on the observer's (it has delivered them)."""
    assert bus.nc is not None
    await bus.nc.flush(timeout=30)
    await observer.flush(timeout=30)


async def test_one_router_start_when_the_route_feed_returns_during_the_reconnect(nats_server, tmp_path):
    """nats-py reports itself connected before its reconnect callback has run; the route feed coming back in
    that window must not send a router.start of its own (every app would re-register its routes twice)."""
    port = nats_server.port
    observer = await nats.connect(nats_server.url, reconnect_time_wait=0.05, max_reconnect_attempts=-1)
    starts: list[bytes] = []

    async def on_start(msg):
        starts.append(msg.data)

    await observer.subscribe("router.start", cb=on_start)
    await observer.flush()
    feed_down_during_callback: list[bool] = []

    async def feed_back():  # the reconnect callback: waits for the route feed, so it returns inside the window
        assert bus.lane is not None
        feed_down_during_callback.append(not bus.lane.connected)
        await eventually(lambda: bus.lane is not None and bus.lane.connected, timeout=60)

    bus = RouteBus(make_config(port), RouteTable(), RouterState(), reconnect_wait=0.05, on_reconnect=feed_back)
    server = nats_server
    try:
        await bus.start()
        await _delivered(bus, observer)
        assert len(starts) == 1
        assert bus.lane is not None
        # the feed waits longer between attempts than nats-py, so it is (nearly always) the second one back
        bus.lane.reconnect_wait = bus.lane.max_reconnect_wait = 0.6
        for cycle in range(4):
            before = len(starts)
            stop_keeping_port(server)
            await eventually(lambda: not bus.connected)
            server = await asyncio.to_thread(start_nats, port=port, workdir=tmp_path / f"nats{cycle}")
            await eventually(lambda b=before: len(starts) > b and bus.connected, timeout=60)
            await eventually(lambda: observer.is_connected, timeout=60)
            await _delivered(bus, observer)
            assert len(starts) == before + 1, f"{len(starts) - before} router.start messages after one reconnect"
            if feed_down_during_callback[-1]:
                break
        assert any(feed_down_during_callback), "the feed was never the second reader back; nothing was tested"
    finally:
        await bus.stop()
        await observer.close()
        server.stop()


async def test_periodic_router_start(nats_server, client):
    starts = []

    async def on_start(msg):
        starts.append(msg.data)

    await client.subscribe("router.start", cb=on_start)
    await client.flush()
    bus = RouteBus(make_config(nats_server.port, publish_start_message_interval=0.1), RouteTable(),
                   RouterState(), reconnect_wait=0.05)
    await bus.start()
    try:
        await eventually(lambda: len(starts) >= 3)
    finally:
        await bus.stop()
    count = len(starts)
    await asyncio.sleep(0.25)
    assert len(starts) == count  # stop() ended the periodic task


async def test_start_waits_for_nats_and_logs_each_failure(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="portico.bus")
    port = free_port()
    config = RouterConfig(nats=NatsSettings(hosts=(NatsServer("127.0.0.1", port, "u", "secret"),)))
    state = RouterState()
    bus = RouteBus(config, RouteTable(), state, reconnect_wait=0.05)
    task = asyncio.create_task(bus.start())
    server = None
    try:
        await eventually(lambda: sum("cannot connect to NATS" in r.getMessage() for r in caplog.records) >= 2)
        assert not task.done() and not state.nats_connected
        assert all("secret" not in r.getMessage() for r in caplog.records)
        server = start_nats(port=port, workdir=tmp_path / "nats")  # no auth: the credentials are ignored
        async with asyncio.timeout(10):
            await task
        assert state.nats_connected
    finally:
        if not task.done():
            task.cancel()
        await bus.stop()
        if server is not None:
            server.stop()
    assert not state.nats_connected


async def test_a_start_waiting_for_nats_always_ends_when_cancelled():
    """A router stopped (SIGTERM) while it waits for NATS must stop. One cancel of RouteBus.start can be lost
    inside nats-py's first-connect loop (Python 3.11's wait_for returns a refused connect's error instead of
    CancelledError when both happen in one loop turn; about one cancel in ten at four attempts a second), so
    cancel_and_wait repeats it. A hundred buses, each cancelled at a different moment of its retrying."""
    port = free_port()
    config = RouterConfig(nats=NatsSettings(hosts=(NatsServer("127.0.0.1", port),)))
    buses = [RouteBus(config, RouteTable(), RouterState()) for _ in range(100)]
    starts = [asyncio.ensure_future(bus.start()) for bus in buses]

    async def cancel_later(i: int, task: asyncio.Future) -> None:
        await asyncio.sleep(0.006 * i)
        await cancel_and_wait(task)

    try:
        async with asyncio.timeout(30):
            await asyncio.gather(*(cancel_later(i, t) for i, t in enumerate(starts)))
        assert all(task.cancelled() for task in starts)
    finally:
        for bus in buses:
            await bus.stop()


def test_redact():
    assert redact("nats://user:pw@10.0.0.1:4222") == "nats://***@10.0.0.1:4222"
    assert redact("nats://10.0.0.1:4222") == "nats://10.0.0.1:4222"


async def test_register_then_unregister_order_is_kept(bus, client):
    for i in range(300):
        payload = json.dumps({"host": f"10.0.1.{i % 250}", "port": 1000 + i, "uris": [f"app{i % 7}.com"]}).encode()
        await client.publish("router.register", payload)
        await client.publish("router.unregister", payload)
    await client.publish("router.register", b'{"host":"10.0.0.1","port":80,"uris":["last.com"]}')
    await eventually(lambda: bus.table.lookup("last.com") is not None)
    assert list(bus.table.snapshot()) == ["last.com"]
    assert bus.state.metrics.registrations == 301 and bus.state.metrics.unregistrations == 300


async def test_other_router_subjects_are_ignored(bus, client):
    await client.publish("router.start", b'{"id":"other","hosts":["10.0.0.9"]}')
    await client.publish("router.active_apps", b"whatever")
    await client.publish("router.register", b'{"host":"10.0.0.1","port":80,"uris":["ok.com"]}')
    await eventually(lambda: bus.table.lookup("ok.com") is not None)
    assert bus.state.metrics.malformed_messages == 0
