"""A tiny, fast demo backend for `portico up --demo`: answers GET and HEAD with `hello from <name>`.

    python -m portico.stack.demo_app --port 9001 --name demo-1

`/health` answers 200 `ok` (the registrar's health check); other methods get 501. It is an asyncio.Protocol on
uvloop with httptools, HTTP/1.1 keep-alive and pipelining, so that wrk pointed at the stack measures the
entrance and not the demo app (a ThreadingHTTPServer held the whole stack to about 500 requests/s). Request
bodies are parsed and dropped as they arrive. Stops on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from typing import cast

import httptools
import uvloop

SERVER_NAME = b"portico-demo"


def _response(status: bytes, body: bytes, name: bytes, head_only: bool, keep_alive: bool) -> bytes:
    head = (b"HTTP/1.1 " + status + b"\r\nServer: " + SERVER_NAME
            + b"\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: " + str(len(body)).encode()
            + b"\r\nX-Demo-Instance: " + name
            + (b"" if keep_alive else b"\r\nConnection: close") + b"\r\n\r\n")
    return head if head_only else head + body


class Answers:
    """Every response the app can give, built once: the hot path only picks one."""

    def __init__(self, name: str) -> None:
        raw = name.encode()
        hello = f"hello from {name}\n".encode()
        not_implemented = b"501 method not implemented\n"
        self.table: dict[tuple[str, bool, bool], bytes] = {}
        for what, status, body in (("hello", b"200 OK", hello), ("health", b"200 OK", b"ok\n"),
                                   ("501", b"501 Not Implemented", not_implemented)):
            for head_only in (False, True):
                for keep_alive in (False, True):
                    self.table[(what, head_only, keep_alive)] = _response(status, body, raw, head_only, keep_alive)
        self.bad_request = (b"HTTP/1.1 400 Bad Request\r\nServer: " + SERVER_NAME
                            + b"\r\nContent-Length: 12\r\nConnection: close\r\n\r\nbad request\n")


class DemoConnection(asyncio.Protocol):
    """One client connection: parse requests with httptools, answer each as its message completes."""

    def __init__(self, answers: Answers, live: set[asyncio.Transport]) -> None:
        self.answers = answers
        self.live = live
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.path = b""
        self.closing = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)   # uvloop's transports are not subclasses
        self.live.add(self.transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is not None:
            self.live.discard(self.transport)

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._close()   # no upgrades here: the answer went out, the tunnel is refused by closing
        except httptools.HttpParserError:
            assert self.transport is not None
            self.transport.write(self.answers.bad_request)
            self._close()

    def pause_writing(self) -> None:     # a client that does not read stops us reading its pipeline
        assert self.transport is not None
        self.transport.pause_reading()

    def resume_writing(self) -> None:
        assert self.transport is not None
        if not self.closing:
            self.transport.resume_reading()

    # httptools callbacks
    def on_url(self, url: bytes) -> None:
        self.path += url

    def on_message_complete(self) -> None:
        method = self.parser.get_method()
        keep_alive = self.parser.should_keep_alive()
        path = self.path.split(b"?", 1)[0]
        self.path = b""
        what = ("health" if path == b"/health" else "hello") if method in (b"GET", b"HEAD") else "501"
        assert self.transport is not None
        self.transport.write(self.answers.table[(what, method == b"HEAD", keep_alive)])
        if not keep_alive:
            self._close()

    def _close(self) -> None:
        self.closing = True
        assert self.transport is not None
        self.transport.close()


async def serve(host: str, port: int, name: str) -> None:
    loop = asyncio.get_running_loop()
    answers = Answers(name)
    live: set[asyncio.Transport] = set()
    server = await loop.create_server(lambda: DemoConnection(answers, live), host, port, backlog=1024,
                                      reuse_address=True)
    stopped = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopped.set)
    sys.stderr.write(f"{name}: listening on http://{host}:{port}/\n")
    sys.stderr.flush()
    await stopped.wait()
    server.close()
    for transport in list(live):   # idle keep-alive connections would otherwise hold wait_closed()
        transport.close()
    await server.wait_closed()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Portico demo app")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--name", default="demo")
    args = parser.parse_args(argv)
    uvloop.run(serve(args.host, args.port, args.name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
