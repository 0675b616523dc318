"""A minimal HTTP/1.1 server protocol for the status endpoints, driven by httptools callbacks.

Status requests are tiny and answered synchronously, so the protocol needs no task per request: each request
is answered inside `on_message_complete`, which also keeps pipelined requests in order for free. Kept apart
from the endpoint logic (portico.status.server) so either can change alone.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from email.utils import formatdate
from http import HTTPStatus
from typing import Callable

import httptools

MAX_HEAD_BYTES = 64 * 1024      # a status request never needs more; beyond this the client is answered 431
IDLE_TIMEOUT = 60.0             # seconds a keep-alive connection may sit idle before we close it


@dataclass(slots=True)
class Request:
    method: str
    path: str                                   # without the query string
    headers: dict[str, str] = field(default_factory=dict)   # lower-case names


@dataclass(slots=True)
class Response:
    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()


Handler = Callable[[Request], Response]

_REASONS = {s.value: s.phrase for s in HTTPStatus}
_date_cache: list = [0, ""]


def _http_date() -> str:
    """The Date header value, formatted at most once a second."""
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache[0], _date_cache[1] = now, formatdate(now, usegmt=True)
    return _date_cache[1]


def encode_response(response: Response, *, head_only: bool, keep_alive: bool) -> bytes:
    lines = [
        f"HTTP/1.1 {response.status} {_REASONS.get(response.status, '')}",
        f"Date: {_http_date()}",
        f"Content-Type: {response.content_type}",
        f"Content-Length: {len(response.body)}",
    ]
    lines.extend(f"{name}: {value}" for name, value in response.headers)
    if not keep_alive:
        lines.append("Connection: close")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head if head_only else head + response.body


class StatusProtocol(asyncio.Protocol):
    """One client connection: parse requests, hand each to `handler`, write the answer, honour keep-alive."""

    def __init__(self, handler: Handler, connections: set) -> None:
        self._handler = handler
        self._connections = connections
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._url = b""
        self._headers: dict[str, str] = {}
        self._head_bytes = 0
        self._idle: asyncio.TimerHandle | None = None
        self._closing = False

    # ---- connection ------------------------------------------------------------------------------------

    def connection_made(self, transport) -> None:
        self._transport = transport
        self._connections.add(self)
        self._arm_idle()

    def connection_lost(self, exc) -> None:
        self._connections.discard(self)
        if self._idle is not None:
            self._idle.cancel()
        self._transport = None

    def data_received(self, data: bytes) -> None:
        if self._closing:
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(400)
        except httptools.HttpParserError:
            self._fail(400)

    def pause_writing(self) -> None:
        # A client that does not read its answers gets no more requests parsed until it catches up.
        if self._transport is not None:
            self._transport.pause_reading()

    def resume_writing(self) -> None:
        if self._transport is not None:
            self._transport.resume_reading()

    def close(self) -> None:
        self._closing = True
        if self._transport is not None:
            self._transport.close()

    # ---- httptools callbacks -----------------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = {}
        self._head_bytes = 0
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._count(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value))
        self._headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_message_complete(self) -> None:
        if self._closing or self._transport is None:
            return
        method = self._parser.get_method().decode("ascii", "replace")
        path = self._url.split(b"?", 1)[0].decode("latin-1")
        keep_alive = self._parser.should_keep_alive()
        try:
            response = self._handler(Request(method, path, self._headers))
        except Exception:  # a bug in one endpoint must not kill the connection silently
            response = Response(500, b"500 Internal Server Error\n")
        self._transport.write(encode_response(response, head_only=method == "HEAD", keep_alive=keep_alive))
        if keep_alive:
            self._arm_idle()
        else:
            self.close()

    # ---- helpers -----------------------------------------------------------------------------------------

    def _count(self, n: int) -> None:
        self._head_bytes += n
        if self._head_bytes > MAX_HEAD_BYTES:
            raise httptools.HttpParserError("request head too large")

    def _fail(self, status: int) -> None:
        if self._head_bytes > MAX_HEAD_BYTES:
            status = 431
        if self._transport is not None:
            body = f"{status} {_REASONS.get(status, '')}\n".encode()
            self._transport.write(encode_response(Response(status, body), head_only=False, keep_alive=False))
        self.close()

    def _arm_idle(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
        self._idle = asyncio.get_running_loop().call_later(IDLE_TIMEOUT, self.close)
