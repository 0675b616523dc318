"""Pruner: TTL pruning, TLS endpoints kept, suspension while NATS is down, refresh on reconnect."""

from __future__ import annotations

import asyncio
import json

import nats
from polling import eventually
from ports import stop_keeping_port

from portico.bus.messages import apply_registration, decode_registration
from portico.bus.pruner import Pruner
from portico.bus.subscriber import RouteBus
from portico.config.settings import NatsServer, NatsSettings, RouterConfig
from portico.routes import RouteTable
from portico.stack.servers import start_nats
from portico.state import RouterState


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def register(table: RouteTable, now: float, **msg) -> None:
    apply_registration(table, decode_registration(json.dumps(msg).encode()), now)


def setup_table(clock: Clock) -> RouteTable:
    table = RouteTable(droplet_stale_threshold=120)
    register(table, clock.now, host="10.0.0.1", port=80, uris=["a.com"])
    register(table, clock.now, host="10.0.0.2", port=80, uris=["a.com"], stale_threshold_in_seconds=10)
    register(table, clock.now, host="10.0.0.3", port=80, tls_port=443, uris=["a.com", "tls.com"])
    return table


def addresses(table: RouteTable, route: str) -> list[str]:
    return [ep["address"] for ep in table.snapshot().get(route, [])]


def test_prune_by_ttl_keeps_tls():
    clock = Clock()
    table, state = setup_table(clock), RouterState()
    state.nats_connected = True
    pruner = Pruner(RouterConfig(), table, state, clock)
    clock.now += 10
    assert pruner.prune_once() == []
    clock.now += 1
    assert [ep.address for _, ep in pruner.prune_once()] == ["10.0.0.2:80"]
    clock.now += 110
    assert [ep.address for _, ep in pruner.prune_once()] == ["10.0.0.1:80"]
    clock.now += 10_000
    assert pruner.prune_once() == []
    assert addresses(table, "a.com") == ["10.0.0.3:443"] and addresses(table, "tls.com") == ["10.0.0.3:443"]
    assert state.metrics.pruned_endpoints == 2


def test_reregistration_keeps_endpoint_alive():
    clock = Clock()
    table, state = setup_table(clock), RouterState()
    pruner = Pruner(RouterConfig(), table, state, clock)
    clock.now += 100
    register(table, clock.now, host="10.0.0.1", port=80, uris=["a.com"])
    clock.now += 100
    pruner.prune_once()
    assert addresses(table, "a.com") == ["10.0.0.1:80", "10.0.0.3:443"]


def test_empty_pools_disappear():
    clock = Clock()
    table = RouteTable()
    register(table, clock.now, host="h", port=1, uris=["gone.com", "gone.com/x"])
    clock.now += 121
    Pruner(RouterConfig(), table, RouterState(), clock).prune_once()
    assert table.snapshot() == {} and len(table) == 0


def test_no_suspension_by_default_prunes_while_disconnected():
    clock = Clock()
    table, state = setup_table(clock), RouterState()
    state.nats_connected = False
    clock.now += 200
    Pruner(RouterConfig(suspend_pruning_if_nats_unavailable=False), table, state, clock).prune_once()
    assert addresses(table, "a.com") == ["10.0.0.3:443"]


def test_suspended_while_disconnected_then_refreshed_on_reconnect():
    clock = Clock()
    table, state = setup_table(clock), RouterState()
    pruner = Pruner(RouterConfig(suspend_pruning_if_nats_unavailable=True), table, state, clock)
    state.nats_connected = False
    clock.now += 500
    assert pruner.prune_once() == [] and pruner.suspended
    assert len(addresses(table, "a.com")) == 3

    state.nats_connected = True
    pruner.on_nats_reconnected()
    assert not pruner.suspended
    assert all(ep.updated_at == clock.now for pool in table.pools() for ep in pool.endpoints)
    clock.now += 11
    assert [ep.address for _, ep in pruner.prune_once()] == ["10.0.0.2:80"]


def test_refresh_before_pruning_when_hook_not_wired():
    clock = Clock()
    table, state = setup_table(clock), RouterState()
    pruner = Pruner(RouterConfig(suspend_pruning_if_nats_unavailable=True), table, state, clock)
    pruner.prune_once()                     # NATS down: suspended
    clock.now += 500
    state.nats_connected = True             # back, but nobody called on_nats_reconnected
    assert pruner.prune_once() == []        # refreshed first, so nothing is stale
    assert len(addresses(table, "a.com")) == 3


async def test_pruner_task_runs_on_interval():
    clock = Clock()
    table, state = setup_table(clock), RouterState()
    pruner = Pruner(RouterConfig(prune_stale_droplets_interval=0.05), table, state, clock)
    assert pruner.interval == 0.05
    pruner.start()
    try:
        assert pruner.running
        clock.now += 200
        await eventually(lambda: addresses(table, "a.com") == ["10.0.0.3:443"])
    finally:
        await pruner.stop()
    assert not pruner.running
    register(table, clock.now, host="10.0.0.9", port=80, uris=["b.com"])
    clock.now += 200
    await asyncio.sleep(0.15)
    assert addresses(table, "b.com") == ["10.0.0.9:80"]  # stopped: no more passes


async def test_suspend_with_real_nats_and_refresh_on_reconnect(nats_server, tmp_path):
    clock = Clock()
    config = RouterConfig(nats=NatsSettings(hosts=(NatsServer("127.0.0.1", nats_server.port),)),
                          suspend_pruning_if_nats_unavailable=True, prune_stale_droplets_interval=0.05,
                          droplet_stale_threshold=120)
    table, state = RouteTable(droplet_stale_threshold=120), RouterState()
    pruner = Pruner(config, table, state, clock)
    bus = RouteBus(config, table, state, clock, reconnect_wait=0.05, on_reconnect=pruner.on_nats_reconnected)
    server = nats_server
    await bus.start()
    pruner.start()
    try:
        nc = await nats.connect(server.url)
        await nc.publish("router.register", b'{"host":"10.0.0.1","port":80,"uris":["keep.com"]}')
        await nc.flush()
        await nc.close()
        await eventually(lambda: table.lookup("keep.com") is not None)

        stop_keeping_port(server)
        await eventually(lambda: not state.nats_connected)
        clock.now += 1000                       # far past the TTL while NATS is down
        await eventually(lambda: pruner.suspended)
        await asyncio.sleep(0.2)                # several pruning intervals
        assert table.lookup("keep.com") is not None

        server = start_nats(port=server.port, workdir=tmp_path / "nats2")
        await eventually(lambda: state.nats_connected, timeout=10)
        # refreshed on reconnect
        await eventually(lambda: table.lookup("keep.com").endpoints[0].updated_at == clock.now,
                         message="endpoints refreshed on reconnect")
        assert not pruner.suspended

        clock.now += 121                        # no re-registration within the TTL: pruned as usual
        await eventually(lambda: table.lookup("keep.com") is None)
        assert state.metrics.pruned_endpoints == 1
    finally:
        await pruner.stop()
        await bus.stop()
        server.stop()


async def test_a_pass_over_a_big_table_goes_a_slice_per_loop_turn(monkeypatch):
    """The loop runs between slices; a route re-registered meanwhile is kept, a route gone meanwhile skipped."""
    from portico.bus import pruner as pruner_module
    monkeypatch.setattr(pruner_module, "PRUNE_SLICE", 2)
    clock = Clock()
    table = RouteTable(droplet_stale_threshold=120)
    for i in range(6):
        register(table, clock.now, host="10.0.0.1", port=1000 + i, uris=[f"r{i}.com"])
    state = RouterState()
    clock.now += 121                                              # every one of them is stale now
    pass_ = asyncio.ensure_future(Pruner(RouterConfig(), table, state, clock).prune_in_slices())
    await asyncio.sleep(0)                                        # the first slice ran, then it yielded
    assert len(table) == 4
    register(table, clock.now, host="10.0.0.1", port=1005, uris=["r5.com"])   # re-registered meanwhile
    table.unregister("r4.com", "10.0.0.1:1004")                  # and one unregistered meanwhile
    removed = await pass_
    assert sorted(key for key, _ in removed) == ["r0.com", "r1.com", "r2.com", "r3.com"]
    assert list(table.snapshot()) == ["r5.com"] and state.metrics.pruned_endpoints == 4
