# cython: annotation_typing=False
"""The client side of an Exchange as a base class: the calls the Exchange makes on it.

ClientConnection (HTTP/1.1, downstream.py) and the HTTP/2 front's stream (h2_stream.py) subclass it; the fields
the Exchange and the router read of a client are listed by the ClientSide protocol (client_side.py), which mypy
checks. Compiled (client_base.pxd), the methods are `cpdef`: the Exchange's calls to an HTTP/1.1 client are C
calls through the vtable, while the HTTP/2 stream, a Python subclass, overrides them as ordinary methods.
This module imports nothing of the proxy, so every other module may build on it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from portico.proxy.exchange import Exchange
    from portico.proxy.flow import Flow


class ClientBase:
    """What an Exchange may ask of its client: write the response, pause or resume reading, be told the end.

    `flow` (portico.proxy.flow.Flow) is the client's backpressure with whichever backend serves it; each
    subclass makes its own in `__init__`. Only the flow calls `pause_reading`/`resume_reading`. The fields the
    router and the observer read of every client are here too (typed slots when compiled: C reads), and each
    subclass sets them in `__init__` (a class attribute would not be seen by a C read)."""

    __slots__ = ("client_addr_bytes", "client_ip", "client_ip_str", "flow", "http11", "log_protocol")
    flow: Flow
    client_ip: bytes            # X-Forwarded-For
    client_ip_str: str          # a Host naming the client's own address is an empty host
    client_addr_bytes: bytes    # the access log's client address
    http11: bool                # set by the router per request
    log_protocol: bytes         # the access log's protocol (b"": HTTP/1.x by the request line)

    def write(self, data: bytes) -> None:
        """A complete response head (or a whole local response) first, then body bytes."""
        raise NotImplementedError

    def send_trailers(self, headers: list) -> None:
        raise NotImplementedError

    def cork(self) -> None:
        """Hold writes until uncork(), so what one backend read produced leaves in one send."""
        raise NotImplementedError

    def uncork(self) -> None:
        raise NotImplementedError

    def attached(self, ex: Exchange) -> bool:
        """Whether `ex` is still the exchange this client is being answered by."""
        raise NotImplementedError

    def pause_reading(self) -> None:
        raise NotImplementedError

    def resume_reading(self) -> None:
        raise NotImplementedError

    def exchange_finished(self, ex: Exchange, aborted: bool = False) -> None:
        raise NotImplementedError

    def start_tunnel(self, ex: Exchange, conn: Any, rest: bytes) -> None:
        raise NotImplementedError

    def peer_certificate(self) -> bytes | None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError
