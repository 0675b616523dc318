"""What keeps a 1,000,000-route table lean: shared values, structures the garbage collector never walks, and a
bound on the bytes a registration leaves in the table (measured with tracemalloc, so it cannot be timing)."""

from __future__ import annotations

import gc
import json
import tracemalloc
import uuid

import pytest

from portico.bus import applier as applier_module
from portico.bus.applier import PayloadApplier
from portico.routes import Endpoint, RouteTable, make_endpoint
from portico.state import RouterState

MAX_BYTES_PER_ROUTE = 375   # measured ~361 B (Python 3.11): key, pool, endpoint, the ids' block (481 with two strs)
MAX_ALLOCATED_PER_ROUTE = 400   # in pymalloc's 16-byte classes: 389 B measured (compiled, pure), a class more fails


def payload(i: int, port: int = 9100) -> bytes:
    """A registration shaped like a route emitter's (unique app guid and instance id per route)."""
    return json.dumps({"host": "10.0.0.1", "port": port, "uris": [f"r{i}.scale.local"], "app": str(uuid.uuid4()),
                       "private_instance_id": str(uuid.uuid4()), "private_instance_index": "0",
                       "tags": {"component": "route-emitter"}}).encode()


def applier() -> PayloadApplier:
    return PayloadApplier(RouteTable(), RouterState().metrics, clock=lambda: 5.0)


def test_endpoints_and_pools_are_never_walked_by_the_garbage_collector():
    apply = applier()
    apply.register(payload(1))
    pool = apply.table.lookup("r1.scale.local")
    assert pool is not None
    ep = pool.endpoints[0]
    assert not gc.is_tracked(ep) and not gc.is_tracked(pool)
    twin = make_endpoint(ep.host, ep.port, app_id=ep.app_id)
    assert ep == ep and ep != twin and len({ep, twin}) == 2      # identity, as the balancer's exclude needs


def test_registrations_share_ports_tags_and_the_time_of_their_read():
    apply = applier()
    now = 1234.5 * 2
    apply.batch_time = now
    apply.register(payload(1, port=61001))
    apply.register(payload(2, port=61001))
    a = apply.table.lookup("r1.scale.local").endpoints[0]
    b = apply.table.lookup("r2.scale.local").endpoints[0]
    assert a.port == 61001 and a.port is b.port                  # one int object, not one per endpoint
    assert a.tags == {"component": "route-emitter"} and a.tags is b.tags
    assert a.updated_at is now and b.updated_at is now           # one float per socket read
    apply.batch_time = None
    apply.register(payload(3))
    assert apply.table.lookup("r3.scale.local").endpoints[0].updated_at == 5.0   # else the clock


def test_a_growing_table_is_frozen_out_of_collections(monkeypatch):
    monkeypatch.setattr(applier_module, "FREEZE_EVERY", 50)
    apply = applier()
    frozen = gc.get_freeze_count()
    for i in range(49):
        apply.register(payload(i))
    assert gc.get_freeze_count() == frozen
    apply.register(payload(49))                                  # the 50th route: what is alive is frozen
    assert gc.get_freeze_count() > frozen
    after_first = gc.get_freeze_count()
    for i in range(50, 99):
        apply.register(payload(i))
    assert gc.get_freeze_count() == after_first                  # the next freeze waits for 50 more routes
    assert len(apply.table) == 99


@pytest.mark.parametrize("uri, key", [
    ("Plain.Example.COM", "plain.example.com"), ("  spaced.example.com ", "spaced.example.com"),
    ("slash.example.com/", "slash.example.com"), ("query.example.com?x=1", "query.example.com"),
    ("path.example.com/API/", "path.example.com/api"), ("*.Wild.example.com", "*.wild.example.com"),
])
def test_the_plain_host_fast_path_keys_routes_as_the_general_one(uri, key):
    table = RouteTable()
    first = table.register(uri, Endpoint("10.0.0.1", 80))
    assert list(table.snapshot()) == [key] and len(table) == 1
    again = table.register(key, Endpoint("10.0.0.1", 80))         # the same route, by its normal form
    assert again is first and len(table) == 1


def test_a_plain_host_next_to_its_context_paths():
    table = RouteTable()
    table.register("a.com/api", Endpoint("10.0.0.1", 1))
    table.register("a.com", Endpoint("10.0.0.2", 2))              # the host already has paths
    assert table.lookup("a.com", "/api/x").endpoints[0].port == 1
    assert table.lookup("a.com", "/other").endpoints[0].port == 2
    assert len(table) == 2


def test_bytes_a_registration_leaves_in_the_table():
    n = 20_000
    payloads = [payload(i) for i in range(n)]
    apply = applier()
    apply.batch_time = 7.0
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for data in payloads:
            apply.register(data)
        per_route = (tracemalloc.get_traced_memory()[0] - before) / n
    finally:
        tracemalloc.stop()
    assert len(apply.table) == n
    print(f"{per_route:.0f} B per route")
    assert per_route <= MAX_BYTES_PER_ROUTE, f"{per_route:.0f} B per route"


def test_allocated_bytes_a_registration_leaves_in_the_table():
    """The same, as the allocator hands it out: pymalloc gives 16-byte size classes, so a field added to a
    Struct that is already at the top of its class costs 16 B a route, not the 8 tracemalloc shows. Every
    block allocated since tracemalloc started and still alive is a registration's (or the table dict's)."""
    n = 20_000
    payloads = [payload(i) for i in range(n)]
    apply = applier()
    apply.batch_time = 7.0
    tracemalloc.start()
    try:
        for data in payloads:
            apply.register(data)
        traces = tracemalloc.take_snapshot().traces
    finally:
        tracemalloc.stop()
    allocated = sum((trace.size + 15) & ~15 for trace in traces) / n
    print(f"{allocated:.0f} B per route allocated")
    # 389 B on Python 3.11: Endpoint 160 (18 fields), the two GUIDs as one 33-B block 80, Pool 48, host 80, the dict's
    # share ~16 (a one-endpoint pool holds its Endpoint itself, no 1-tuple; a Pool has four fields). Resident memory
    # at 100k routes is this plus ~36 B more dict share plus the heap's own overhead: nothing may grow by a size class
    assert allocated <= MAX_ALLOCATED_PER_ROUTE, f"{allocated:.0f} B per route allocated"


def test_the_endpoint_count_is_kept_not_walked():
    """Kept as endpoints come and go (register, replace, unregister, prune, kept-empty routes), equal to a walk."""
    import random

    rng = random.Random(7)
    table = RouteTable(droplet_stale_threshold=120, keep_empty_for=5.0)
    for step in range(3000):
        uri = rng.choice(["a.com", "b.com/x", "*.c.com", "d.com", "d.com/y/z"])
        address = ("10.0.0.1", rng.randrange(1, 6))
        if rng.random() < 0.6:
            table.register(uri, make_endpoint(*address, app_id=rng.choice(["p", "q"]), updated_at=float(step)))
        else:
            table.unregister(uri, f"{address[0]}:{address[1]}")
        if step % 500 == 499:
            table.prune(float(step))
        assert table.endpoint_count() == sum(len(pool.endpoints) for pool in table.pools())


def test_a_one_endpoint_pool_holds_its_endpoint_itself():
    """No 1-tuple for the common route; a tuple only for 0 or 2+ endpoints; `endpoints` is always the tuple view."""
    import sys

    from portico.routes import LEAST_CONNECTION, ROUND_ROBIN, new_pool

    pool = new_pool("a.com", "/api", LEAST_CONNECTION)
    assert pool.members == () and pool.endpoints == () and not pool.members and len(pool) == 0
    assert (pool.key, pool.host, pool.context_path, pool.algorithm) == ("a.com/api", "a.com", "/api", LEAST_CONNECTION)
    one, two = Endpoint("10.0.0.1", 1), Endpoint("10.0.0.2", 2)
    pool.put(one)
    assert pool.members is one and pool.endpoints == (one,) and len(pool) == 1
    pool.put(two)
    assert pool.members == (one, two) and len(pool) == 2
    assert pool.remove(one.address) is one and pool.members is two
    assert pool.remove(two.address) is two and pool.members == ()
    pool.algorithm = ROUND_ROBIN
    assert pool.algorithm == ROUND_ROBIN
    assert sys.getsizeof(pool) <= 48        # four fields: key, members, cursor, traffic
    table = RouteTable(default_algorithm=LEAST_CONNECTION)
    table.register("b.com", one)
    made = table.lookup("b.com")
    assert made is not None and made.members is one and made.algorithm == LEAST_CONNECTION


@pytest.mark.parametrize(("app", "instance", "packed"), [
    (str(uuid.uuid4()), str(uuid.uuid4()), True),                      # what route emitters send
    (str(uuid.uuid4()), "5a6b7c8d-0e1f-1a2b-3c4d-5e6f", True),          # Diego's short instance GUID
    (str(uuid.uuid4()).upper(), str(uuid.uuid4()), False),              # not canonical: kept as sent
    ("app1", "", False),
    ("", "", True),
])
def test_a_registrations_ids_are_kept_in_one_block_and_read_back_exactly(app, instance, packed):
    import sys

    apply = applier()
    apply.register(json.dumps({"host": "10.0.0.1", "port": 9100, "uris": ["ids.scale.local"], "app": app,
                               "private_instance_id": instance, "private_instance_index": "0"}).encode())
    ep = apply.table.lookup("ids.scale.local").endpoints[0]
    assert (ep.app_id, ep.private_instance_id) == (app, instance)
    assert (type(ep.guids) is bytes) is packed
    assert sys.getsizeof(ep) <= 160                              # 18 fields: 160 B in pymalloc, no GC header
    if packed:
        assert sys.getsizeof(ep.guids) <= 80                     # one object for both ids, not two 96-B strings
    json_ids = ep.to_json().get("private_instance_id", "")
    assert json_ids == instance
