"""The endpoint's per-request accessors build their bytes each time and keep nothing."""

from __future__ import annotations

import pytest

from portico.proxy.route_services import RouteServiceEndpoint
from portico.routes.endpoint import Endpoint, _latin1, make_endpoint


def _reference_block(ep: Endpoint) -> bytes:
    """The block as the sanitising path builds it, value by value."""
    return (b"X-CF-ApplicationID: " + _latin1(ep.app_id) + b"\r\nX-CF-InstanceIndex: "
            + _latin1(ep.private_instance_index) + b"\r\nX-CF-InstanceID: "
            + _latin1(ep.private_instance_id or ep.address) + b"\r\n")


@pytest.mark.parametrize(("app_id", "index", "instance_id"), [
    ("", "", ""),
    ("6f1a2c3e-0000-4000-8000-000000000001", "0", "b1c2d3e4-0000-4000-8000-000000000002"),
    ("caf\u00e9", "12", "snow\u2603man"),              # latin-1 and beyond: '?' for what latin-1 lacks
    ("app\r\nEvil: 1", "2", "iid"),                    # header injection: CR/LF blanked
    ("app", "1\n", "x\ry"),
])
def test_cf_headers_match_the_sanitising_build_and_are_not_kept(app_id: str, index: str, instance_id: str) -> None:
    ep = make_endpoint("10.0.0.1", 80, app_id=app_id, private_instance_index=index, private_instance_id=instance_id)
    block = ep.cf_headers
    assert block == _reference_block(ep)
    assert block.count(b"\r\n") == 3 and block.count(b"\n") == 3 and block.count(b"\r") == 3
    assert ep.cf_headers == block


def test_route_service_stand_ins_send_no_block() -> None:
    """Route services' stand-in endpoints send no X-CF headers."""
    ep = RouteServiceEndpoint("10.0.0.1", 80)
    assert ep.cf_headers == b""


def test_address_bytes() -> None:
    ep = Endpoint("10.0.0.7", 61001)
    assert ep.address_bytes == b"10.0.0.7:61001"

