# cython: annotation_typing=False
"""The backend side of an Exchange: what it may ask of the connection (or HTTP/2 stream) its request goes over.

Two classes implement it: UpstreamConnection (one HTTP/1.1 connection, upstream.py) and the HTTP/2 backend
stream (h2_backend_stream.py). Compiled (backend_side.pxd), BackendSide is a cdef class whose methods are
`cpdef`: the Exchange's calls to an HTTP/1.1 connection are C calls through its vtable, while the HTTP/2
stream, a Python subclass, overrides them as ordinary methods. This module imports nothing of the proxy, so
every other module may build on it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from portico.proxy.exchange import Exchange
    from portico.proxy.flow import Flow
    from portico.routes.endpoint import Endpoint


class BackendSide:
    """The backend-connection interface the Exchange uses; the response comes back through the Exchange's
    `response_head`, `response_body`, `response_trailers`, `response_done` and `upstream_lost`.

    `flow` is the Flow (portico.proxy.flow) of the client this connection serves, set by Flow.attach and
    cleared by Flow.detach (None while idle); the connection's pause_writing/resume_writing report to it.
    Only the flow calls `pause_reading`/`resume_reading`."""

    __slots__ = ("flow",)
    flow: Flow | None

    def attach(self, ex: Exchange) -> None:
        """`ex` sends its request over this connection now; the response callbacks go to it."""
        raise NotImplementedError

    def detach(self) -> None:
        raise NotImplementedError

    def reused(self) -> bool:
        """True when an earlier request went over this connection (one the backend may have closed since)."""
        raise NotImplementedError

    def send_request(self, head: bytes, chunked: bool, body: list[bytes] | None, ended: bool,
                     trailers: list | None = None) -> None:
        """The request head, any body that waited for the connection, and the body's end if it came."""
        raise NotImplementedError

    def send_body(self, chunk: Any) -> None:
        raise NotImplementedError

    def end_body(self, trailers: list | None = None) -> None:
        raise NotImplementedError

    def write(self, data: Any) -> None:
        """Raw bytes, once the connection is a tunnel."""
        raise NotImplementedError

    def pause_reading(self) -> None:
        raise NotImplementedError

    def resume_reading(self) -> None:
        raise NotImplementedError

    def release(self) -> None:
        """The exchange ended cleanly: the connection may serve another one."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def abort(self) -> None:
        raise NotImplementedError

    def endpoint_headers(self, endpoint: Endpoint) -> bytes:
        """The X-CF-* request header lines for `endpoint` (an HTTP/1.1 connection remembers its last ones)."""
        return endpoint.cf_headers


class BackendSource:
    """Where an Exchange gets a backend connection (Connector, upstream.py, is the one implementation).

    Compiled (backend_side.pxd), a cdef class: the Exchange's call for an idle connection is a C call, with no
    import cycle (upstream.pxd cimports the Exchange's layout, so the Exchange cannot cimport the Connector's).
    """

    __slots__ = ()

    def take_idle_for(self, endpoint: Endpoint, upgrade: bool = False) -> BackendSide | None:
        """An idle connection (or a new HTTP/2 stream) fit for `endpoint`, if one is kept."""
        raise NotImplementedError


def last_chunk(trailers: list | None) -> bytes:
    """The end of a chunked body, carrying `trailers` ((name, value) byte pairs) when there are any."""
    if not trailers:
        return b"0\r\n\r\n"
    return b"".join([b"0\r\n", *(b"%s: %s\r\n" % (name, value) for name, value in trailers), b"\r\n"])
