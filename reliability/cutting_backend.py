"""A backend that resets its connection (TCP RST) part-way through a 200's body, in each framing.

/cut-length: Content-Length 100000, 1000 bytes sent.  /cut-chunked: chunked, three chunks sent, no last chunk.
/cut-close: no length (ends at close), 1000 bytes sent. Then RST, which a client can never take for a clean end.
"""

from __future__ import annotations

import asyncio
import socket
import struct

from reliability.parts import loop_thread

FULL = 100_000


class CuttingBackend:
    def __init__(self) -> None:
        self.port = 0
        self.server: asyncio.AbstractServer | None = None
        self.cut = 0

    def start(self) -> CuttingBackend:
        async def _start() -> None:
            self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
            self.port = self.server.sockets[0].getsockname()[1]

        loop_thread().run(_start())
        return self

    def stop(self) -> None:
        async def _stop() -> None:
            if self.server is not None:
                self.server.close()

        loop_thread().run(_stop())

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.transport.abort()
            return
        path = head.split(b" ", 2)[1]
        if path.startswith(b"/cut-length"):
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % FULL + b"x" * 1000)
        elif path.startswith(b"/cut-chunked"):
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"3e8\r\n" + b"x" * 1000 + b"\r\n")
        else:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n" + b"x" * 1000)
        await writer.drain()
        await asyncio.sleep(0.02)
        self.cut += 1
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()
