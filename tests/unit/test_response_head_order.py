"""ResponseHeadRules remembers the last response's header names and kinds by place (backends repeat their
order): whatever order and names come next, the head a client gets must be the one fresh rules would write."""

from __future__ import annotations

import pytest

from portico.proxy.client_base import ClientBase
from portico.proxy.exchange import Exchange
from portico.proxy.response_head import ResponseHeadRules

pytestmark = pytest.mark.unit

HEADS = [
    [(b"Server", b"nginx"), (b"Content-Length", b"2"), (b"Connection", b"keep-alive")],
    [(b"Server", b"nginx"), (b"Content-Length", b"2"), (b"Connection", b"keep-alive")],
    # the same places, other names: a hop-by-hop and a dropped name where plain ones were
    [(b"Connection", b"close, X-Hop"), (b"X-Hop", b"1"), (b"X-Cf-Proxy-Signature", b"s")],
    [(b"Server", b"other"), (b"Transfer-Encoding", b"chunked")],
    # longer than any before, with a name in a spelling not seen at its place
    [(b"server", b"x"), (b"Content-Length", b"0"), (b"X-Vcap-Request-Id", b"mine"), (b"Keep-Alive", b"t=5"),
     (b"Date", b"today"), (b"ETag", b'"1"')],
    [],
    [(b"Server", b"nginx"), (b"Content-Length", b"2"), (b"Connection", b"keep-alive")],
] + [[(b"X-N%d" % i, b"v") for i in range(n)] for n in (70, 3, 70)]   # past the 64 places remembered


class _Client(ClientBase):
    ctx = None


def _head(rules: ResponseHeadRules, headers: list) -> tuple:
    ex = Exchange(_Client(), b"GET", b"/")  # type: ignore[arg-type]
    length, chunked, named = rules.forwarded(ex, 200, b"OK", headers, ())
    return rules.take(b"\r\n"), length, chunked, named, ex.has_vcap_id_in_response


def test_a_remembered_order_never_changes_the_head() -> None:
    shared = ResponseHeadRules(remove=("Date",))
    for headers in HEADS + HEADS[::-1]:
        assert _head(shared, headers) == _head(ResponseHeadRules(remove=("Date",)), headers), headers
