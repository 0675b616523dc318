"""A malformed-request corpus sent to a real router over real sockets, with a real backend recording what
reaches it. The counts it returns are the fault suite's figures and the default test suite's assertions:

- ambiguous: a case whose bytes reached the backend as a complete request when they should not have (an
  unsafe case), or as a request the client got no answer for (smuggled), or with framing a strict reader
  could take two ways (Content-Length with Transfer-Encoding, two lengths, line breaks other than CRLF).
- hanging: a case answered neither with its responses nor by a close within `hang_after` seconds.
- unsafe_not_rejected: an unsafe case not answered 4xx, or whose connection stayed open after it.
- server_errors: a 5xx the router produced itself (500 would mean a crash in the parser path); the one
  expected 5xx is gorouter's 505 to an `HTTP/2.0` request line.
- unexpected_status: a case with a known right answer (400 for a missing Host, 505 above) answered otherwise.

Use: `run_corpus(router_port, register)`, where `register(host, backend_port)` makes the router route `host`
to the recording backend this module starts (and stops) itself.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from httptools import HttpParserError, HttpParserUpgrade, HttpRequestParser

HOST = "corpus.reliability.test"


@dataclass(frozen=True)
class Case:
    name: str
    data: bytes           # with {host} where the Host goes
    unsafe: bool          # must be answered 4xx, closed, and never reach the backend as a request
    responses: int = 1    # responses a well-behaved router sends for it
    expect: tuple[int, ...] = ()   # the only acceptable final statuses, when it matters


def _req(head: str, body: bytes = b"") -> bytes:
    return head.replace("\n", "\r\n").encode("latin-1") + body


def _cases() -> list[Case]:
    h = "Host: {host}\n"
    te, cl = "Transfer-Encoding: chunked\n", "Content-Length: 5\n"
    chunked_ok = b"5\r\nhello\r\n0\r\n\r\n"
    c: list[Case] = [
        # Content-Length and Transfer-Encoding in every order and shape
        Case("CL then TE", _req(f"POST / HTTP/1.1\n{h}{cl}{te}\n", chunked_ok), True),
        Case("TE then CL", _req(f"POST / HTTP/1.1\n{h}{te}{cl}\n", chunked_ok), True),
        Case("TE, CL 0", _req(f"POST / HTTP/1.1\n{h}{te}Content-Length: 0\n\n", chunked_ok), True),
        Case("CL, TE identity", _req(f"POST / HTTP/1.1\n{h}{cl}Transfer-Encoding: identity\n\n", b"hello"), True),
        Case("TE gzip, chunked + CL", _req(f"POST / HTTP/1.1\n{h}Transfer-Encoding: gzip, chunked\n{cl}\n",
                                           chunked_ok), True),
        Case("TE chunked, identity", _req(f"POST / HTTP/1.1\n{h}Transfer-Encoding: chunked, identity\n\n",
                                          chunked_ok), True),
        Case("TE unknown coding", _req(f"POST / HTTP/1.1\n{h}Transfer-Encoding: xchunked\n\n", chunked_ok), True),
        Case("TE with space before colon", _req(f"POST / HTTP/1.1\n{h}Transfer-Encoding : chunked\n\n",
                                                chunked_ok), True),
        Case("two CL differing", _req(f"POST / HTTP/1.1\n{h}Content-Length: 5\nContent-Length: 6\n\n",
                                      b"hello!"), True),
        Case("two CL equal", _req(f"POST / HTTP/1.1\n{h}Content-Length: 5\nContent-Length: 5\n\n", b"hello"),
             True),
        Case("CL list", _req(f"POST / HTTP/1.1\n{h}Content-Length: 5, 5\n\n", b"hello"), True),
        Case("CL plus sign", _req(f"POST / HTTP/1.1\n{h}Content-Length: +5\n\n", b"hello"), True),
        Case("CL negative", _req(f"POST / HTTP/1.1\n{h}Content-Length: -1\n\n"), True),
        Case("CL not a number", _req(f"POST / HTTP/1.1\n{h}Content-Length: abc\n\n"), True),
        Case("CL overflow", _req(f"POST / HTTP/1.1\n{h}Content-Length: 99999999999999999999999\n\n"), True),
        # obs-fold, bare CR / LF, NUL
        Case("obs-fold", _req(f"GET / HTTP/1.1\n{h}X-Folded: a\n b\n\n"), True),
        Case("obs-fold on TE", _req(f"POST / HTTP/1.1\n{h}Transfer-Encoding:\n chunked\n\n", chunked_ok), True),
        Case("bare LF line ends", b"GET / HTTP/1.1\nHost: {host}\n\n", True),
        Case("bare LF in one header line", b"GET / HTTP/1.1\r\nHost: {host}\nX-A: b\r\n\r\n", True),
        Case("bare CR in a value", b"GET / HTTP/1.1\r\nHost: {host}\r\nX-A: a\rb\r\n\r\n", True),
        Case("bare CR line ends", b"GET / HTTP/1.1\rHost: {host}\r\r", True),
        Case("NUL in a value", b"GET / HTTP/1.1\r\nHost: {host}\r\nX-A: a\x00b\r\n\r\n", True),
        Case("NUL in a name", b"GET / HTTP/1.1\r\nHost: {host}\r\nX-\x00A: b\r\n\r\n", True),
        Case("NUL in the target", b"GET /a\x00b HTTP/1.1\r\nHost: {host}\r\n\r\n", True),
        # huge and duplicate headers
        Case("huge header", _req(f"GET / HTTP/1.1\n{h}X-Big: {'a' * (1024 * 1024 + 10)}\n\n"), True),
        Case("too many headers", _req("GET / HTTP/1.1\n" + h + "".join(f"X-{i}: v\n" for i in range(300)) + "\n"),
             True),
        Case("two Host headers differing", _req(f"GET / HTTP/1.1\n{h}Host: other.test\n\n"), True),
        Case("empty Host", _req("GET / HTTP/1.1\nHost:\n\n"), False, expect=(400,)),
        Case("no Host", _req("GET / HTTP/1.1\n\n"), False, expect=(400,)),
        Case("space in a header name", _req(f"GET / HTTP/1.1\n{h}X A: b\n\n"), True),
        # bad versions
        Case("HTTP/1.2", _req(f"GET / HTTP/1.2\n{h}\n"), True),
        # gorouter's answer to an HTTP/2.0 request line on HTTP/1 is 505, and so is Portico's
        Case("HTTP/2.0 request line", _req(f"GET / HTTP/2.0\n{h}\n"), False, expect=(505,)),
        Case("HTTP/0.9 simple request", b"GET /\r\n\r\n", True),
        Case("lower-case version", _req(f"GET / http/1.1\n{h}\n"), True),
        Case("version HTTP/11", _req(f"GET / HTTP/11\n{h}\n"), True),
        Case("no version", _req(f"GET /\n{h}\n"), True),
        # bad chunk syntax
        Case("chunk size overflow", _req(f"POST / HTTP/1.1\n{h}{te}\n", b"ffffffffffffffffff5\r\nhello\r\n0\r\n\r\n"),
             True),
        Case("chunk size 0x5", _req(f"POST / HTTP/1.1\n{h}{te}\n", b"0x5\r\nhello\r\n0\r\n\r\n"), True),
        Case("chunk size negative", _req(f"POST / HTTP/1.1\n{h}{te}\n", b"-5\r\nhello\r\n0\r\n\r\n"), True),
        Case("bare LF in a chunk line", _req(f"POST / HTTP/1.1\n{h}{te}\n", b"5\nhello\r\n0\r\n\r\n"), True),
        Case("chunk data without CRLF", _req(f"POST / HTTP/1.1\n{h}{te}\n", b"5\r\nhelloXX0\r\n\r\n"), True),
        Case("space after a chunk size", _req(f"POST / HTTP/1.1\n{h}{te}\n", b"5 \r\nhello\r\n0\r\n\r\n"), True),
        Case("bare CR in a chunk extension", _req(f"POST / HTTP/1.1\n{h}{te}\n", b"5;a\rb\r\nhello\r\n0\r\n\r\n"),
             True),
        Case("bad trailer", _req(f"POST / HTTP/1.1\n{h}{te}\n", b"5\r\nhello\r\n0\r\nBad Trailer\r\n\r\n"),
             True),
        # absolute-form and odd targets
        Case("target with a space", _req(f"GET /a b HTTP/1.1\n{h}\n"), True),
        Case("target with a raw byte 0x7f", b"GET /a\x7fb HTTP/1.1\r\nHost: {host}\r\n\r\n", True),
        Case("lower-case method", _req(f"get / HTTP/1.1\n{h}\n"), True),
        Case("absolute form", _req("GET http://{host}/abs HTTP/1.1\nHost: other.test\n\n"), False),
        Case("absolute form with userinfo", _req(f"GET http://u:p@{{host}}/abs HTTP/1.1\n{h}\n"), False),
        Case("double slash target", _req(f"GET //double//slash HTTP/1.1\n{h}\n"), False),
        Case("encoded NUL in the target", _req(f"GET /a%00b HTTP/1.1\n{h}\n"), False),
        Case("chunk extension", _req(f"POST / HTTP/1.1\n{h}{te}\n", b"5;name=value\r\nhello\r\n0\r\n\r\n"), False),
        Case("CL body then garbage", _req(f"POST / HTTP/1.1\n{h}{cl}\n", b"helloGARBAGE\r\n\r\n"), False,
             responses=2),
        Case("chunked on HTTP/1.0", _req(f"POST / HTTP/1.0\n{h}{te}\n", chunked_ok), False),
    ]
    return c


CASES = _cases()


@dataclass
class CaseResult:
    name: str
    unsafe: bool
    statuses: list[int]
    closed: bool
    hung: bool
    forwarded: int           # complete requests the backend got for this case
    ambiguous: str = ""      # why, when it was
    expect: tuple[int, ...] = ()

    @property
    def unexpected_status(self) -> bool:
        return bool(self.expect) and (not self.statuses or self.statuses[-1] not in self.expect)

    @property
    def router_5xx(self) -> bool:
        return any(s >= 500 and s not in self.expect for s in self.statuses)


@dataclass
class CorpusCounts:
    cases: int = 0
    unsafe_cases: int = 0
    ambiguous: int = 0
    hanging: int = 0
    unsafe_not_rejected: int = 0
    server_errors: int = 0
    unexpected_status: int = 0
    results: list[CaseResult] = field(default_factory=list)

    def problems(self) -> list[CaseResult]:
        """The cases that broke a rule, with what happened (for a failure message)."""
        return [r for r in self.results if r.ambiguous or r.hung or (r.unsafe and not _rejected(r))
                or r.router_5xx or r.unexpected_status]

    def figures(self) -> dict[str, int]:
        return {"cases": self.cases, "unsafe cases": self.unsafe_cases, "forwarded ambiguously": self.ambiguous,
                "hanging": self.hanging, "unsafe not answered 4xx and closed": self.unsafe_not_rejected,
                "router 5xx": self.server_errors, "unexpected status": self.unexpected_status}


def _rejected(r: CaseResult) -> bool:
    return bool(r.statuses) and all(400 <= s < 500 for s in r.statuses[-1:]) and r.closed


# ---- the recording backend ------------------------------------------------------------------------------------

class _Recorded:
    def __init__(self) -> None:
        self.headers: list[tuple[bytes, bytes]] = []
        self.body = 0


class _BackendConn(asyncio.Protocol):
    def __init__(self, backend: RecordingBackend) -> None:
        self.backend = backend
        self.parser = HttpRequestParser(self)
        self.current = _Recorded()
        self.transport: asyncio.Transport = None  # type: ignore[assignment]  # set by connection_made

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        with self.backend.lock:
            self.backend.raw.append(data)
        try:
            self.parser.feed_data(data)
        except HttpParserUpgrade:
            # CONNECT or an Upgrade request: a complete request all the same; refuse the new protocol
            with self.backend.lock:
                self.backend.requests.append(self.current)
            self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            self.transport.close()
        except HttpParserError as exc:
            with self.backend.lock:
                self.backend.parse_errors.append(str(exc))
            self.transport.close()

    def on_message_begin(self) -> None:
        self.current = _Recorded()

    def on_header(self, name: bytes, value: bytes) -> None:
        self.current.headers.append((name, value))

    def on_body(self, body: bytes) -> None:
        self.current.body += len(body)

    def on_message_complete(self) -> None:
        with self.backend.lock:
            self.backend.requests.append(self.current)
        self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")


class RecordingBackend:
    """An HTTP/1.1 app on its own loop thread that answers 200 "ok" and records every request it parses."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[_Recorded] = []
        self.raw: list[bytes] = []
        self.parse_errors: list[str] = []
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="corpus-backend")
        self._server: asyncio.AbstractServer | None = None

    def start(self) -> RecordingBackend:
        self._thread.start()

        async def serve() -> None:
            self._server = await self._loop.create_server(lambda: _BackendConn(self), "127.0.0.1", 0)
            self.port = self._server.sockets[0].getsockname()[1]

        asyncio.run_coroutine_threadsafe(serve(), self._loop).result(10)
        return self

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def count(self) -> int:
        with self.lock:
            return len(self.requests)


# ---- the client side ------------------------------------------------------------------------------------------

def _read_responses(sock: socket.socket, wanted: int, deadline: float, await_close: bool
                    ) -> tuple[list[int], bool, bool]:
    """(statuses, closed, hung): read `wanted` responses, then (`await_close`) see whether the router closes."""
    buf = b""
    statuses: list[int] = []
    closed = False
    while len(statuses) < wanted and not closed:
        parsed = _parse_one(buf)
        if parsed is not None:
            status, used = parsed
            statuses.append(status)
            buf = buf[used:]
            continue
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return statuses, False, True
        sock.settimeout(remaining)
        try:
            data = sock.recv(65536)
        except TimeoutError:
            return statuses, False, True
        except OSError:
            data = b""
        if not data:
            closed = True
        buf += data
    while await_close and not closed:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        sock.settimeout(remaining)
        try:
            data = sock.recv(65536)
        except TimeoutError:
            break
        except OSError:
            data = b""
        if not data:
            closed = True
    hung = not statuses and not closed
    return statuses, closed, hung


def _parse_one(buf: bytes) -> tuple[int, int] | None:
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = buf[:end].decode("latin-1").split("\r\n")
    try:
        status = int(head[0].split(" ")[1])
    except (IndexError, ValueError):
        return (0, len(buf))
    length = 0
    for line in head[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip() or 0)
    if len(buf) < end + 4 + length:
        return None
    return status, end + 4 + length


def _framing_problem(rec: _Recorded) -> str:
    names = [n.lower() for n, _ in rec.headers]
    if b"transfer-encoding" in names and b"content-length" in names:
        return "Content-Length and Transfer-Encoding both forwarded"
    if names.count(b"content-length") > 1:
        return "two Content-Length headers forwarded"
    if names.count(b"host") > 1:
        return "two Host headers forwarded"
    for name, value in rec.headers:
        if any(c in value for c in (b"\r", b"\n", b"\x00")) or any(c in name for c in (b"\r", b"\n", b"\x00")):
            return "control characters forwarded in a header"
    return ""


def run_case(case: Case, router_port: int, backend: RecordingBackend, host: str = HOST,
             hang_after: float = 5.0) -> CaseResult:
    before = backend.count()
    with socket.create_connection(("127.0.0.1", router_port), timeout=hang_after) as sock:
        try:
            sock.sendall(case.data.replace(b"{host}", host.encode()))
        except OSError:
            pass  # the router may close early on a huge head; what it answered is read below
        statuses, closed, hung = _read_responses(sock, case.responses, time.monotonic() + hang_after,
                                                 await_close=case.unsafe)
    time.sleep(0.02)  # let a forwarded request finish arriving at the backend
    with backend.lock:
        got = backend.requests[before:]
    result = CaseResult(case.name, case.unsafe, statuses, closed, hung, len(got), expect=case.expect)
    for rec in got:
        problem = _framing_problem(rec)
        if problem:
            result.ambiguous = problem
    if case.unsafe and got:
        result.ambiguous = result.ambiguous or f"an unsafe request reached the backend ({len(got)})"
    proxied = sum(1 for s in statuses if s == 200)
    if len(got) > proxied:
        result.ambiguous = result.ambiguous or f"backend got {len(got)} requests, client {proxied} answers"
    return result


def run_corpus(router_port: int, register: Callable[[str, int], None], *, cases: list[Case] | None = None,
               hang_after: float = 5.0) -> CorpusCounts:
    """Send every case to the router on its own connection; counts as described in the module docstring."""
    backend = RecordingBackend().start()
    try:
        register(HOST, backend.port)
        counts = CorpusCounts()
        for case in cases or CASES:
            r = run_case(case, router_port, backend, hang_after=hang_after)
            counts.results.append(r)
            counts.cases += 1
            counts.unsafe_cases += case.unsafe
            counts.ambiguous += bool(r.ambiguous)
            counts.hanging += r.hung
            counts.unsafe_not_rejected += case.unsafe and not _rejected(r)
            counts.server_errors += r.router_5xx
            counts.unexpected_status += r.unexpected_status
        return counts
    finally:
        backend.stop()
