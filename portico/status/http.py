"""A minimal HTTP/1.1 server protocol for the status endpoints, driven by httptools callbacks.

Status requests are tiny and almost all answered synchronously inside `on_message_complete`, so the protocol
needs no task per request; only slow work (a large /routes build) returns an awaitable. Kept apart
from the endpoint logic (portico.status.server) so either can change alone.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from functools import partial
from http import HTTPStatus
from typing import Any

import httptools

MAX_HEAD_BYTES = 64 * 1024      # a status request never needs more; beyond this the client is answered 431
IDLE_TIMEOUT = 60.0             # seconds a keep-alive connection may sit idle before we close it


@dataclass(slots=True)
class Request:
    method: str
    path: str                                   # without the query string
    headers: dict[str, str] = field(default_factory=dict)   # lower-case names
    query: str = ""                             # the raw query string, without `?`


@dataclass(slots=True)
class Response:
    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()


class EventStream:
    """A server-sent events answer: the head now, then `send(data)` for each event until the client leaves.

    The connection serves nothing else afterwards. An event is dropped for a client that has not read the
    previous ones (its write buffer is full), so a stalled browser never makes the router buffer for it.
    """

    MAX_BUFFERED = 256 * 1024

    def __init__(self, on_close: Callable[[EventStream], Any], first: bytes = b"") -> None:
        self._transport: asyncio.Transport | None = None
        self._on_close = on_close
        self._first = first

    def attach(self, transport: asyncio.Transport) -> None:
        """Called once the stream's head is written; the first event follows it at once."""
        if self._transport is not None:
            return
        self._transport = transport
        if self._first:
            self.send(self._first)
            self._first = b""

    def send(self, data: bytes) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        if transport.get_write_buffer_size() > self.MAX_BUFFERED:
            return
        transport.write(b"data: " + data + b"\n\n")

    def closed(self) -> None:
        self._transport = None
        self._on_close(self)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


_EVENT_STREAM_HEAD = (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
                      b"X-Accel-Buffering: no\r\nConnection: close\r\n\r\n")

Handler = Callable[[Request], Response | EventStream | Awaitable[Response]]

_REASONS = {s.value: s.phrase for s in HTTPStatus}
_SERVER_ERROR = Response(500, b"500 Internal Server Error\n")
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
    """One client connection: parse requests, hand each to `handler`, write the answers in order, keep-alive.

    A handler returns a Response, or an awaitable of one for slow work (a large /routes build). Answers go out
    in request order; while an awaitable is pending, reading pauses so a pipelining client cannot pile up work.
    """

    def __init__(self, handler: Handler, connections: set) -> None:
        self._handler = handler
        self._connections = connections
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._url = b""
        self._headers: dict[str, str] = {}
        self._head_bytes = 0
        self._idle: asyncio.TimerHandle | None = None
        self._queue: deque[list] = deque()    # [encoded answer or None while pending, keep_alive]
        self._tasks: set[asyncio.Future] = set()
        self._write_paused = False
        self._reading_paused = False
        self._done = False                    # no more requests will be read (close requested or bad input)
        self._stream: EventStream | None = None

    # ---- connection ------------------------------------------------------------------------------------

    def connection_made(self, transport) -> None:
        self._transport = transport
        self._connections.add(self)
        self._arm_idle()

    def connection_lost(self, exc) -> None:
        self._connections.discard(self)
        if self._stream is not None:
            self._stream.closed()
            self._stream = None
        if self._idle is not None:
            self._idle.cancel()
        for task in list(self._tasks):
            task.cancel()
        self._transport = None

    def data_received(self, data: bytes) -> None:
        if self._done:
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(400)
        except httptools.HttpParserError:
            self._fail(400)

    def pause_writing(self) -> None:
        # A client that does not read its answers gets no more requests parsed until it catches up.
        self._write_paused = True
        self._update_reading()

    def resume_writing(self) -> None:
        self._write_paused = False
        self._update_reading()

    def close(self) -> None:
        self._done = True
        if self._transport is not None:
            self._transport.close()

    # ---- httptools callbacks -----------------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = {}
        self._head_bytes = 0
        # The idle timer keeps running until the request is complete: a client that stalls mid-request is
        # closed like an idle one.

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._count(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value))
        self._headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_message_complete(self) -> None:
        if self._done or self._transport is None:
            return
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        method = self._parser.get_method().decode("ascii", "replace")
        raw_path, _, raw_query = self._url.partition(b"?")
        path = raw_path.decode("latin-1")
        keep_alive = self._parser.should_keep_alive()
        head_only = method == "HEAD"
        if not keep_alive:
            self._done = True
        try:
            result = self._handler(Request(method, path, self._headers, raw_query.decode("latin-1")))
        except Exception:  # a bug in one endpoint must not kill the connection silently
            result = _SERVER_ERROR
        if isinstance(result, EventStream):
            self._done = True                 # the stream is this connection's last answer
            self._stream = result
            self._queue.append([_EVENT_STREAM_HEAD, True])
            self._drain()
            return
        if isinstance(result, Response):
            self._queue.append([encode_response(result, head_only=head_only, keep_alive=keep_alive), keep_alive])
        else:
            slot = [None, keep_alive]
            self._queue.append(slot)
            task = asyncio.ensure_future(result)
            self._tasks.add(task)
            task.add_done_callback(partial(self._answered, slot, head_only))
            self._update_reading()
        self._drain()

    # ---- helpers -----------------------------------------------------------------------------------------

    def _answered(self, slot: list, head_only: bool, task: asyncio.Future) -> None:
        self._tasks.discard(task)
        if task.cancelled() or self._transport is None:
            return
        response = _SERVER_ERROR if task.exception() is not None else task.result()
        slot[0] = encode_response(response, head_only=head_only, keep_alive=slot[1])
        self._update_reading()
        self._drain()

    def _drain(self) -> None:
        """Write every answer that is ready, in request order; close after one that ends the connection."""
        queue = self._queue
        while queue and queue[0][0] is not None and self._transport is not None:
            data, keep_alive = queue.popleft()
            self._transport.write(data)
            if not keep_alive:
                self.close()
                return
        if not queue and not self._done:
            self._arm_idle()
        if not queue and self._stream is not None and self._transport is not None:
            self._stream.attach(self._transport)  # events go out only after the stream's head

    def _update_reading(self) -> None:
        if self._transport is None:
            return
        pause = self._write_paused or bool(self._tasks)
        if pause != self._reading_paused:
            self._reading_paused = pause
            if pause:
                self._transport.pause_reading()
            else:
                self._transport.resume_reading()

    def _count(self, n: int) -> None:
        self._head_bytes += n
        if self._head_bytes > MAX_HEAD_BYTES:
            raise httptools.HttpParserError("request head too large")

    def _fail(self, status: int) -> None:
        """Answer bad input (after any answers still owed) and close."""
        if self._head_bytes > MAX_HEAD_BYTES:
            status = 431
        self._done = True
        body = f"{status} {_REASONS.get(status, '')}\n".encode()
        self._queue.append([encode_response(Response(status, body), head_only=False, keep_alive=False), False])
        self._drain()

    def _arm_idle(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
        self._idle = asyncio.get_running_loop().call_later(IDLE_TIMEOUT, self.close)
