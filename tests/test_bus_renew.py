"""A re-registration through the feed's path (apply_registration -> RouteTable.register_fields / renew) changes
the table exactly as building the Endpoint and `register`ing it does; only an unchanged one builds nothing."""

from __future__ import annotations

import json

import pytest

from portico.bus.messages import apply_registration, registration_to_endpoint, strict_decode
from portico.routes import LEAST_CONNECTION, ROUND_ROBIN, RouteTable
from portico.routes.table import normal_uri


def reg(uris, port=80, **kw):
    return strict_decode(json.dumps({"host": "10.0.0.1", "port": port, "uris": uris, "app": "app-1",
                                     "private_instance_id": "iid-1", "private_instance_index": "0",
                                     "tags": {"component": "route-emitter"}, **kw}).encode())


def by_reference(table: RouteTable, message, now: float):
    """What the feed did before: one Endpoint built, `register`ed for every uri."""
    endpoint = registration_to_endpoint(message, table, now)
    for uri in message.uris:
        if uri:
            table.register(uri, endpoint)


ROUTES = [["a.com"], ["A.Com "], ["a.com/x"], ["*.w.com"], ["b.com", "c.com/y", "*.d.com"], ["e.com", ""]]


@pytest.mark.parametrize("uris", ROUTES)
def test_an_unchanged_re_registration_renews_the_kept_endpoint(uris):
    table = RouteTable()
    first = apply_registration(table, reg(uris), 1.0)
    pools = [table.lookup(*_request(u)) for u in uris if u]
    kept = [p.members for p in pools]
    assert all(k is first for k in kept)        # one Endpoint shared by every uri of the message
    first.active, first.benched_until = 2, 5.0
    generation, count, routes = table.generation, table.endpoint_count(), len(table)
    again = apply_registration(table, reg(uris, endpoint_updated_at_ns=9), 3.0)
    assert again is first
    assert [p.members for p in pools] == kept and (first.updated_at, first.updated_at_ns) == (3.0, 9)
    assert (first.active, first.benched_until) == (2, 5.0)
    assert table.endpoint_count() == count and len(table) == routes
    assert table.generation == generation + len(pools)


@pytest.mark.parametrize("uris", ROUTES)
@pytest.mark.parametrize("change", [{"app": "app-2"}, {"port": 81}, {"tags": None}, {"stale_threshold_in_seconds": 30},
                                    {"options": {"loadbalancing": LEAST_CONNECTION}}, {"tls_port": 443}])
def test_the_feed_path_changes_the_table_as_building_and_registering_does(uris, change):
    fed, reference = RouteTable(), RouteTable()
    messages = [reg(uris), reg(["other.com", *uris[:1]], port=90), reg(uris), reg(uris, **change), reg(uris, **change)]
    for now, message in enumerate(messages):
        apply_registration(fed, message, float(now))
        by_reference(reference, message, float(now))
        assert fed.snapshot() == reference.snapshot()
        assert (fed.generation, fed.endpoint_count(), len(fed)) == \
            (reference.generation, reference.endpoint_count(), len(reference))
        for pool in fed.pools():
            twin = reference.lookup(*_request(pool.key))
            assert pool.algorithm == twin.algorithm
            assert [(e.updated_at, e.updated_at_ns) for e in pool.endpoints] == \
                [(e.updated_at, e.updated_at_ns) for e in twin.endpoints]


def test_a_renewed_endpoint_sets_its_pools_algorithm_as_register_does():
    table = RouteTable(default_algorithm=ROUND_ROBIN)
    apply_registration(table, reg(["a.com"], options={"loadbalancing": LEAST_CONNECTION}), 1.0)
    apply_registration(table, reg(["a.com"], port=81, options={"loadbalancing": ROUND_ROBIN}), 1.0)
    assert table.lookup("a.com").algorithm == ROUND_ROBIN
    apply_registration(table, reg(["a.com"], options={"loadbalancing": LEAST_CONNECTION}), 2.0)   # unchanged
    assert table.lookup("a.com").algorithm == LEAST_CONNECTION and len(table.lookup("a.com")) == 2


@pytest.mark.parametrize("uri, key", [("a.com", "a.com"), ("A.com", "a.com"), (" a.com\t", "a.com"),
                                      ("Ä.com", "ä.com"), ("a.com/P", "a.com/p"), ("a\x00.com", "a\x00.com"),
                                      ("~.com", "~.com"), ("", "")])
def test_normal_uri_is_strip_and_lower(uri, key):
    assert normal_uri(uri) == uri.strip().lower() == key


def _request(key: str) -> tuple[str, str]:
    """A request that reaches the route `key` (a wildcard's by a name under it)."""
    key = key.strip().lower()
    host, _, path = key.partition("/")
    return (host.replace("*.", "x.", 1), "/" + path if path else "")


def test_interleaved_hosts_ports_and_indexes_give_the_right_shared_values(monkeypatch):
    """The feed remembers the last host and instance index; other hosts in between, and the address cache starting
    over, still give each endpoint its own address and index (shared objects per value)."""
    from portico.bus import messages

    monkeypatch.setattr(messages, "_ADDRESSES_LIMIT", 2)
    table = RouteTable()
    seen = {}
    for i, (host, port, index) in enumerate([("10.0.0.1", 80, "0"), ("10.0.0.2", 80, "1"), ("10.0.0.1", 81, "0"),
                                             ("10.0.0.3", 82, "2"), ("10.0.0.1", 80, "1"), ("10.0.0.2", 80, "0")]):
        message = strict_decode(json.dumps({"host": host, "port": port, "uris": [f"r{i}.com"],
                                            "private_instance_index": index}).encode())
        endpoint = apply_registration(table, message, 1.0)
        assert (endpoint.address, endpoint.host, endpoint.port, endpoint.private_instance_index) == \
            (f"{host}:{port}", host, port, index)
        first = seen.setdefault((host, port, index), endpoint)
        assert endpoint.address is first.address or (host, port) != (first.host, first.port)
    ones = [table.lookup(f"r{i}.com").members for i in (0, 2)]
    assert ones[0].host is ones[1].host and ones[0].private_instance_index is ones[1].private_instance_index


def test_strict_decode_tags_follow_each_message_not_the_last():
    """strict_decode reuses the last message's checked tags only when the JSON is the same."""
    import msgspec

    from portico.bus.messages import decode_registration, decode_registration_strict_first

    a, b = b'{"component":"route-emitter"}', b'{"component":"other","x":"y"}'
    for tags in [a, a, b, b'{"component":1}', a, b"null", None, b, b'{"component":"other","x":"y"}', b"{}", a]:
        payload = b'{"host":"h","port":1' + (b',"tags":' + tags if tags is not None else b"") + b"}"
        try:
            expected = decode_registration(payload).tags or None
        except Exception:
            with pytest.raises(msgspec.DecodeError):
                decode_registration_strict_first(payload)
            continue
        got = decode_registration_strict_first(payload).tags
        assert got == expected and (got is None or isinstance(got, dict))


def test_the_feeds_decode_path_makes_the_same_table_as_decode_registration():
    """PayloadApplier.register (strict_fields, checked_tags, apply_fields) against decode_registration +
    apply_registration, message for message: the same endpoints, and the same messages dropped as malformed."""
    from portico.bus.applier import PayloadApplier
    from portico.bus.messages import decode_registration
    from portico.state import RouterState

    payloads = [
        b'{"host":"10.0.0.1","port":80,"uris":["a.com"],"tags":{"component":"route-emitter"},"app":"g1"}',
        b'{"host":"10.0.0.1","port":81,"uris":["a.com","b.com"],"tags":{"component":"route-emitter"}}',
        b'{"host":"10.0.0.2","port":80,"uris":["c.com"],"tags":{"component":1}}',         # bad tags: dropped
        b'{"host":"10.0.0.2","port":80,"uris":["c.com"],"tags":null,"app":null}',          # nulls: accepted
        b'{"host":"10.0.0.3","port":80,"uris":["d.com"],"tags":{}}',
        b'{"host":"10.0.0.3","port":80,"uris":["e.com"],"tags":{"a":"b","c":"d"}}',
        b'{"host":"10.0.0.3","port":80,"uris":["e.com"],"tags":{"a":"b","c":"d"},"port":"80"}',  # bad port
        b'{"host":"10.0.0.4","port":80,"uris":[],"tags":{"a":"b"}}',
        b'{"host":"10.0.0.4","tls_port":443,"uris":["f.com"],"options":{"loadbalancing":"least-connection"}}',
        b'{"host":"10.0.0.4","port":80,"uris":["A.com"],"stale_threshold_in_seconds":30}',
        b"not json",
    ]
    fed = RouteTable()
    state = RouterState()
    applier = PayloadApplier(fed, state.metrics, clock=lambda: 7.0)
    reference = RouteTable()
    dropped = 0
    for payload in payloads:
        applier.register(payload)
        try:
            apply_registration(reference, decode_registration(payload), 7.0)
        except Exception:
            dropped += 1
    assert state.metrics.malformed_messages == dropped == 3
    assert state.metrics.registrations == len(payloads) - dropped
    assert fed.snapshot() == reference.snapshot() and fed.route_count == reference.route_count == 6
    tags = [ep.tags for pool in fed.pools() for ep in pool.endpoints]
    assert tags.count({"component": "route-emitter"}) == 3 and {"a": "b", "c": "d"} in tags


@pytest.mark.parametrize("uri", ["a.com", "app-1.apps.internal", "", "A.com", " a.com", "a.com/path", "a.com?x=1",
                                 "*.a.com", "ä.com", "a.com\t", "x*y.com"])
def test_plain_host_is_the_uri_only_when_the_table_keys_it_as_it_is(uri):
    """plain_host, the feed's shortcut past normal_uri and split_route: the uri itself or None, never a wrong key."""
    from portico.routes import table as table_module
    from portico.routes.table import normal_uri, plain_host
    from portico.routes.uri import split_route

    compiled = not table_module.__file__.endswith(".py")

    found = plain_host(uri)
    if found is not None:
        assert found is uri and normal_uri(uri) == uri and split_route(uri) == (uri, "") and not uri.startswith("*.")
    plain = uri in ("a.com", "app-1.apps.internal", "")
    assert (found is not None) == (plain and compiled)
    if uri:
        table = RouteTable()
        endpoint = apply_registration(table, reg([uri]), 1.0)
        host, path = split_route(normal_uri(uri))
        pool = table.lookup("x." + host[2:] if host.startswith("*.") else host, path)
        assert endpoint is not None and pool is not None and list(pool.endpoints) == [endpoint]
