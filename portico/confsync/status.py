"""A tiny JSON status endpoint (--status-port): per-resource last render, reload and error.

HTTP 200 when every resource is healthy, 503 otherwise, so a load balancer or `curl -f` can use it directly.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable


async def serve_status(get_status: Callable[[], dict], port: int, host: str = "127.0.0.1") -> asyncio.Server:
    """Start serving; the caller closes the returned server."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(5.0):
                head = await reader.readuntil(b"\r\n\r\n")
            method, target = ([*head.split(b"\r\n", 1)[0].decode("latin-1").split(" "), "", ""])[:2]
            if method not in ("GET", "HEAD"):
                code, body = 405, {"error": "use GET"}
            elif target.split("?")[0] not in ("/", "/status", "/health"):
                code, body = 404, {"error": "not found; try /status"}
            else:
                body = get_status()
                code = 200 if body.get("ok") else 503
            payload = json.dumps(body, indent=2, default=str).encode() + b"\n"
            reason = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}[code]
            writer.write(f"HTTP/1.1 {code} {reason}\r\nContent-Type: application/json\r\n"
                         f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode())
            if method != "HEAD":
                writer.write(payload)
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, host, port)
