"""The PROXY protocol (v1 text and v2 binary) in front of HTTP, for `enable_proxy`.

A load balancer that speaks TCP (HAProxy with `send-proxy`/`send-proxy-v2`) writes the client's address
before the HTTP request; the router then uses that address for X-Forwarded-For and the access log. As in
gorouter (go-proxyproto), the header is optional: a connection that does not start with one is plain HTTP
from its peer. A header that starts like one but is malformed closes the connection.
"""

from __future__ import annotations

import logging
import socket
import struct
from typing import TYPE_CHECKING

from portico.proxy.downstream import ClientConnection

if TYPE_CHECKING:
    from portico.proxy.context import ProxyContext

log = logging.getLogger("portico.proxy")

V1_PREFIX = b"PROXY "
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
V1_MAX = 107                     # the longest v1 line, CRLF included
NEED_MORE = object()             # not enough bytes yet to decide


class ProxyHeaderError(Exception):
    """A malformed PROXY header."""


def parse(data: bytes):
    """Look at the first bytes of a connection.

    Returns NEED_MORE, or (header length, (client ip, client port) or None). Length 0 means no PROXY header;
    None for the address means the header carries none (v1 UNKNOWN, v2 LOCAL or a non-IP family).
    """
    if data[:6] == V1_PREFIX:
        return _v1(data)
    if data[:12] == V2_SIGNATURE:
        return _v2(data)
    if V1_PREFIX.startswith(data[:6]) or V2_SIGNATURE.startswith(data[:12]):
        return NEED_MORE          # a prefix of a header: wait for more (an empty read never comes here)
    return 0, None


def _v1(data: bytes):
    end = data.find(b"\r\n", 0, V1_MAX)
    if end < 0:
        if len(data) >= V1_MAX:
            raise ProxyHeaderError("PROXY v1 line too long")
        return NEED_MORE
    parts = data[:end].split(b" ")
    if len(parts) >= 2 and parts[1] == b"UNKNOWN":
        return end + 2, None
    if len(parts) != 6 or parts[1] not in (b"TCP4", b"TCP6"):
        raise ProxyHeaderError("malformed PROXY v1 line")
    family = socket.AF_INET if parts[1] == b"TCP4" else socket.AF_INET6
    try:
        src = parts[2].decode("ascii")
        socket.inet_pton(family, src)
        socket.inet_pton(family, parts[3].decode("ascii"))
        port = int(parts[4])
        if not (0 <= port <= 65535 and 0 <= int(parts[5]) <= 65535):
            raise ValueError
    except (ValueError, OSError, UnicodeDecodeError):
        raise ProxyHeaderError("malformed address in PROXY v1 line") from None
    return end + 2, (src, port)


def _v2(data: bytes):
    if len(data) < 16:
        return NEED_MORE
    version_command, family, length = data[12], data[13], struct.unpack("!H", data[14:16])[0]
    if version_command >> 4 != 2 or version_command & 0x0F > 1:
        raise ProxyHeaderError("unsupported PROXY v2 version or command")
    total = 16 + length
    if len(data) < total:
        return NEED_MORE
    if version_command & 0x0F == 0:      # LOCAL: the balancer's own connection (health checks)
        return total, None
    body = data[16:total]
    if family >> 4 == 1 and length >= 12:          # AF_INET
        return total, (socket.inet_ntop(socket.AF_INET, body[0:4]), struct.unpack("!H", body[8:10])[0])
    if family >> 4 == 2 and length >= 36:          # AF_INET6
        return total, (socket.inet_ntop(socket.AF_INET6, body[0:16]), struct.unpack("!H", body[32:34])[0])
    if family >> 4 in (1, 2):
        raise ProxyHeaderError("PROXY v2 address block too short")
    return total, None                              # AF_UNIX or UNSPEC: keep the peer's address


class ProxiedClientConnection(ClientConnection):
    """A client connection that may start with a PROXY header (used only when enable_proxy is on)."""

    def __init__(self, ctx: ProxyContext) -> None:
        super().__init__(ctx)
        self._preamble: bytes | None = b""     # None once the header (or its absence) is settled

    def data_received(self, data: bytes) -> None:
        if self._preamble is None:
            ClientConnection.data_received(self, data)
            return
        data = self._preamble + data
        try:
            found = parse(data)
        except ProxyHeaderError as exc:
            log.info("closing %s: %s", self.client_addr, exc)
            self._preamble = None
            self.close()
            return
        if found is NEED_MORE:
            self._preamble = data
            return
        self._preamble = None
        length, address = found
        if address is not None:
            self.set_client_address(*address)
        if len(data) > length:
            ClientConnection.data_received(self, data[length:])
