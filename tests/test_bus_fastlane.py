"""The route feed's fast lane: Endpoint's fast constructor, and FastLane against a real
nats-server (order, malformed messages, PING/PONG, auth, reconnect, a large burst)."""

from __future__ import annotations

import asyncio
import json
import logging

import nats
import pytest
from polling import eventually
from ports import stop_keeping_port

from portico.bus.applier import RateLimitedLog
from portico.bus.fastlane import FastLane
from portico.bus.messages import decode_registration, registration_to_endpoint
from portico.bus.subscriber import RouteBus
from portico.config.settings import NatsServer, NatsSettings, RouterConfig
from portico.routes import RouteTable
from portico.routes.endpoint import _REGISTRATION_FIELDS, Endpoint, make_endpoint, new_endpoint
from portico.stack.binaries import nats_server_binary
from portico.stack.processes import ManagedProcess, free_port, wait_for_port
from portico.stack.servers import RunningServer, start_nats
from portico.state import RouterState

# ---- the rate-limited log ---------------------------------------------------------------------------------

def test_rate_limited_log():
    now = [0.0]
    limiter = RateLimitedLog(burst=3, window=10.0, clock=lambda: now[0])
    assert [limiter.allow() for _ in range(5)] == [True, True, True, False, False]
    now[0] = 10.0
    assert limiter.allow() and limiter.take_suppressed() == 2 and limiter.take_suppressed() == 0


# ---- Endpoint's fast constructor and lazy fields ----------------------------------------------------------------

FULL = {
    "host": "10.0.0.2", "port": 80, "tls_port": 443, "uris": ["a.com"], "app": "app\r\nEvil: 1",
    "private_instance_id": "iid", "private_instance_index": "2", "server_cert_domain_san": "san",
    "route_service_url": "https://rs", "tags": {"component": "web"}, "stale_threshold_in_seconds": 30,
    "isolation_segment": "seg", "protocol": "http2", "availability_zone": "z1",
    "endpoint_updated_at_ns": 17, "options": {"loadbalancing": "least-connection"},
}


def slots(ep: Endpoint) -> dict:
    return {name: getattr(ep, name) for name in Endpoint.__struct_fields__}


@pytest.mark.parametrize("body", [FULL, {"host": "10.0.0.1", "port": 8080, "uris": ["b.com"]}])
def test_new_endpoint_matches_the_constructor(body):
    table = RouteTable(droplet_stale_threshold=120)
    reg = decode_registration(json.dumps(body).encode())
    fast = registration_to_endpoint(reg, table, 5.0)
    options = reg.options
    slow = make_endpoint(
        reg.host, reg.tls_port or reg.port, tls=reg.tls_port != 0, app_id=reg.app,
        private_instance_id=reg.private_instance_id, private_instance_index=reg.private_instance_index,
        server_cert_domain_san=reg.server_cert_domain_san, route_service_url=reg.route_service_url,
        tags=reg.tags or None, ttl=table.ttl_for(reg.stale_threshold_in_seconds),
        isolation_segment=reg.isolation_segment, protocol=reg.protocol, availability_zone=reg.availability_zone,
        load_balancing_algorithm=options.loadbalancing if options else "", updated_at=5.0,
        updated_at_ns=reg.endpoint_updated_at_ns)
    assert type(fast) is Endpoint and slots(fast) == slots(slow)
    # per-request bytes, built each time (nothing kept on the endpoint), equal either way
    assert fast.cf_headers == slow.cf_headers and fast.guids == slow.guids
    assert fast.address_bytes == fast.address.encode() == slow.address_bytes
    assert fast.same_registration(slow) and slow.same_registration(fast) and fast.same_registration(fast)


def test_same_registration_compares_every_registration_field():
    base = new_endpoint("h", 1, False, "a", "i", "0", "s", "https://r", {"k": "v"}, 30.0, "seg", "http1", "z",
                        "", 1.0, 1)
    for name in _REGISTRATION_FIELDS:
        other = new_endpoint("h", 1, False, "a", "i", "0", "s", "https://r", {"k": "v"}, 30.0, "seg", "http1",
                             "z", "", 2.0, 2)
        assert base.same_registration(other)  # timestamps do not count
        value = getattr(other, name)
        setattr(other, name, (not value) if isinstance(value, bool) else
                (value + 1 if isinstance(value, (int, float)) else {"x": "y"} if isinstance(value, dict)
                 else (*value, "x") if isinstance(value, tuple) else value + "x"))
        assert not base.same_registration(other), name
    # the registration's fields lead the Struct but the live counters (same_registration compares that leading
    # slice, skipping them), and what the proxy changes later (the counters, the timestamps) is not part of it
    leading = Endpoint.__struct_fields__[:len(_REGISTRATION_FIELDS) + 2]
    assert tuple(n for n in leading if n not in ("active", "benched_until")) == _REGISTRATION_FIELDS
    assert Endpoint.__struct_fields__[len(_REGISTRATION_FIELDS) + 2:] == ("updated_at", "updated_at_ns")
    busy = new_endpoint("h", 1, False, "a", "i", "0", "s", "https://r", {"k": "v"}, 30.0, "seg", "http1", "z",
                        "", 3.0, 3)
    busy.active, busy.benched_until = 5, 99.0
    assert base.same_registration(busy) and busy.same_registration(base)


# ---- against a real nats-server -----------------------------------------------------------------------------

def start_nats_with(tmp_path, config: str, port: int | None = None, extra: tuple = ()) -> RunningServer:
    port = port or free_port()
    conf = tmp_path / "nats.conf"
    conf.write_text(config)
    argv = [nats_server_binary(), "-a", "127.0.0.1", "-p", str(port), "-c", str(conf), *extra]
    proc = ManagedProcess("nats-server", argv, tmp_path / "nats-server.log").start()
    wait_for_port(port, timeout=30, process=proc.popen)
    return RunningServer(proc, "127.0.0.1", port, f"nats://127.0.0.1:{port}")


def make_lane(url: str, **kw) -> FastLane:
    kw.setdefault("reconnect_wait", 0.05)
    return FastLane([url], RouteTable(), RouterState(), clock=lambda: 100.0, **kw)


@pytest.fixture
async def client(nats_server):
    nc = await nats.connect(nats_server.url, reconnect_time_wait=0.05, max_reconnect_attempts=-1)
    yield nc
    await nc.close()


@pytest.fixture
async def lane(nats_server):
    fl = make_lane(nats_server.url)
    await fl.start()
    yield fl
    await fl.stop()


def reg_payload(i: int, uri: str | None = None) -> bytes:
    return json.dumps({"host": f"10.1.{i // 250 % 250}.{i % 250}", "port": 1000 + i % 50000,
                       "uris": [uri or f"app{i}.burst.local"], "app": "g", "private_instance_index": "0"}).encode()


async def test_register_and_unregister_applied_in_order(lane, client):
    assert lane.connected
    for i in range(500):
        payload = reg_payload(i, uri=f"app{i % 7}.com")
        await client.publish("router.register", payload)
        await client.publish("router.unregister", payload)
    await client.publish("router.register", b'{"host":"10.0.0.1","port":80,"uris":["last.com","last.com/api"]}')
    await eventually(lambda: lane.table.lookup("last.com", "/api") is not None)
    assert sorted(lane.table.snapshot()) == ["last.com", "last.com/api"]
    m = lane.state.metrics
    assert m.registrations == 501 and m.unregistrations == 500 and m.malformed_messages == 0
    ep = lane.table.lookup("last.com").endpoints[0]
    assert ep.updated_at == 100.0 and ep.address == "10.0.0.1:80"


async def test_malformed_counted_and_skipped(lane, client, caplog):
    caplog.set_level(logging.WARNING, logger="portico.bus")
    bad = [b"not json", b'{"host":"h","port":1,"uris":["x.com"],"private_instance_index":1}', b"[]", b"",
           b'{"host":"h","uris":["x.com"],"route_service_url":"http://rs"}', b"x" * 5000]
    for payload in bad:
        await client.publish("router.register", payload)
    await client.publish("router.unregister", b"{")
    await client.publish("router.register", b'{"host":"10.0.0.1","port":80,"uris":["good.com"]}')
    await eventually(lambda: lane.table.lookup("good.com") is not None)
    assert lane.state.metrics.malformed_messages == 7 and lane.state.metrics.registrations == 1
    assert lane.table.lookup("x.com") is None and lane.connected
    lines = [r.getMessage() for r in caplog.records if "malformed" in r.getMessage()]
    assert len(lines) == 7 and all("\n" not in line and len(line) < 400 for line in lines)
    assert any("router.unregister" in line for line in lines) and any("empty payload" in line for line in lines)


async def test_malformed_flood_is_logged_rate_limited(lane, client, caplog):
    caplog.set_level(logging.WARNING, logger="portico.bus")
    for _ in range(200):
        await client.publish("router.register", b"nope")
    await client.publish("router.register", b'{"host":"10.0.0.1","port":80,"uris":["good.com"]}')
    await eventually(lambda: lane.table.lookup("good.com") is not None)
    assert lane.state.metrics.malformed_messages == 200
    assert sum("malformed" in r.getMessage() for r in caplog.records) <= 20


async def test_headers_are_skipped(lane, nats_server):
    nc = await nats.connect(nats_server.url)
    try:
        await nc.publish("router.register", b'{"host":"10.0.0.3","port":80,"uris":["hdr.com"]}',
                         headers={"X-Trace": "1"})
        await nc.flush()
    finally:
        await nc.close()
    await eventually(lambda: lane.table.lookup("hdr.com") is not None)
    assert lane.state.metrics.malformed_messages == 0


async def test_server_pings_are_answered_and_own_pings_keep_the_connection(tmp_path):
    # The server PINGs every 250ms and drops a client after 4 unanswered (about 1.25 s); the lane PINGs every
    # 250ms too and reconnects after 5 unanswered. Watched for 3 s, far longer than either would take to give
    # up on a lane that did not answer or count PONGs, while a loaded machine's pauses of a few hundred ms
    # (this process or nats-server not scheduled) break nothing.
    server = start_nats_with(tmp_path, "ping_interval: \"250ms\"\nping_max: 4\n")
    lane = make_lane(server.url, ping_interval=0.25, max_outstanding_pings=5)
    nc = None
    try:
        await lane.start()
        proto = lane._proto
        await asyncio.sleep(3.0)
        assert lane.connected and lane._proto is proto  # never reconnected
        await eventually(lambda: proto.outstanding_pings <= 1, timeout=5)   # the server's PONGs are counted
        nc = await nats.connect(server.url)
        await nc.publish("router.register", b'{"host":"10.0.0.1","port":80,"uris":["alive.com"]}')
        await nc.flush()
        await eventually(lambda: lane.table.lookup("alive.com") is not None)
    finally:
        if nc is not None:
            await nc.close()
        await lane.stop()
        server.stop()


async def test_credentials_are_sent(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="portico.bus")
    server = start_nats_with(tmp_path, "", extra=("--user", "u", "--pass", "s3cret"))
    port = server.port
    wrong = make_lane(f"nats://u:nope@127.0.0.1:{port}")
    right = make_lane(f"nats://u:s3cret@127.0.0.1:{port}")
    task = asyncio.create_task(wrong.start())
    try:
        await eventually(lambda: any("Authorization" in r.getMessage() for r in caplog.records))
        assert not task.done() and not wrong.connected
        async with asyncio.timeout(5):
            await right.start()
        nc = await nats.connect(f"nats://u:s3cret@127.0.0.1:{port}")
        await nc.publish("router.register", b'{"host":"10.0.0.1","port":80,"uris":["auth.com"]}')
        await nc.flush()
        await nc.close()
        await eventually(lambda: right.table.lookup("auth.com") is not None)
        assert all("s3cret" not in r.getMessage() for r in caplog.records)
    finally:
        task.cancel()
        await wrong.stop()
        await right.stop()
        server.stop()


async def test_reconnect_after_restart_resubscribes(nats_server, tmp_path):
    port = nats_server.port
    events: list = []
    lane = make_lane(nats_server.url, on_connected=lambda first: events.append(("up", first)),
                     on_disconnected=lambda: events.append(("down",)))
    server = nats_server
    nc = None
    try:
        await lane.start()
        assert events == [("up", True)]
        stop_keeping_port(server)
        await eventually(lambda: not lane.connected)
        server = start_nats(port=port, workdir=tmp_path / "nats2")
        await eventually(lambda: lane.connected, timeout=10)
        assert events == [("up", True), ("down",), ("up", False)]
        nc = await nats.connect(server.url)
        await nc.publish("router.register", b'{"host":"10.0.0.1","port":80,"uris":["after.com"]}')
        await nc.flush()
        await eventually(lambda: lane.table.lookup("after.com") is not None)
    finally:
        if nc is not None:
            await nc.close()
        await lane.stop()
        server.stop()


async def test_servers_are_rotated(nats_server):
    dead = free_port()
    lane = FastLane([f"nats://127.0.0.1:{dead}", nats_server.url], RouteTable(), RouterState(),
                    reconnect_wait=0.05)
    try:
        async with asyncio.timeout(5):
            await lane.start()
        assert lane.connected_server == f"127.0.0.1:{nats_server.port}"
    finally:
        await lane.stop()


async def test_burst_of_50k_all_applied(lane, nats_server):
    n = 50_000
    nc = await nats.connect(nats_server.url, pending_size=64 * 1024 * 1024)
    try:
        for i in range(n):
            await nc.publish("router.register", reg_payload(i))
        await nc.flush(timeout=30)
    finally:
        await nc.close()
    await eventually(lambda: len(lane.table) == n, timeout=30)
    assert lane.state.metrics.registrations == n and lane.table.endpoint_count() == n
    assert lane.table.lookup(f"app{n - 1}.burst.local") is not None


# ---- RouteBus wiring -------------------------------------------------------------------------------------------

async def test_route_bus_uses_the_fast_lane_and_greets_on_nats_py(nats_server, client):
    config = RouterConfig(nats=NatsSettings(hosts=(NatsServer("127.0.0.1", nats_server.port),)), ip="10.9.8.7")
    bus = RouteBus(config, RouteTable(), RouterState(), reconnect_wait=0.05)
    await bus.start()
    try:
        assert bus.lane is not None and bus.connected and bus.state.nats_connected
        await client.publish("router.register", b'{"host":"10.0.0.1","port":80,"uris":["lane.com"]}')
        await eventually(lambda: bus.table.lookup("lane.com") is not None)
        reply = await client.request("router.greet", b"", timeout=2)
        assert json.loads(reply.data)["id"] == bus.state.id
    finally:
        await bus.stop()
    assert not bus.state.nats_connected


def test_route_bus_uses_the_fast_lane_with_tls_too():
    tls = RouterConfig(nats=NatsSettings(tls_enabled=True))
    bus = RouteBus(tls, RouteTable(), RouterState())
    assert bus.use_fastlane and bus.tls_context is not None
    assert RouteBus(RouterConfig(), RouteTable(), RouterState()).use_fastlane
    assert not RouteBus(RouterConfig(), RouteTable(), RouterState(), fastlane=False).use_fastlane


@pytest.mark.parametrize("payload", [
    json.dumps(FULL).encode(), b'{"host":"10.0.0.1","port":8080,"uris":["b.com"]}',
    b'{"host":null,"port":null,"tls_port":null,"uris":null,"tags":null,"options":{"loadbalancing":null},'
    b'"route_service_url":null,"protocol":null,"endpoint_updated_at_ns":null}',
    b'{"uris":["a.com"],"route_service_url":"","options":{"loadbalancing":"round-robin"},"extra":1}',
])
def test_strict_first_decode_equals_registration(payload):
    from portico.bus.messages import decode_registration_strict_first
    fast, ref = decode_registration_strict_first(payload), decode_registration(payload)
    for name in ref.__struct_fields__:
        if name != "options":
            assert getattr(fast, name) == getattr(ref, name), name
    assert (fast.options is None) == (ref.options is None)
    if ref.options is not None:
        assert fast.options.loadbalancing == ref.options.loadbalancing
    assert fast.address == ref.address and fast.tls == ref.tls


@pytest.mark.parametrize("payload", [
    b"not json", b"", b"[]", b'{"port":70000}', b'{"port":"80"}', b'{"private_instance_index":3}',
    b'{"route_service_url":"http://rs"}', b'{"protocol":"http3"}', b'{"tags":{"a":1}}',
])
def test_strict_first_decode_errors_equal_registration(payload):
    import msgspec

    from portico.bus.messages import decode_registration_fast, decode_registration_strict_first
    with pytest.raises(msgspec.DecodeError) as strict:
        decode_registration_strict_first(payload)
    with pytest.raises(msgspec.DecodeError) as ref:
        decode_registration_fast(payload)
    assert str(strict.value) == str(ref.value)


async def test_one_clock_reading_per_socket_read():
    """Every registration of one read gets the same timestamp object: one clock call, one float per read."""
    from portico.bus.fastlane import _LaneProtocol

    readings: list[float] = []

    def clock() -> float:
        readings.append(float(len(readings) + 1000))
        return readings[-1]

    lane = FastLane(["nats://127.0.0.1:1"], RouteTable(), RouterState(), clock=clock)
    proto = _LaneProtocol(lane)
    frames = b"".join(b"MSG router.register 1 %d\r\n%b\r\n" % (len(p), p) for p in map(reg_payload, range(3)))
    proto.data_received(frames)
    eps = [lane.table.lookup(f"app{i}.burst.local").endpoints[0] for i in range(3)]
    assert len(readings) == 1 and all(ep.updated_at is eps[0].updated_at for ep in eps)
    assert lane.applier.batch_time is None       # not left behind for payloads from elsewhere
    proto.data_received(b"MSG router.register 1 %d\r\n%b\r\n" % (len(reg_payload(7)), reg_payload(7)))
    assert len(readings) == 2 and lane.table.lookup("app7.burst.local").endpoints[0].updated_at == 1001.0
