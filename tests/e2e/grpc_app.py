"""A real grpcio app for the gRPC tests: every call shape, errors with details, metadata both ways, slow calls.

No .proto: the methods take and return raw bytes through grpcio's generic handlers. The app records what it
saw of each call (metadata, deadline, whether the call was cancelled) so tests can check what the router
forwarded, not only what came back.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field

import grpc

SERVICE = "portico.test.Probe"
BIG = 32 * 1024 * 1024
CHANNEL_OPTIONS = [("grpc.max_receive_message_length", BIG), ("grpc.max_send_message_length", BIG),
                   ("grpc.enable_http_proxy", 0), ("grpc.enable_retries", 0)]
# What a failing call carries back: a status code, a message, and google.rpc.Status bytes in the trailers.
DETAILS_BIN = b"\x08\x05\x12\x0bno such key\x1a\x07\n\x05extra\xff\x00"


def method(name: str) -> str:
    return f"/{SERVICE}/{name}"


@dataclass
class Seen:
    """What the app saw of one call, keyed by the client's `call-id` metadata."""

    metadata: dict[str, str | bytes] = field(default_factory=dict)
    time_remaining: float | None = None
    ended: threading.Event = field(default_factory=threading.Event)
    cancelled: bool = False
    received_bytes: int = 0
    first: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)


class ProbeApp:
    """The servicer: unary Echo/Fail/Slow/Big/Digest, server-streaming Count, client-streaming Sum, bidi Chat."""

    def __init__(self) -> None:
        self.seen: dict[str, Seen] = {}
        self._lock = threading.Lock()

    def _start(self, context: grpc.ServicerContext) -> Seen:
        md = dict(context.invocation_metadata())
        seen = Seen(metadata=md, time_remaining=context.time_remaining())
        call_id = md.get("call-id")
        if isinstance(call_id, str):
            with self._lock:
                self.seen[call_id] = seen

        context.add_callback(seen.ended.set)
        return seen

    @staticmethod
    def _metadata_back(context: grpc.ServicerContext, md: dict) -> None:
        """Initial metadata echoes the client's `echo-*` keys; trailers carry a text and a binary key."""
        echoed = [(k, v) for k, v in md.items() if k.startswith("echo-")]
        context.send_initial_metadata((*echoed, ("app-initial", "first")))
        context.set_trailing_metadata((("app-trailing", "last"), ("app-trailing-bin", b"\x00\x01\xfe\xff")))

    def echo(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        seen = self._start(context)
        self._metadata_back(context, seen.metadata)
        return request

    def fail(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        """Fails with the code named in the request; no message is sent, so the answer is trailers-only."""
        self._start(context)
        code = grpc.StatusCode[request.decode()]
        context.set_trailing_metadata((("grpc-status-details-bin", DETAILS_BIN), ("app-trailing", "failed")))
        context.abort(code, f"failed on purpose: {code.name} (ünïcode kept)")
        raise AssertionError("unreachable")

    def slow(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        seen = self._start(context)
        deadline = time.monotonic() + float(request.decode())
        while time.monotonic() < deadline:
            if not context.is_active():
                seen.cancelled = True
                return b""
            time.sleep(0.02)
        return b"done"

    def big(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        self._start(context)
        size = int(request.decode())
        return bytes(i % 251 for i in range(256)) * (size // 256) + b"x" * (size % 256)

    def digest(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        seen = self._start(context)
        seen.received_bytes = len(request)
        return hashlib.sha256(request).hexdigest().encode()

    def count(self, request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
        seen = self._start(context)
        self._metadata_back(context, seen.metadata)
        for i in range(int(request.decode())):
            yield str(i).encode()

    def sum(self, requests: Iterator[bytes], context: grpc.ServicerContext) -> bytes:
        seen = self._start(context)
        digest = hashlib.sha256()
        for chunk in requests:
            digest.update(chunk)
            seen.received_bytes += len(chunk)
        self._metadata_back(context, seen.metadata)
        return f"{seen.received_bytes} {digest.hexdigest()}".encode()

    def chat(self, requests: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[bytes]:
        """Answers each message as it arrives: a client that waits for each answer proves nothing is held."""
        seen = self._start(context)
        self._metadata_back(context, seen.metadata)
        for message in requests:
            yield b"re: " + message

    # ---- flow control probes: the app stops reading (or the client does); what got through meanwhile ----------

    def hold(self, requests: Iterator[bytes], context: grpc.ServicerContext) -> bytes:
        """Reads one message, then nothing until the test releases the call; then the rest."""
        seen = self._start(context)
        digest = hashlib.sha256()
        for chunk in requests:
            digest.update(chunk)
            seen.received_bytes += len(chunk)
            if seen.received_bytes == len(chunk):
                seen.first.set()
                seen.release.wait(60)
        return f"{seen.received_bytes} {digest.hexdigest()}".encode()

    def flood(self, request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
        """Yields `count` messages of `size` bytes, counting how many the transport took."""
        seen = self._start(context)
        count, size = (int(x) for x in request.decode().split())
        block = bytes(range(256)) * (size // 256)
        for _ in range(count):
            yield block
            seen.received_bytes += len(block)   # here: bytes handed to grpc to send

    def handler(self) -> grpc.GenericRpcHandler:
        unary, stream_out = grpc.unary_unary_rpc_method_handler, grpc.unary_stream_rpc_method_handler
        return grpc.method_handlers_generic_handler(SERVICE, {
            "Echo": unary(self.echo), "Fail": unary(self.fail), "Slow": unary(self.slow),
            "Big": unary(self.big), "Digest": unary(self.digest), "Count": stream_out(self.count),
            "Sum": grpc.stream_unary_rpc_method_handler(self.sum),
            "Chat": grpc.stream_stream_rpc_method_handler(self.chat),
            "Hold": grpc.stream_unary_rpc_method_handler(self.hold), "Flood": stream_out(self.flood),
        })


class GrpcServer:
    """One grpcio server with a plaintext port and, given a key pair, a TLS port (ALPN h2)."""

    def __init__(self, app: ProbeApp, key_pem: bytes | None = None, cert_pem: bytes | None = None) -> None:
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=16), options=CHANNEL_OPTIONS)
        self.server.add_generic_rpc_handlers((app.handler(),))
        self.plain_port = self.server.add_insecure_port("127.0.0.1:0")
        self.tls_port = 0
        if key_pem and cert_pem:
            creds = grpc.ssl_server_credentials([(key_pem, cert_pem)])
            self.tls_port = self.server.add_secure_port("127.0.0.1:0", creds)
        self.server.start()

    def stop(self) -> None:
        self.server.stop(grace=None).wait(5)
