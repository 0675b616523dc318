"""The floor: an HTTP/1.1 forwarder with no features, on the same uvloop + httptools as Portico.

It parses the request head, re-sends it unchanged over one keep-alive backend connection per client, and
copies the response back as it arrives. No routing, headers, logging, metrics or error handling: what is left
of a proxy's CPU per request once every feature is gone. Requests without a body only (GET), one at a time per
connection (wrk's pattern). Run: `python -m harness.forwarder LISTEN_PORT BACKEND_PORT` from benchmarks/.
"""

from __future__ import annotations

import asyncio
import sys

import httptools
import uvloop


class _Backend(asyncio.Protocol):
    """One backend connection serving one client: response bytes go straight back to it."""

    def __init__(self, client: _Client) -> None:
        self.client = client
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.transport.write(self.client.take_pending())

    def data_received(self, data: bytes) -> None:
        self.client.transport.write(data)
        self.parser.feed_data(data)

    def connection_lost(self, exc) -> None:
        self.client.transport.close()


class _Client(asyncio.Protocol):
    def __init__(self, backend_port: int) -> None:
        self.backend_port = backend_port
        self.parser = httptools.HttpRequestParser(self)
        self.backend: _Backend | None = None
        self.pending: list[bytes] = []
        self.lines: list[bytes] = []
        self.url = b""
        self.dialing: asyncio.Task | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_message_begin(self) -> None:
        self.lines = []

    def on_url(self, url: bytes) -> None:
        self.url = url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.lines.append(name + b": " + value + b"\r\n")

    def on_headers_complete(self) -> None:
        head = b"GET " + self.url + b" HTTP/1.1\r\n" + b"".join(self.lines) + b"\r\n"
        if self.backend is not None and self.backend.transport is not None:
            self.backend.transport.write(head)
            return
        self.pending.append(head)
        if self.backend is None:
            self.backend = _Backend(self)
            loop = asyncio.get_running_loop()
            self.dialing = loop.create_task(loop.create_connection(lambda: self.backend, "127.0.0.1",
                                                                   self.backend_port))

    def take_pending(self) -> bytes:
        heads, self.pending = self.pending, []
        return b"".join(heads)

    def connection_lost(self, exc) -> None:
        if self.backend is not None and self.backend.transport is not None:
            self.backend.transport.close()


async def serve(port: int, backend_port: int) -> None:
    server = await asyncio.get_running_loop().create_server(lambda: _Client(backend_port), "127.0.0.1", port,
                                                            backlog=8192)
    await server.serve_forever()


if __name__ == "__main__":
    uvloop.install()
    asyncio.run(serve(int(sys.argv[1]), int(sys.argv[2])))
