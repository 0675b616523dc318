"""The client side of an Exchange, as a typed interface: what the Exchange (and the router) may ask of it.

Two classes implement it: ClientConnection (one HTTP/1.1 connection, requests answered in order) and H2Stream
(one stream of an HTTP/2 connection). The Exchange writes its response with `write(bytes)`: first a complete
response head as HTTP/1.1 bytes (or a whole local response), then body bytes. An HTTP/1.1 client sends them as
they are; an HTTP/2 stream turns the head into a HEADERS frame and the body into DATA frames. `reframes_body`
tells the Exchange whether a body of unknown length must be chunk-framed for this client (HTTP/1.1) or passed
on unframed (HTTP/2: frames delimit it). mypy checks both classes against this Protocol (the TYPE_CHECKING
block below); nothing here runs on the request path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from portico.proxy.context import ProxyContext
    from portico.proxy.exchange import Exchange


class ClientSide(Protocol):
    ctx: ProxyContext
    client_ip: bytes                # for X-Forwarded-For
    client_ip_str: str
    client_addr_bytes: bytes        # for the access log
    http11: bool
    closed: bool
    reframes_body: bool             # True: chunk a body of unknown length; False: frames delimit it
    log_protocol: bytes             # the access log's protocol ("" : by the request line)

    def write(self, data: bytes) -> None: ...
    def send_trailers(self, headers: list) -> None: ...
    def cork(self) -> None: ...
    def uncork(self) -> None: ...
    def attached(self, ex: Exchange) -> bool: ...
    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...
    def exchange_finished(self, ex: Exchange, aborted: bool = False) -> None: ...
    def start_tunnel(self, ex: Exchange, conn: Any, rest: bytes) -> None: ...
    def peer_certificate(self) -> bytes | None: ...
    def close(self) -> None: ...


if TYPE_CHECKING:
    from portico.proxy.downstream import ClientConnection
    from portico.proxy.h2_stream import H2Stream

    def _both_implement_it(http1: ClientConnection, http2: H2Stream) -> tuple[ClientSide, ClientSide]:
        return http1, http2
