"""A kept backend connection remembers the X-CF-* lines of the endpoint it last served (endpoint_headers): a
request for another endpoint at the same address must still carry its own app id and instance, never the
lines of the endpoint the connection served before."""

from __future__ import annotations

import asyncio
import re

import pytest

from tests.unit.memory import MemoryProxy, turn

pytestmark = pytest.mark.unit

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


async def test_one_connection_carries_each_endpoints_own_cf_headers() -> None:
    proxy = MemoryProxy(asyncio.get_running_loop())
    # two routes, two endpoints registered at one address: one pooled connection serves both
    proxy.route("a.example", app_id="app-a", private_instance_id="inst-a", private_instance_index="0")
    proxy.route("b.example", app_id="app-b", private_instance_id="inst-b", private_instance_index="1")
    client, client_out = proxy.client()
    seen = []
    for host in (b"a.example", b"a.example", b"b.example", b"a.example", b"b.example"):
        client.data_received(b"GET / HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")
        await turn()
        backend = proxy.connector.dialed[-1]
        sent = backend.transport.take()  # type: ignore[attr-defined]
        app = re.search(rb"X-CF-ApplicationID: (\S+)\r\nX-CF-InstanceIndex: (\S+)\r\nX-CF-InstanceID: (\S+)\r\n", sent)
        assert app is not None, sent
        seen.append(app.groups())
        backend.data_received(RESPONSE)
        await turn()
        assert client_out.take().startswith(b"HTTP/1.1 200 OK\r\n")
    assert len(proxy.connector.dialed) == 1    # the same kept connection every time
    a, b = (b"app-a", b"0", b"inst-a"), (b"app-b", b"1", b"inst-b")
    assert seen == [a, a, b, a, b]
