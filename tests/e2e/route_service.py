"""A real route service for end-to-end tests: a TLS (or plain) HTTP server that does what a route service does.

It takes the router's request, records it, and sends it back through the router to X-CF-Forwarded-Url with the
X-CF-Proxy-Signature and X-CF-Proxy-Metadata it was given, then answers the client with the app's response
plus `X-Route-Service: <name>`. `mode` changes what it sends back: "forward" (the rule), "tamper" (a flipped
signature byte), "no-metadata" (the metadata header left out).
"""

from __future__ import annotations

import asyncio
import ssl
import threading
from urllib.parse import urlsplit

from support import _read_body, _read_request, loop_thread


class RouteService:
    def __init__(self, name: str = "rs", tls: ssl.SSLContext | None = None) -> None:
        self.name = name
        self.tls = tls
        self.port = 0
        self.router_port = 0            # where to send requests back (the router under test)
        self.mode = "forward"
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        self.server: asyncio.AbstractServer | None = None

    def url(self, path: str = "/svc") -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}{path}"

    def start(self) -> RouteService:
        async def _start():
            self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
            self.port = self.server.sockets[0].getsockname()[1]

        loop_thread().run(_start())
        return self

    def stop(self) -> None:
        async def _stop():
            if self.server is not None:
                self.server.close()

        loop_thread().run(_stop())

    async def _serve(self, reader, writer) -> None:
        try:
            while True:
                req = await _read_request(reader)
                if req is None:
                    break
                method, target, _version, headers, _raw = req
                body = await _read_body(reader, headers)
                h = {k.lower(): v for k, v in headers}
                with self.lock:
                    self.requests.append({"method": method, "target": target, "headers": headers})
                status_line, resp_headers, resp_body = await self._call_back(method, h, headers, body)
                out = [status_line]
                for k, v in resp_headers:
                    if k.lower() not in ("content-length", "transfer-encoding", "connection"):
                        out.append(f"{k}: {v}")
                out += [f"X-Route-Service: {self.name}", f"Content-Length: {len(resp_body)}"]
                writer.write(("\r\n".join(out) + "\r\n\r\n").encode("latin-1") + resp_body)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError, OSError):
            pass
        finally:
            writer.close()

    async def _call_back(self, method: str, h: dict, headers: list, body: bytes):
        forwarded = urlsplit(h["x-cf-forwarded-url"])
        target = forwarded.path + (f"?{forwarded.query}" if forwarded.query else "")
        lines = [f"{method} {target} HTTP/1.1", f"Host: {forwarded.netloc}", "Connection: close",
                 f"Content-Length: {len(body)}"]
        for k, v in headers:
            lk = k.lower()
            if lk in ("host", "connection", "content-length", "transfer-encoding"):
                continue
            if lk == "x-cf-proxy-signature" and self.mode == "tamper":
                v = ("A" if v[0] != "A" else "B") + v[1:]
            if lk == "x-cf-proxy-metadata" and self.mode == "no-metadata":
                continue
            lines.append(f"{k}: {v}")
        reader, writer = await asyncio.open_connection("127.0.0.1", self.router_port)
        try:
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
            await writer.drain()
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
            resp_headers = [tuple(p.strip() for p in line.split(":", 1)) for line in head[1:] if line]
            resp_body = await _read_body(reader, resp_headers)
            return head[0], resp_headers, resp_body
        finally:
            writer.close()
