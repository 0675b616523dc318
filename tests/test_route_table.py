"""The pure route table (portico.routes): keys, matching, registration, pruning, balancing, snapshot."""

from __future__ import annotations

import json

import pytest

from portico.routes import (
    LEAST_CONNECTION,
    ROUND_ROBIN,
    Endpoint,
    Pool,
    RouteTable,
    host_without_port,
    make_endpoint,
    new_pool,
    split_route,
)


def ep(address: str, **kw) -> Endpoint:
    host, port = address.rsplit(":", 1)
    return make_endpoint(host, int(port), **kw)


def served(table: RouteTable, host: str, path: str = "") -> str | None:
    pool = table.lookup(host, path)
    return pool.key if pool is not None else None


# ---- keys ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("uri, expected", [
    ("Test.A.com", ("test.a.com", "")),
    ("test.a.com/", ("test.a.com", "")),
    ("a.com/Foo/Bar/", ("a.com", "/foo/bar")),
    ("a.com/foo?x=1", ("a.com", "/foo")),
    ("a.com/foo/?x=/y", ("a.com", "/foo")),
    ("a.com?x", ("a.com", "")),
    ("*.Example.com", ("*.example.com", "")),
    ("a.com//", ("a.com", "")),
    ("a.com/foo//", ("a.com", "/foo")),
])
def test_split_route(uri, expected):
    assert split_route(uri) == expected


def test_keys_normalised_on_register_and_unregister():
    table = RouteTable()
    table.register("Test.A.com/API/?v=1", ep("10.0.0.1:80"))
    assert list(table.snapshot()) == ["test.a.com/api"]
    assert served(table, "test.a.com", "/api") == "test.a.com/api"
    assert table.unregister("TEST.a.com/Api/", "10.0.0.1:80") is not None
    assert table.snapshot() == {} and len(table) == 0


@pytest.mark.parametrize("uri, path", [("unix://", "/"), ("a.com//", "/"), ("a.com/foo//", "/foo/")])
def test_a_route_with_doubled_trailing_slashes_is_found_by_its_own_key(uri, path):
    # found by the fuzzer: `unix://` was stored under the context path "/", which no request path can be
    # (a request's trailing slash is trimmed before the lookup), so the route could never be reached
    table = RouteTable()
    table.register(uri, ep("10.0.0.1:80"))
    host, _ = split_route(uri)
    assert table.lookup(host, path) is not None
    assert table.unregister(uri, "10.0.0.1:80") is not None and len(table) == 0


def test_host_without_port():
    assert host_without_port("a.com:8080") == "a.com"
    assert host_without_port("a.com") == "a.com"
    assert host_without_port("[::1]:8080") == "[::1]"


# ---- matching ------------------------------------------------------------------------------------------------

def test_longest_prefix_on_segment_boundaries():
    table = RouteTable()
    table.register("a.com", ep("10.0.0.1:80"))
    table.register("a.com/foo", ep("10.0.0.2:80"))
    table.register("a.com/foo/bar", ep("10.0.0.3:80"))
    assert served(table, "a.com", "/foo") == "a.com/foo"
    assert served(table, "a.com", "/foo/") == "a.com/foo"
    assert served(table, "a.com", "/foo/baz") == "a.com/foo"
    assert served(table, "a.com", "/foo/bar/x/y") == "a.com/foo/bar"
    assert served(table, "a.com", "/foobar") == "a.com"
    assert served(table, "a.com", "/") == "a.com"
    assert served(table, "a.com", "") == "a.com"


def test_path_route_without_root_route():
    table = RouteTable()
    table.register("a.com/foo", ep("10.0.0.2:80"))
    assert served(table, "a.com", "/foo/bar") == "a.com/foo"
    assert served(table, "a.com", "/foobar") is None
    assert served(table, "a.com", "/") is None
    assert served(table, "b.com", "/foo") is None


def test_wildcards_nearest_first_and_exact_beats_wildcard():
    table = RouteTable()
    table.register("*.c.com", ep("10.0.0.1:80"))
    table.register("*.b.c.com", ep("10.0.0.2:80"))
    table.register("a.b.c.com", ep("10.0.0.3:80"))
    assert served(table, "a.b.c.com") == "a.b.c.com"
    assert served(table, "x.b.c.com") == "*.b.c.com"
    assert served(table, "y.x.b.c.com") == "*.b.c.com"
    assert served(table, "x.c.com") == "*.c.com"
    assert served(table, "c.com") is None
    table.unregister("*.b.c.com", "10.0.0.2:80")
    assert served(table, "x.b.c.com") == "*.c.com"


def test_wildcard_with_path_and_exact_host_miss_falls_back():
    table = RouteTable()
    table.register("*.a.com/api", ep("10.0.0.1:80"))
    table.register("x.a.com/other", ep("10.0.0.2:80"))
    assert served(table, "x.a.com", "/other/1") == "x.a.com/other"
    assert served(table, "x.a.com", "/api/1") == "*.a.com/api"   # exact host has no matching path
    assert served(table, "x.a.com", "/nope") is None


# ---- registration --------------------------------------------------------------------------------------------

def test_register_replaces_same_address_and_refreshes():
    table = RouteTable()
    first = table.register("a.com", ep("10.0.0.1:80", app_id="x", updated_at=1.0))
    first.active = 2
    same = table.register("a.com", ep("10.0.0.1:80", app_id="x", updated_at=5.0))
    assert same is first and first.updated_at == 5.0 and first.active == 2   # counters kept
    changed = table.register("a.com", ep("10.0.0.1:80", app_id="y", updated_at=6.0))
    assert changed is not first
    assert table.lookup("a.com").endpoints == (changed,)
    table.register("a.com", ep("10.0.0.2:80"))
    assert [e.address for e in table.lookup("a.com").endpoints] == ["10.0.0.1:80", "10.0.0.2:80"]
    assert len(table) == 1 and table.endpoint_count() == 2


@pytest.mark.parametrize("others", [0, 2])   # a one-endpoint pool holds the endpoint itself, bigger ones a tuple
def test_an_unchanged_re_registration_only_renews_the_kept_endpoint(others):
    table = RouteTable()
    for i in range(others):
        table.register("a.com", ep(f"10.0.0.{i + 2}:80"))
    tags = {"component": "route-emitter"}
    kept = table.register("a.com", ep("10.0.0.1:80", app_id="x", tags=tags, updated_at=1.0, updated_at_ns=1))
    kept.active, kept.benched_until = 3, 9.0
    generation, count = table.generation, table.endpoint_count()
    pool = table.lookup("a.com")
    assert pool.refresh(ep("10.0.0.9:80")) is None                       # a new address: for put
    assert pool.refresh(ep("10.0.0.1:80", app_id="y")) is None           # a changed registration: for put
    again = ep("10.0.0.1:80", app_id="x", tags=dict(tags), updated_at=7.0, updated_at_ns=7)
    assert table.register("a.com", again) is kept
    assert (kept.updated_at, kept.updated_at_ns, kept.active, kept.benched_until, kept.app_id) == (7.0, 7, 3, 9.0, "x")
    assert table.endpoint_count() == count == others + 1 and len(pool) == others + 1
    assert table.generation == generation + 1 and kept in pool.endpoints and again not in pool.endpoints


def test_unregister():
    table = RouteTable()
    table.register("a.com", ep("10.0.0.1:80"))
    table.register("a.com", ep("10.0.0.2:80"))
    table.register("a.com/x", ep("10.0.0.1:80"))
    generation = table.generation
    assert table.unregister("a.com", "10.0.0.9:80") is None and table.generation == generation
    assert table.unregister("nope.com", "10.0.0.1:80") is None
    assert table.unregister("a.com", "10.0.0.1:80").address == "10.0.0.1:80"
    assert [e.address for e in table.lookup("a.com").endpoints] == ["10.0.0.2:80"]
    table.unregister("a.com", "10.0.0.2:80")
    assert served(table, "a.com", "/") is None and served(table, "a.com", "/x") == "a.com/x"
    table.unregister("a.com/x", "10.0.0.1:80")
    assert len(table) == 0 and table.snapshot() == {}


def test_load_balancing_option_sets_pool_algorithm():
    table = RouteTable(default_algorithm=ROUND_ROBIN)
    table.register("a.com", ep("10.0.0.1:80"))
    assert table.lookup("a.com").algorithm == ROUND_ROBIN
    table.register("a.com", ep("10.0.0.2:80", load_balancing_algorithm=LEAST_CONNECTION))
    assert table.lookup("a.com").algorithm == LEAST_CONNECTION
    table.register("b.com", ep("10.0.0.2:80", load_balancing_algorithm="bogus"))
    assert table.lookup("b.com").algorithm == ROUND_ROBIN



def test_a_new_plain_host_is_made_as_any_route():
    """The new-route shortcut (a pool made with its endpoint) leaves the table as the general path does."""
    fast = RouteTable(default_algorithm=LEAST_CONNECTION)
    general = RouteTable(default_algorithm=LEAST_CONNECTION)
    for table, uri in ((fast, "new.com"), (general, "new.com/")):     # a trailing / takes the general path
        before = table.generation
        first = ep("10.0.0.1:80", load_balancing_algorithm=ROUND_ROBIN)
        assert table.register(uri, first) is first
        assert table.register(" New.COM ", ep("10.0.0.1:80", load_balancing_algorithm=ROUND_ROBIN)) is first
        table.register("plain.com", ep("10.0.0.2:80", load_balancing_algorithm="bogus"))
        assert table.lookup("new.com").endpoints == (first,)
        assert table.lookup("new.com").algorithm == ROUND_ROBIN
        assert table.lookup("plain.com").algorithm == LEAST_CONNECTION     # no valid option: the default
        assert len(table) == 2 and table.endpoint_count() == 2 and table.generation == before + 3
    assert fast.snapshot() == general.snapshot()

# ---- pruning -------------------------------------------------------------------------------------------------

def test_ttl_for():
    table = RouteTable(droplet_stale_threshold=120)
    assert table.ttl_for(30) == 30 and table.ttl_for(120) == 120
    assert table.ttl_for(121) == 120 and table.ttl_for(0) == 120 and table.ttl_for(-1) == 120
    assert table.ttl_for(None) == 120


def test_prune_by_ttl_per_endpoint_and_tls_never():
    table = RouteTable(droplet_stale_threshold=120)
    table.register("a.com", ep("10.0.0.1:80", ttl=table.ttl_for(0), updated_at=0))
    table.register("a.com", ep("10.0.0.2:80", ttl=table.ttl_for(10), updated_at=0))
    table.register("a.com", ep("10.0.0.3:443", tls=True, ttl=120, updated_at=0))
    table.register("b.com", ep("10.0.0.2:80", ttl=table.ttl_for(10), updated_at=0))
    assert table.prune(10.0) == []                          # exactly at the TTL: kept
    removed = table.prune(10.5)
    assert sorted((k, e.address) for k, e in removed) == [("a.com", "10.0.0.2:80"), ("b.com", "10.0.0.2:80")]
    assert served(table, "b.com") is None                   # empty pool is gone
    assert [e.address for _, e in table.prune(121)] == ["10.0.0.1:80"]
    assert table.prune(1e9) == []
    assert [e.address for e in table.lookup("a.com").endpoints] == ["10.0.0.3:443"]


def test_refresh_all():
    table = RouteTable()
    table.register("a.com", ep("10.0.0.1:80", updated_at=0))
    table.register("*.b.com/x", ep("10.0.0.2:80", updated_at=0))
    table.refresh_all(500.0)
    assert all(e.updated_at == 500.0 for p in table.pools() for e in p.endpoints)
    assert table.prune(600.0) == []


# ---- balancing -----------------------------------------------------------------------------------------------

def pool_of(n: int, algorithm: str = ROUND_ROBIN) -> Pool:
    pool = new_pool("a.com", "", algorithm)
    for i in range(n):
        pool.put(ep(f"10.0.0.{i}:80"))
    return pool


def test_round_robin_cycles_through_all():
    pool = pool_of(3)
    picks = [pool.pick(0.0).address for _ in range(9)]
    assert sorted(set(picks)) == ["10.0.0.0:80", "10.0.0.1:80", "10.0.0.2:80"]
    assert picks[:3] == picks[3:6] == picks[6:]
    assert Pool("x").pick(0.0) is None


def test_round_robin_skips_excluded():
    pool = pool_of(3)
    first = pool.pick(0.0)
    second = pool.pick(0.0, exclude=(first,))
    third = pool.pick(0.0, exclude=(first, second))
    assert len({first, second, third}) == 3
    assert pool.pick(0.0, exclude=(first, second, third)) is None


def test_least_connection_prefers_fewest_active():
    pool = pool_of(3, LEAST_CONNECTION)
    eps = pool.endpoints
    eps[0].active, eps[1].active, eps[2].active = 5, 1, 3
    assert pool.pick(0.0) is eps[1]
    eps[1].active = 9
    assert pool.pick(0.0) is eps[2]
    assert pool.pick(0.0, exclude=(eps[2],)) is eps[0]


def test_benched_endpoints_skipped_until_all_benched():
    for algorithm in (ROUND_ROBIN, LEAST_CONNECTION):
        pool = pool_of(3, algorithm)
        eps = pool.endpoints
        eps[0].benched_until = eps[1].benched_until = 100.0
        assert {pool.pick(50.0) for _ in range(6)} == {eps[2]}
        eps[2].benched_until = 100.0
        assert pool.pick(50.0) in eps                         # all benched: try them anyway
        assert pool.pick(150.0) in eps                        # bench over
        eps[2].benched_until = 0.0
        assert pool.pick(50.0) is eps[2]


def test_max_conns():
    for algorithm in (ROUND_ROBIN, LEAST_CONNECTION):
        pool = pool_of(2, algorithm)
        eps = pool.endpoints
        eps[0].active = 2
        assert {pool.pick(0.0, max_conns=2) for _ in range(4)} == {eps[1]}
        assert not pool.all_full(2)
        eps[1].active = 2
        assert pool.pick(0.0, max_conns=2) is None and pool.all_full(2)
        assert pool.pick(0.0, max_conns=0) is not None and not pool.all_full(0)


def test_sticky_lookups():
    pool = Pool("a.com")
    pool.put(ep("10.0.0.1:80", app_id="app", private_instance_id="iid-1", private_instance_index="0"))
    pool.put(ep("10.0.0.2:80", app_id="app", private_instance_id="iid-2", private_instance_index="1"))
    assert pool.by_instance_id("iid-2").address == "10.0.0.2:80"
    assert pool.by_instance_id("nope") is None
    assert pool.by_app_instance("app", "0").address == "10.0.0.1:80"
    assert pool.by_app_instance("app", "7") is None


# ---- snapshot ------------------------------------------------------------------------------------------------

def test_snapshot_json_shape():
    table = RouteTable(droplet_stale_threshold=120)
    table.register("test.a.com", ep("10.90.2.103:9100", ttl=120))
    table.register("*.b.com/x", ep("10.0.0.2:443", tls=True, ttl=30, tags={"component": "web"},
                                   route_service_url="https://rs", isolation_segment="seg",
                                   private_instance_id="iid", server_cert_domain_san="san",
                                   load_balancing_algorithm=LEAST_CONNECTION, protocol="http2",
                                   availability_zone="z1"))
    snap = json.loads(json.dumps(table.snapshot()))
    assert snap["test.a.com"] == [{"address": "10.90.2.103:9100", "availability_zone": "", "protocol": "http1",
                                   "tls": False, "ttl": 120, "tags": None}]
    assert snap["*.b.com/x"] == [{
        "address": "10.0.0.2:443", "availability_zone": "z1", "protocol": "http2", "tls": True, "ttl": 30,
        "tags": {"component": "web"}, "route_service_url": "https://rs", "isolation_segment": "seg",
        "private_instance_id": "iid", "server_cert_domain_san": "san",
        "load_balancing_algorithm": "least-connection",
    }]


def test_cf_headers():
    plain = ep("10.0.0.1:80")
    assert plain.cf_headers == b"X-CF-ApplicationID: \r\nX-CF-InstanceIndex: \r\nX-CF-InstanceID: 10.0.0.1:80\r\n"
    full = ep("10.0.0.1:80", app_id="app\r\nEvil: 1", private_instance_index="2", private_instance_id="iid")
    assert full.cf_headers == (b"X-CF-ApplicationID: app  Evil: 1\r\nX-CF-InstanceIndex: 2\r\n"
                               b"X-CF-InstanceID: iid\r\n")


def test_lookup_takes_a_raw_request_target():
    """The proxy hands over the raw target; the table cuts the query and lower-cases only when paths exist."""
    table = RouteTable()
    foo = Endpoint("10.0.0.1", 1)
    root = Endpoint("10.0.0.2", 2)
    table.register("a.com/foo", foo)
    table.register("a.com", root)
    assert table.lookup("a.com", b"/FOO/bar?x=/foo").endpoints == (foo,)
    assert table.lookup("a.com", b"/foobar?q=1").endpoints == (root,)
    assert table.lookup("a.com", b"*").endpoints == (root,)


def test_empty_pool_kept_until_empty_pool_timeout():
    table = RouteTable(120.0, keep_empty_for=10.0)
    e = Endpoint("10.0.0.1", 1, updated_at=100.0)
    table.register("kept.com", e)
    table.unregister("kept.com", e.address)
    pool = table.lookup("kept.com")
    assert pool is not None and not pool.endpoints          # 503 no_endpoints, not 404
    table.prune(105.0)
    assert table.lookup("kept.com") is pool
    table.prune(111.0)
    assert table.lookup("kept.com") is None and table.route_count == 0
    plain = RouteTable(120.0)
    plain.register("gone.com", Endpoint("10.0.0.1", 1))
    plain.unregister("gone.com", "10.0.0.1:1")
    assert plain.lookup("gone.com") is None


def test_pick_local_prefers_the_zone():
    from portico.routes.pool import Pool

    pool = Pool("a.com")
    near, far = Endpoint("10.0.0.1", 1, availability_zone="z1"), Endpoint("10.0.0.2", 2, availability_zone="z2")
    pool.put(near)
    pool.put(far)
    assert {pool.pick_local(0.0, "z1").address for _ in range(5)} == {near.address}
    near.benched_until = 10.0
    assert pool.pick_local(0.0, "z1") is None              # the caller then picks over every zone
