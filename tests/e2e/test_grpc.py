"""Issue 12: gRPC end to end through a real router, with real grpcio clients and servers.

One grpcio app serves both plaintext and TLS; it is registered with `protocol: http2` twice, once by its TLS
port (HTTP/2 over TLS, ALPN h2) and once by its plaintext port (h2c with prior knowledge, Portico's option).
Clients reach the router over TLS on `ssl_port` (ALPN h2) and in clear text on `port` (grpcio speaks prior
knowledge there), so every call shape runs over the four front x back combinations.
"""

from __future__ import annotations

import hashlib
import queue
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import trustme
from grpc_app import CHANNEL_OPTIONS, DETAILS_BIN, GrpcServer, ProbeApp, method
from polling import wait_for
from support import nats_publish, registration, unique_host

pytestmark = pytest.mark.e2e

ROUTE_DOMAIN = "grpc.test"
APP_SAN = "grpc-app.internal"
TEN_MB = 10 * 1024 * 1024
# Portico's own key for h2c to plaintext `protocol: http2` endpoints (docs/http2.md#keys)
H2C_BACKENDS = {"backends": {"enable_h2c": True, "max_attempts": 1}}


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def app() -> ProbeApp:
    return ProbeApp()


@pytest.fixture(scope="module")
def grpc_server(app, ca):
    cert = ca.issue_cert(APP_SAN)
    server = GrpcServer(app, cert.private_key_pem.bytes(), b"".join(b.bytes() for b in cert.cert_chain_pems))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def grpc_router(router_factory, ca):
    cert = ca.issue_cert(f"*.{ROUTE_DOMAIN}")
    pem = {"cert_chain": "".join(b.bytes().decode() for b in cert.cert_chain_pems),
           "private_key": cert.private_key_pem.bytes().decode()}
    return router_factory(enable_ssl=True, tls_pem=[pem], ca_certs=[ca.cert_pem.bytes().decode()],
                          endpoint_timeout="30s", **H2C_BACKENDS)


@pytest.fixture(scope="module")
def routes(grpc_router, grpc_server) -> dict[str, str]:
    """back transport -> route: the app by its TLS port and by its plaintext port, both `protocol: http2`."""
    found = {}
    for back, kw in (("tls", {"tls_port": grpc_server.tls_port, "san": APP_SAN}), ("h2c", {})):
        host = unique_host(f"{back}back").replace(".e2e.test", f".{ROUTE_DOMAIN}")
        msg = registration(host, grpc_server.plain_port, app="grpc-app-guid", **kw)
        msg["protocol"] = "http2"
        nats_publish(grpc_router.nats_url, "router.register", msg)
        grpc_router.wait_route(host, f"127.0.0.1:{msg.get('tls_port') or grpc_server.plain_port}")
        found[back] = host
    return found


FRONTS, BACKS = ("tls", "plain"), ("tls", "h2c")
COMBOS = [(f, b) for f in FRONTS for b in BACKS]


def open_channel(router, ca, front: str, host: str) -> grpc.Channel:
    options = [*CHANNEL_OPTIONS, ("grpc.default_authority", host)]
    if front == "tls":
        creds = grpc.ssl_channel_credentials(root_certificates=ca.cert_pem.bytes())
        return grpc.secure_channel(f"127.0.0.1:{router.ssl_port}", creds,
                                   options=[*options, ("grpc.ssl_target_name_override", host)])
    return grpc.insecure_channel(f"127.0.0.1:{router.port}", options=options)


@pytest.fixture(scope="module", params=COMBOS, ids=[f"{f}-front-{b}-back" for f, b in COMBOS])
def channel(request, grpc_router, ca, routes):
    front, back = request.param
    ch = open_channel(grpc_router, ca, front, routes[back])
    yield ch
    ch.close()


def call_id() -> str:
    return unique_host("call").split(".")[0]


def test_unary_call_keeps_metadata_both_ways_and_gets_the_routers_headers(channel, app):
    cid = call_id()
    reply, call = channel.unary_unary(method("Echo")).with_call(
        b"ping \x00\xff", timeout=20, metadata=(("call-id", cid), ("echo-text", "hello"),
                                                ("echo-bin", b"\x00\x01\x02")))
    assert reply == b"ping \x00\xff"
    initial = dict(call.initial_metadata())
    assert initial["echo-text"] == "hello" and initial["echo-bin"] == b"\x00\x01\x02"
    assert initial["app-initial"] == "first"
    trailing = dict(call.trailing_metadata())
    assert trailing["app-trailing"] == "last" and trailing["app-trailing-bin"] == b"\x00\x01\xfe\xff"
    assert call.code() == grpc.StatusCode.OK
    seen = app.seen[cid].metadata
    # the router's forwarded headers reach the app as on HTTP/1.1
    assert seen.get("x-cf-applicationid") == "grpc-app-guid"
    assert seen.get("x-vcap-request-id") and seen.get("x-forwarded-for")


def test_server_streaming_delivers_every_message_in_order(channel):
    replies = list(channel.unary_stream(method("Count"))(b"200", timeout=20,
                                                          metadata=(("echo-stream", "yes"),)))
    assert replies == [str(i).encode() for i in range(200)]


def test_client_streaming_sums_what_was_sent(channel):
    chunks = [bytes([i]) * (1000 + i) for i in range(100)]
    reply, call = channel.stream_unary(method("Sum")).with_call(iter(chunks), timeout=20)
    expected = hashlib.sha256(b"".join(chunks)).hexdigest()
    assert reply == f"{sum(map(len, chunks))} {expected}".encode()
    assert dict(call.trailing_metadata())["app-trailing"] == "last"


def test_bidirectional_answers_each_message_before_the_next_is_sent(channel):
    """The client sends a message only after the answer to the previous one came back: a router that held
    either direction until the stream ended would deadlock this call (the deadline would end it)."""
    outbox: queue.Queue = queue.Queue()

    def requests() -> Iterator[bytes]:
        while (item := outbox.get()) is not None:
            yield item

    outbox.put(b"0")
    answers = []
    responses = channel.stream_stream(method("Chat"))(requests(), timeout=20)
    for reply in responses:
        answers.append(reply)
        n = len(answers)
        outbox.put(str(n).encode() if n < 20 else None)
    assert answers == [f"re: {i}".encode() for i in range(20)]
    assert responses.code() == grpc.StatusCode.OK
    assert dict(responses.trailing_metadata())["app-trailing"] == "last"


@pytest.mark.parametrize("code", [grpc.StatusCode.NOT_FOUND, grpc.StatusCode.PERMISSION_DENIED,
                                  grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNAVAILABLE])
def test_status_codes_messages_and_error_details_come_back(channel, code):
    with pytest.raises(grpc.RpcError) as err:
        channel.unary_unary(method("Fail"))(code.name.encode(), timeout=20)
    rpc = err.value
    assert rpc.code() == code
    assert rpc.details() == f"failed on purpose: {code.name} (ünïcode kept)"
    trailing = dict(rpc.trailing_metadata())
    assert trailing["grpc-status-details-bin"] == DETAILS_BIN
    assert trailing["app-trailing"] == "failed"


def test_an_expired_deadline_answers_deadline_exceeded_and_the_app_sees_it_end(channel, app):
    cid = call_id()
    started = time.monotonic()
    with pytest.raises(grpc.RpcError) as err:
        channel.unary_unary(method("Slow"))(b"30", timeout=1.0, metadata=(("call-id", cid),))
    assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - started < 10
    seen = wait_for(lambda: app.seen.get(cid), 10, message="the slow call reached the app")
    # grpc-timeout was forwarded: the app knew the client's deadline (None without one; grpc rounds it up)
    assert seen.time_remaining is not None and seen.time_remaining <= 1.5
    # and the call ended at the app too (deadline or the router's RST_STREAM), long before its 30 s
    assert seen.ended.wait(10), "the app's call did not end after the deadline"
    # the connection is still good for the next call
    assert channel.unary_unary(method("Echo"))(b"after", timeout=20) == b"after"


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _settled(value, quiet: float = 1.0, limit: float = 20.0):
    """The value once it stopped changing for `quiet` seconds: how far a stalled transfer got."""
    last, since = value(), time.monotonic()
    deadline = since + limit
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = value()
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since > quiet:
            break
    return last


@pytest.mark.parametrize("front,back", [("tls", "tls"), ("plain", "h2c")], ids=["tls", "cleartext"])
def test_ten_megabyte_messages_pass_whole_both_ways(grpc_router, ca, routes, app, front, back):
    with open_channel(grpc_router, ca, front, routes[back]) as ch:
        payload = bytes(range(256)) * (TEN_MB // 256)
        cid = call_id()
        reply = ch.unary_unary(method("Digest"))(payload, timeout=60, metadata=(("call-id", cid),))
        assert reply == hashlib.sha256(payload).hexdigest().encode()
        assert app.seen[cid].received_bytes == TEN_MB
        down = ch.unary_unary(method("Big"))(str(TEN_MB).encode(), timeout=60)
        assert len(down) == TEN_MB and down[:256] == bytes(i % 251 for i in range(256))


CHUNK, STALLED_TOTAL = 64 * 1024, 32 * 1024 * 1024
HELD_LIMIT_KB = 8 * 1024     # the router's RSS growth while a transfer is stalled: windows, not the body


@pytest.mark.parametrize("back", BACKS)
def test_a_stalled_upload_is_held_back_by_flow_control_not_by_the_router(grpc_router, ca, routes, app, back):
    """32 MB streamed to an app that stops reading after the first message: the client's sending stops (it is
    pulled far less than everything) and the router's memory does not grow by what is pending."""
    with open_channel(grpc_router, ca, "plain", routes[back]) as ch:
        ch.unary_unary(method("Echo"))(b"ready", timeout=20)
        rss_before = _rss_kb(grpc_router.pid)
        cid, pulled = call_id(), [0]

        def chunks() -> Iterator[bytes]:
            for _ in range(STALLED_TOTAL // CHUNK):
                pulled[0] += CHUNK
                yield b"u" * CHUNK

        future = ch.stream_unary(method("Hold")).future(chunks(), timeout=120, metadata=(("call-id", cid),))
        seen = wait_for(lambda: app.seen.get(cid), 20, message="the upload reached the app")
        assert seen.first.wait(20)
        stalled_at = _settled(lambda: pulled[0])
        held_kb = _rss_kb(grpc_router.pid) - rss_before
        seen.release.set()
        assert future.result().startswith(f"{STALLED_TOTAL} ".encode())
    assert stalled_at < STALLED_TOTAL * 3 // 4, f"the client sent {stalled_at} of {STALLED_TOTAL} bytes unhindered"
    assert held_kb < HELD_LIMIT_KB, f"router RSS grew {held_kb} KB while the upload was stalled"


@pytest.mark.parametrize("back", BACKS)
def test_a_stalled_download_is_held_back_by_flow_control_not_by_the_router(grpc_router, ca, routes, app, back):
    """32 MB streamed to a client that stops reading after the first message: the router's memory does not
    grow by what the app has sent meanwhile (it sits in flow-control windows and socket buffers)."""
    with open_channel(grpc_router, ca, "plain", routes[back]) as ch:
        ch.unary_unary(method("Echo"))(b"ready", timeout=20)
        rss_before = _rss_kb(grpc_router.pid)
        cid = call_id()
        replies = ch.unary_stream(method("Flood"))(f"{STALLED_TOTAL // CHUNK} {CHUNK}".encode(), timeout=120,
                                                   metadata=(("call-id", cid),))
        first = next(replies)
        _settled(lambda: app.seen[cid].received_bytes)
        held_kb = _rss_kb(grpc_router.pid) - rss_before
        total = len(first) + sum(len(m) for m in replies)
    assert total == STALLED_TOTAL
    assert held_kb < HELD_LIMIT_KB, f"router RSS grew {held_kb} KB while the download was stalled"


def test_many_concurrent_calls_share_connections(channel):
    """50 calls at once on one client connection: each gets its own answer (streams are not mixed up)."""
    echo = channel.unary_unary(method("Echo"))
    results: dict[int, bytes] = {}
    errors: list[BaseException] = []

    def one(i: int) -> None:
        try:
            results[i] = echo(f"call {i}".encode() * 100, timeout=30)
        except BaseException as err:  # reported below
            errors.append(err)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors[:3]
    assert results == {i: f"call {i}".encode() * 100 for i in range(50)}

