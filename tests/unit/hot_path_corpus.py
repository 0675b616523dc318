"""A corpus of exchanges through the real proxy objects (in memory), printed as bytes with the varying parts
(request ids, times) masked: run here and in a pure-Python subprocess, the two outputs must be identical.

`python -m tests.unit.hot_path_corpus` prints the corpus output as hex lines (used by test_hot_path.py).
"""

from __future__ import annotations

import asyncio
import re
import sys
import tempfile
from pathlib import Path

from portico.config.settings import RouterConfig
from portico.observe.access_log import AccessLog
from tests.unit.memory import MemoryProxy, turn

REQUESTS = [
    (b"GET / HTTP/1.1\r\nHost: app.example\r\n\r\n",
     b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n"),
    (b"GET /a?q=1 HTTP/1.1\r\nHost: APP.example:80\r\nUser-Agent: curl/8 \"quoted\"\r\nReferer: http://r/\\x\r\n"
     b"X-Forwarded-For: 1.2.3.4\r\nX-Forwarded-Proto: https\r\nCookie: JSESSIONID=1; __VCAP_ID__=x\r\n"
     b"Connection: keep-alive, X-Drop\r\nX-Drop: 1\r\nSpan-Id: caf\xc3\xa9\r\n\r\n",
     b"HTTP/1.1 201 Created\r\nSet-Cookie: JSESSIONID=2\r\nTransfer-Encoding: chunked\r\nConnection: X-Hop\r\n"
     b"X-Hop: 1\r\nX-Vcap-Request-Id: mine\r\n\r\n3\r\nabc\r\n0\r\n\r\n"),
    (b"POST /up HTTP/1.1\r\nHost: app.example\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nhello",
     b"HTTP/1.1 204 No Content\r\nServer: x\r\n\r\n"),
    (b"HEAD / HTTP/1.0\r\nHost: app.example\r\n\r\n",
     b"HTTP/1.0 200 OK\r\nContent-Length: 10\r\n\r\n"),
    (b"GET / HTTP/1.1\r\nHost: nowhere.example\r\n\r\n", b""),
    (b"GET / HTTP/1.1\r\nHost: app.example\r\nHost: other\r\n\r\n", b""),
    (b"GET / HTTP/1.1\r\nHost: app.example\r\nUser-Agent: HTTP-Monitor/1.1\r\n\r\n", b""),
    (b"GET /x HTTP/1.1\r\nHost: app.example\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nbody\r\n0\r\n\r\n",
     b"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n"),
    # heads the compiled router writes into its buffer, or starts over as pieces for (Connection-named fields)
    (b"GET /t HTTP/1.1\r\nHost: app.example\r\nTE: trailers\r\nConnection: keep-alive, TE\r\nX-A: 1\r\n\r\n",
     b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
    (b"GET /ws HTTP/1.1\r\nHost: app.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
     b"X-Forwarded-For: 10.0.0.1\r\nX-Forwarded-For: 10.0.0.2\r\nX-Request-Start: 1\r\n\r\n",
     b"HTTP/1.1 400 No\r\nContent-Length: 0\r\n\r\n"),
    (b"GET /k HTTP/1.1\r\nHost: app.example\r\nConnection: keep-alive\r\nAccept: */*\r\n\r\n",
     b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
    # canonical GUIDs, kept packed: the X-CF-* lines and the log's ids written from the block
    (b"GET / HTTP/1.1\r\nHost: guids.example\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
    (b"GET / HTTP/1.1\r\nHost: short.example\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
    (b"GET / HTTP/1.1\r\nHost: guids.example\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
]

_MASKS = [
    (re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"), b"<request-id>"),
    (re.compile(rb"X-Request-Start: \d+"), b"X-Request-Start: <ms>"),
    (re.compile(rb"\[\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z\]"), b"[<time>]"),
    (re.compile(rb"(response_time|gorouter_time):[\d.]+"), rb"\1:<s>"),
]


def mask(data: bytes) -> bytes:
    for pattern, replacement in _MASKS:
        data = pattern.sub(replacement, data)
    return data


async def run_corpus(log_path: Path) -> list[bytes]:
    """Each request on a fresh client connection; what the client and the backend got, then the access log."""
    loop = asyncio.get_running_loop()
    config = RouterConfig(extra_headers_to_log=("Span-Id",))
    log = AccessLog(str(log_path), extra_headers=("Span-Id",))
    proxy = MemoryProxy(loop, config=config, access_log=log)
    proxy.route("app.example", app_id="app-guid", private_instance_id="inst-1", private_instance_index="0")
    proxy.route("guids.example", port=9001, app_id="0a1b2c3d-4e5f-1a2b-0c9d-8e7f6a5b4c3d",
                private_instance_id="ffeeddcc-0011-1234-0000-abcdefabcdef", private_instance_index="3")
    proxy.route("short.example", port=9002, app_id="0a1b2c3d-4e5f-1a2b-0c9d-8e7f6a5b4c3d",
                private_instance_id="5a6b7c8d-0e1f-1a2b-3c4d-5e6f", private_instance_index="12")
    out: list[bytes] = []
    for request, response in REQUESTS:
        _conn, client = proxy.client()
        client.protocol.data_received(request)  # type: ignore[union-attr]
        await turn()
        for upstream in proxy.connector.dialed:   # the backend connection this request went to, if any
            sent = upstream.transport.take()  # type: ignore[attr-defined]
            if sent:
                out.append(b"backend got: " + sent)
                upstream.data_received(response)
                await turn()
        out.append(b"client got: " + client.take())
    log.close()
    out.append(b"access log: " + log_path.read_bytes())
    return [mask(part) for part in out]


def main() -> None:
    import uvloop

    with tempfile.TemporaryDirectory() as tmp:
        parts = uvloop.run(run_corpus(Path(tmp) / "access.log"))
    for part in parts:
        sys.stdout.write(part.hex() + "\n")


if __name__ == "__main__":
    main()
