"""An HTTP/2 app for tests: the `h2` library driving real sockets on 127.0.0.1 (TLS with ALPN h2, or h2c).

Behaviour by path (query `?k=v`):
  /echo (default)  200, JSON {name, conn, stream, method, path, authority, scheme, te, headers, body_len,
                   body_sha256, trailers}; `?trailers` adds response trailers (grpc-status: 0, x-done: yes);
                   `?cl` sends a Content-Length (else none: an HTTP/1.1 client gets it chunked)
  /slow?s=X        the echo after X seconds          /reset     RST_STREAM (INTERNAL_ERROR) before any head
  /big?n=N         N bytes, sent as the flow-control windows allow; bytes sent so far in `sent[path]`
  /drop-once       the first time: the connection is closed under the request (no GOAWAY); then the echo
  /switch          a 101 head on the stream (RFC 9113 forbids it), then nothing
  /early           200 "early" once the request body filled the stream's window, which is never reopened
  /goaway?s=X      GOAWAY naming this stream as the last one, the echo X s later, then the connection closes
Request bodies are acknowledged a moment after they arrive, so the router's send windows really fill up.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import ssl
import threading

from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.errors import ErrorCodes
from h2.events import (
    ConnectionTerminated,
    DataReceived,
    RequestReceived,
    StreamEnded,
    StreamReset,
    TrailersReceived,
    WindowUpdated,
)
from h2.exceptions import H2Error
from h2.settings import SettingCodes
from hyperframe.frame import GoAwayFrame
from support import loop_thread


def h2_server_context(ca, *names: str) -> ssl.SSLContext:
    """A TLS server context offering ALPN h2, with a certificate for `names` issued by the trustme `ca`."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert(*names).configure_cert(ctx)
    ctx.set_alpn_protocols(["h2"])
    return ctx


class H2Backend:
    def __init__(self, name: str = "h2app", tls: ssl.SSLContext | None = None, max_streams: int = 100) -> None:
        self.name = name
        self.tls = tls
        self.max_streams = max_streams
        self.port = 0
        self.server: asyncio.AbstractServer | None = None
        self.connections = 0
        self.requests: list[dict] = []
        self.sent: dict[str, int] = {}
        self.protocols: set = set()
        self.dropped = False
        self.lock = threading.Lock()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> H2Backend:
        async def _start():
            loop = asyncio.get_running_loop()
            self.server = await loop.create_server(lambda: _H2ServerConnection(self), "127.0.0.1", 0, ssl=self.tls)
            self.port = self.server.sockets[0].getsockname()[1]

        loop_thread().run(_start())
        return self

    def stop(self) -> None:
        async def _stop():
            if self.server is not None:
                self.server.close()
            for proto in list(self.protocols):
                proto.transport.abort()

        loop_thread().run(_stop())


class _H2ServerConnection(asyncio.Protocol):
    def __init__(self, app: H2Backend) -> None:
        self.app = app
        self.h2 = H2Connection(H2Configuration(client_side=False, header_encoding="utf-8"))
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.streams: dict[int, dict] = {}
        self.outgoing: dict[int, list] = {}      # stream -> [bytes left, trailers, path]
        self.close_after: int | None = None
        self.early: set[int] = set()

    def connection_made(self, transport) -> None:
        self.transport = transport
        with self.app.lock:
            self.app.connections += 1
            self.conn_id = self.app.connections
        self.app.protocols.add(self)
        self.h2.initiate_connection()
        self.h2.update_settings({SettingCodes.MAX_CONCURRENT_STREAMS: self.app.max_streams})
        self.flush()

    def connection_lost(self, exc) -> None:
        self.app.protocols.discard(self)

    def flush(self) -> None:
        data = self.h2.data_to_send()
        if data and not self.transport.is_closing():
            self.transport.write(data)

    def data_received(self, data: bytes) -> None:
        try:
            events = self.h2.receive_data(data)
        except H2Error:
            self.transport.close()
            return
        for event in events:
            if isinstance(event, RequestReceived):
                self._request(event.stream_id, event.headers)
            elif isinstance(event, DataReceived):
                s = self.streams.get(event.stream_id)
                if s is not None:
                    s["body"] += event.data
                n, sid = event.flow_controlled_length, event.stream_id
                if sid in self.early:
                    self.h2.increment_flow_control_window(n)    # the connection's share only
                    if s is not None and len(s["body"]) >= 65535 and not s.get("answered"):
                        s["answered"] = True     # the stream's window is used up: the sender is stuck now
                        self.h2.send_headers(sid, [(":status", "200"), ("content-length", "5")])
                        self.h2.send_data(sid, b"early", end_stream=True)
                else:
                    asyncio.get_running_loop().call_later(0.002, self._ack, n, sid)
            elif isinstance(event, TrailersReceived):
                s = self.streams.get(event.stream_id)
                if s is not None:
                    s["trailers"] = dict(event.headers)
            elif isinstance(event, StreamEnded):
                self._ended(event.stream_id)
            elif isinstance(event, WindowUpdated):
                for sid in list(self.outgoing):
                    self._push(sid)
            elif isinstance(event, StreamReset):
                self.outgoing.pop(event.stream_id, None)
            elif isinstance(event, ConnectionTerminated):
                self.transport.close()
        self.flush()

    def _ack(self, n: int, sid: int) -> None:
        try:
            self.h2.acknowledge_received_data(n, sid)
        except H2Error:
            try:
                self.h2.increment_flow_control_window(n)   # the stream is gone: the connection's share only
            except H2Error:
                return
        self.flush()

    def _request(self, sid: int, headers: list) -> None:
        h = {}
        for k, v in headers:
            h[k] = f"{h[k]}, {v}" if k in h else v
        path, _, query = h.get(":path", "/").partition("?")
        params = dict(p.partition("=")[::2] for p in query.split("&") if p)
        self.streams[sid] = {"headers": h, "path": path, "params": params, "body": b"", "trailers": {}}
        with self.app.lock:
            self.app.requests.append({"conn": self.conn_id, "stream": sid, "path": path, "headers": h})
        if path == "/drop-once" and not self.app.dropped:
            self.app.dropped = True     # the connection goes away under the request, with no GOAWAY
            self.transport.abort()
            return
        if path == "/reset":
            self.h2.reset_stream(sid, ErrorCodes.INTERNAL_ERROR)
        elif path == "/switch":
            self.h2.send_headers(sid, [(":status", "101")])     # forbidden in HTTP/2
        elif path == "/early":
            self.early.add(sid)    # its body is never acknowledged, so its window stays shut
        elif path == "/goaway":
            # Written past h2's state machine (which would refuse to answer after its own GOAWAY): this
            # stream still gets its answer, later ones must go elsewhere.
            self.flush()
            self.transport.write(GoAwayFrame(0, last_stream_id=sid, error_code=0).serialize())
            self.close_after = sid

    def _ended(self, sid: int) -> None:
        s = self.streams.get(sid)
        if s is None or s["path"] in ("/reset", "/early", "/switch"):
            return
        if s["path"] in ("/slow", "/goaway"):
            asyncio.get_running_loop().call_later(float(s["params"].get("s", "0.2")), self._answer, sid)
        else:
            self._answer(sid)

    def _answer(self, sid: int) -> None:
        s = self.streams.pop(sid)
        h, params, path = s["headers"], s["params"], s["path"]
        if path == "/big":
            n = int(params.get("n", "1048576"))
            self.h2.send_headers(sid, [(":status", "200"), ("content-length", str(n))])
            self.outgoing[sid] = [b"x" * n, None, path]
            self.app.sent[path] = 0
            self._push(sid)
            self.flush()
            return
        body = json.dumps({
            "name": self.app.name, "conn": self.conn_id, "stream": sid, "method": h.get(":method"), "path": path,
            "authority": h.get(":authority"), "scheme": h.get(":scheme"), "te": h.get("te", ""),
            "headers": {k: v for k, v in h.items() if not k.startswith(":")}, "body_len": len(s["body"]),
            "body_sha256": hashlib.sha256(s["body"]).hexdigest(), "trailers": s["trailers"],
        }).encode()
        head = [(":status", "200"), ("content-type", "application/json"), ("x-backend", self.app.name)]
        if "cl" in params:
            head.append(("content-length", str(len(body))))
        trailers = [("grpc-status", "0"), ("x-done", "yes")] if "trailers" in params else None
        self.h2.send_headers(sid, head)
        self.outgoing[sid] = [body, trailers, path]
        self._push(sid)
        self.flush()

    def _push(self, sid: int) -> None:
        entry = self.outgoing.get(sid)
        if entry is None:
            return
        data, trailers, path = entry
        h2 = self.h2
        try:
            while data:
                room = min(h2.local_flow_control_window(sid), h2.max_outbound_frame_size)
                if room <= 0:
                    break
                h2.send_data(sid, data[:room])
                self.app.sent[path] = self.app.sent.get(path, 0) + min(room, len(data))
                data = data[room:]
            entry[0] = data
            if not data:
                del self.outgoing[sid]
                if trailers:
                    h2.send_headers(sid, trailers, end_stream=True)
                else:
                    h2.end_stream(sid)
                if self.close_after == sid:
                    self.flush()
                    asyncio.get_running_loop().call_later(0.05, self.transport.close)
        except H2Error:
            self.outgoing.pop(sid, None)
