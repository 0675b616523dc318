"""A minimal HTTP/1.1 server protocol for the status endpoints, driven by httptools callbacks.

Status requests are tiny and almost all answered synchronously inside `on_message_complete`, so the protocol
needs no task per request; a large body (/routes of a big table) is streamed piece by piece as the client
reads. Kept apart from the endpoint logic (portico.status.server) so either can change alone.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from email.utils import formatdate
from functools import partial
from http import HTTPStatus
from typing import Any

import httptools

log = logging.getLogger("portico.status")

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


@dataclass(slots=True)
class StreamedResponse:
    """An answer whose body is made piece by piece while it is sent (a 1M-route /routes is hundreds of MB).

    Written with chunked transfer coding (HTTP/1.0: close-delimited); the next piece is made only when the
    client has read the previous ones, so memory holds about one piece, and the loop serves other work
    between pieces.
    """

    status: int
    pieces: Iterator[bytes]
    content_type: str = "text/plain; charset=utf-8"


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

Handler = Callable[[Request], Response | StreamedResponse | EventStream | Awaitable[Response]]

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
    head = _head(response.status, response.content_type, f"Content-Length: {len(response.body)}",
                 response.headers, keep_alive)
    return head if head_only else head + response.body


def _head(status: int, content_type: str, framing: str, headers: tuple[tuple[str, str], ...],
          keep_alive: bool) -> bytes:
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, '')}", f"Date: {_http_date()}",
             f"Content-Type: {content_type}"]
    if framing:
        lines.append(framing)
    lines.extend(f"{name}: {value}" for name, value in headers)
    if not keep_alive:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class _Streaming:
    """A StreamedResponse on its way out: the head (until written), the pieces left (None: all sent)."""

    __slots__ = ("chunked", "head", "pieces")

    def __init__(self, head: bytes, pieces: Iterator[bytes] | None, chunked: bool) -> None:
        self.head, self.pieces, self.chunked = head, pieces, chunked


class StatusProtocol(asyncio.Protocol):
    """One client connection: parse requests, hand each to `handler`, write the answers in order, keep-alive.

    A handler returns a Response, a StreamedResponse (a large /routes), or an awaitable of a Response for slow
    work. Answers go out in request order; while an awaitable or a stream is pending, reading pauses so a
    pipelining client cannot pile up work.
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
        self._streams = 0                     # StreamedResponses queued and not yet fully sent
        self._pump_handle: asyncio.Handle | None = None

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
        if self._pump_handle is not None:
            self._pump_handle.cancel()
            self._pump_handle = None
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
        if self._streams:
            self._drain()

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
        elif isinstance(result, StreamedResponse):
            chunked = self._parser.get_http_version() != "1.0"
            if not chunked:                   # HTTP/1.0: the body ends where the connection does
                keep_alive = False
                self._done = True
            framing = "Transfer-Encoding: chunked" if chunked else ""
            head = _head(result.status, result.content_type, framing, (), keep_alive)
            self._queue.append([_Streaming(head, None if head_only else result.pieces, chunked), keep_alive])
            self._streams += 1
            self._update_reading()
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
            data = queue[0][0]
            if data.__class__ is _Streaming:
                if not self._pump(data):
                    return                    # more pieces to come: resume_writing or the loop calls back
                self._streams -= 1
                self._update_reading()
                data = b""
            keep_alive = queue.popleft()[1]
            if data:
                self._transport.write(data)
            if not keep_alive:
                self.close()
                return
        if not queue and not self._done:
            self._arm_idle()
        if not queue and self._stream is not None and self._transport is not None:
            self._stream.attach(self._transport)  # events go out only after the stream's head

    def _pump(self, stream: _Streaming) -> bool:
        """Send the stream's next piece; True once it is all sent. One piece per loop turn, none while the
        client is behind (`resume_writing` calls back), so a huge body neither fills memory nor the loop."""
        transport = self._transport
        if transport is None:
            return False
        if stream.head:
            transport.write(stream.head)
            stream.head = b""
        if stream.pieces is None:
            return True
        if self._write_paused or self._pump_handle is not None:
            return False
        try:
            piece = next(stream.pieces, None)
        except Exception:  # a body that failed halfway cannot change its status: cut the connection
            log.exception("streamed answer failed; closing the connection")
            self._done = True
            transport.abort()
            return False
        if piece is None:
            stream.pieces = None
            if stream.chunked:
                transport.write(b"0\r\n\r\n")
            return True
        if piece:
            transport.write(b"%x\r\n%b\r\n" % (len(piece), piece) if stream.chunked else piece)
        if not self._write_paused:
            self._pump_handle = asyncio.get_running_loop().call_soon(self._pump_again)
        return False

    def _pump_again(self) -> None:
        self._pump_handle = None
        self._drain()

    def _update_reading(self) -> None:
        if self._transport is None:
            return
        pause = self._write_paused or bool(self._tasks) or self._streams > 0
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
