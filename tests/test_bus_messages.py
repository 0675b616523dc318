"""Decoding and encoding gorouter's NATS messages (pure, no NATS)."""

from __future__ import annotations

import json

import pytest

from portico.bus.messages import (
    MalformedMessage,
    Options,
    Registration,
    apply_registration,
    apply_unregistration,
    decode_registration,
    encode_registration,
    registration_to_endpoint,
    start_message,
)
from portico.config.settings import RouterConfig
from portico.routes import RouteTable
from portico.state import RouterState

FULL = {
    "host": "10.0.0.5", "port": 9100, "tls_port": 0, "uris": ["test.a.com", "a.com/foo"], "app": "app-guid",
    "private_instance_id": "iid-1", "private_instance_index": "2", "server_cert_domain_san": "san.a.com",
    "route_service_url": "https://rs.example.com", "tags": {"component": "web"},
    "stale_threshold_in_seconds": 30, "isolation_segment": "seg", "protocol": "http2",
    "availability_zone": "z1", "endpoint_updated_at_ns": 1700000000000000000,
    "options": {"loadbalancing": "least-connection"},
}


def enc(obj) -> bytes:
    return json.dumps(obj).encode()


def test_story_message_decodes_with_defaults():
    reg = decode_registration(b'{"host":"10.254.90.233","port":9528,"uris":["test.a.com"]}')
    assert (reg.host, reg.port, reg.uris) == ("10.254.90.233", 9528, ["test.a.com"])
    assert reg.tls_port == 0 and reg.app == "" and reg.private_instance_index == ""
    assert reg.tags is None and reg.options is None and reg.stale_threshold_in_seconds == 0
    assert reg.address == "10.254.90.233:9528" and not reg.tls


def test_every_field_decodes():
    reg = decode_registration(enc(FULL))
    assert reg.app == "app-guid" and reg.private_instance_id == "iid-1" and reg.private_instance_index == "2"
    assert reg.server_cert_domain_san == "san.a.com" and reg.route_service_url == "https://rs.example.com"
    assert reg.tags == {"component": "web"} and reg.stale_threshold_in_seconds == 30
    assert reg.isolation_segment == "seg" and reg.protocol == "http2" and reg.availability_zone == "z1"
    assert reg.endpoint_updated_at_ns == 1700000000000000000
    assert reg.options == Options(loadbalancing="least-connection")


def test_unknown_fields_ignored_and_missing_fields_default():
    reg = decode_registration(b'{"host":"h","uris":["a.com"],"future_field":{"x":[1,2]},"options":{"new":1}}')
    assert reg.port == 0 and reg.address == "h:0"
    assert decode_registration(b"{}") == Registration()


def test_null_means_missing():
    reg = decode_registration(b'{"host":"h","port":1,"uris":null,"tags":null,"app":null,"options":null,'
                              b'"private_instance_index":null,"tls_port":null,"protocol":null}')
    assert reg.uris == [] and reg.tags is None and reg.app == "" and reg.options is None
    assert reg.private_instance_index == "" and reg.tls_port == 0 and reg.protocol == ""


@pytest.mark.parametrize("payload, fragment", [
    (b'{"host":"h","private_instance_index":0}', "private_instance_index"),
    (b'{"host":"h","port":"9100"}', "$.port"),
    (b'{"host":"h","port":70000}', "65535"),
    (b'{"host":"h","port":-1}', "$.port"),
    (b'{"host":"h","tls_port":1.5}', "$.tls_port"),
    (b'{"host":7}', "$.host"),
    (b'{"uris":"a.com"}', "$.uris"),
    (b'{"uris":["a.com",3]}', "$.uris[1]"),
    (b'{"tags":{"a":1}}', "$.tags"),
    (b'{"tags":["a"]}', "$.tags"),
    (b'{"stale_threshold_in_seconds":"30"}', "stale_threshold_in_seconds"),
    (b'{"protocol":"http3"}', "protocol"),
    (b'{"options":"round-robin"}', "$.options"),
    (b'{"route_service_url":"http://rs.example.com"}', "https"),
    (b'{"route_service_url":"ftp://x"}', "https"),
    (b"not json", "malformed"),
    (b'{"host":"h",', "truncated"),
    (b"[1,2]", "object"),
    (b'"a string"', "object"),
    (b"", "empty"),
])
def test_malformed_messages_are_rejected_with_one_line_reason(payload, fragment):
    with pytest.raises(MalformedMessage) as info:
        decode_registration(payload)
    reason = str(info.value)
    assert fragment in reason and "\n" not in reason
    assert isinstance(info.value, ValueError)


def test_route_service_url_https_accepted():
    assert decode_registration(b'{"route_service_url":"https://x"}').route_service_url == "https://x"


def test_encode_omits_empty_optional_fields():
    reg = Registration(host="10.254.90.233", port=9528, uris=["test.a.com"])
    assert encode_registration(reg) == b'{"host":"10.254.90.233","port":9528,"uris":["test.a.com"]}'
    full = decode_registration(enc(FULL))
    assert json.loads(encode_registration(full)) == {k: v for k, v in FULL.items() if k != "tls_port"}
    assert decode_registration(encode_registration(full)) == full


def test_registration_to_endpoint_plain_and_tls():
    table = RouteTable(droplet_stale_threshold=120)
    ep = registration_to_endpoint(decode_registration(enc(FULL)), table, now=50.0)
    assert ep.address == "10.0.0.5:9100" and not ep.tls
    assert ep.app_id == "app-guid" and ep.private_instance_index == "2" and ep.private_instance_id == "iid-1"
    assert ep.ttl == 30 and ep.updated_at == 50.0 and ep.protocol == "http2"
    assert ep.load_balancing_algorithm == "least-connection" and ep.tags == {"component": "web"}
    assert ep.updated_at_ns == 1700000000000000000 and ep.availability_zone == "z1"

    tls = registration_to_endpoint(decode_registration(b'{"host":"h","port":80,"tls_port":8443}'), table, 1.0)
    assert tls.tls and tls.port == 8443 and tls.address == "h:8443"
    assert tls.ttl == 120 and tls.protocol == "http1" and tls.load_balancing_algorithm == ""


def test_ttl_only_when_within_droplet_threshold():
    table = RouteTable(droplet_stale_threshold=120)
    too_long = decode_registration(b'{"host":"h","port":1,"stale_threshold_in_seconds":500}')
    assert registration_to_endpoint(too_long, table, 0).ttl == 120
    negative = decode_registration(b'{"host":"h","port":1,"stale_threshold_in_seconds":-5}')
    assert registration_to_endpoint(negative, table, 0).ttl == 120


def test_unknown_load_balancing_value_is_ignored():
    reg = decode_registration(b'{"host":"h","port":1,"options":{"loadbalancing":"random"}}')
    assert registration_to_endpoint(reg, RouteTable(), 0).load_balancing_algorithm == ""


def test_apply_register_and_unregister():
    table = RouteTable()
    reg = decode_registration(b'{"host":"10.0.0.1","port":80,"uris":["A.com","b.com/x/"]}')
    apply_registration(table, reg, 1.0)
    assert table.lookup("a.com").endpoints[0].address == "10.0.0.1:80"
    assert table.lookup("b.com", "/x/y").key == "b.com/x"
    assert apply_unregistration(table, reg) == 2
    assert len(table) == 0 and table.lookup("a.com") is None
    assert apply_unregistration(table, reg) == 0


def test_unregister_tls_uses_tls_port():
    table = RouteTable()
    apply_registration(table, decode_registration(b'{"host":"h","port":80,"tls_port":443,"uris":["a.com"]}'), 0)
    assert table.snapshot()["a.com"][0]["address"] == "h:443"
    apply_unregistration(table, decode_registration(b'{"host":"h","port":80,"tls_port":443,"uris":["a.com"]}'))
    assert table.snapshot() == {}


def test_register_without_uris_or_port():
    table = RouteTable()
    assert apply_registration(table, decode_registration(b'{"host":"h","port":1}'), 0) is None
    assert len(table) == 0
    apply_registration(table, decode_registration(b'{"host":"h","uris":["a.com"]}'), 0)
    assert table.snapshot()["a.com"][0]["address"] == "h:0"


def test_start_message_payload():
    state = RouterState(index=3)
    config = RouterConfig(ip="10.1.2.3", start_response_delay_interval=5.0, droplet_stale_threshold=120.0)
    assert json.loads(start_message(state, config)) == {
        "id": state.id, "hosts": ["10.1.2.3"], "minimumRegisterIntervalInSeconds": 5,
        "pruneThresholdInSeconds": 120,
    }
    assert state.id.startswith("3-")


def test_endpoints_of_one_instance_share_host_port_and_address_objects():
    """Routes of one instance address hold one host, port and address object between them (memory per route)."""
    table = RouteTable()
    eps = [registration_to_endpoint(decode_registration(
        json.dumps({"host": "".join(["10.1.2.", "3"]), "port": 61000 + 1, "uris": [f"r{i}.com"]}).encode()),
        table, 0) for i in range(3)]
    assert eps[0].address == "10.1.2.3:61001" and eps[0].port == 61001
    assert all(ep.host is eps[0].host and ep.port is eps[0].port and ep.address is eps[0].address for ep in eps)
    tls = registration_to_endpoint(decode_registration(b'{"host":"10.1.2.3","port":80,"tls_port":61001}'),
                                   table, 0)
    assert tls.address is eps[0].address and tls.tls   # the same address string, TLS or not
    other = registration_to_endpoint(decode_registration(b'{"host":"10.1.2.3","port":61002}'), table, 0)
    assert other.address == "10.1.2.3:61002" and other.host is eps[0].host


def test_the_strict_and_the_null_tolerant_decodes_give_the_same_endpoint():
    """The feed's path reads a registration's fields by position (astuple): both decoded types keep one order."""
    from portico.bus.messages import StrictRegistration, decode_registration_strict_first, strict_decode

    assert StrictRegistration.__struct_fields__ == Registration.__struct_fields__
    table = RouteTable(droplet_stale_threshold=120)
    strict = registration_to_endpoint(strict_decode(enc(FULL)), table, 7.0)
    nulls = {**FULL, "isolation_segment": None, "server_cert_domain_san": None}
    tolerant = registration_to_endpoint(decode_registration_strict_first(enc(nulls)), table, 7.0)
    assert strict.to_json() == {**tolerant.to_json(), "isolation_segment": "seg",
                                "server_cert_domain_san": "san.a.com"}
    assert (strict.app_id, strict.private_instance_index, strict.ttl, strict.updated_at_ns) == \
        (tolerant.app_id, tolerant.private_instance_index, tolerant.ttl, tolerant.updated_at_ns)


def test_instance_indexes_are_one_shared_string_per_value():
    table = RouteTable()
    a = registration_to_endpoint(decode_registration(b'{"host":"h","port":1,"private_instance_index":"17"}'),
                                 table, 0)
    b = registration_to_endpoint(decode_registration(b'{"host":"h","port":2,"private_instance_index":"17"}'),
                                 table, 0)
    assert a.private_instance_index == "17" and a.private_instance_index is b.private_instance_index
