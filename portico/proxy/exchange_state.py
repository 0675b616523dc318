# cython: annotation_typing=False
"""The fields of an Exchange and their defaults, kept apart from its behaviour (exchange.py).

Pure Python keeps the defaults on the class, so making an exchange per request sets only the few fields that
differ. Compiled (exchange_state.pxd), the fields are typed slots of a cdef class, which has no class-level
values: its slots start as None, 0 or False and __cinit__ sets the other defaults. A unit test checks that
both give every field its DEFAULTS value.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

try:
    import cython
    COMPILED: bool = cython.compiled
except ImportError:   # no Cython installed: certainly the pure module
    COMPILED = False

if TYPE_CHECKING:
    from portico.proxy.context import ProxyContext
    from portico.proxy.downstream import ClientConnection
    from portico.proxy.upstream import BackendConnection, DialError
    from portico.routes.endpoint import Endpoint
    from portico.routes.pool import Pool

FRAME_NONE = 0       # response framing towards the client: no body (HEAD, 1xx, 204, 304); exchange.py has the rest


class ExchangeState:
    """What one exchange knows; Exchange (exchange.py) adds what it does."""

    client: ClientConnection
    ctx: ProxyContext
    method: bytes
    uri: bytes
    is_head: bool
    host: bytes
    pool: Pool                              # the router sets it before attempt() runs
    head: bytes                             # request line and forwarded headers, without endpoint headers
    tail: bytes                             # framing headers and the blank line
    request_id: bytes
    keep_alive: bool
    http11: bool                            # False for an HTTP/1.0 request: answered `HTTP/1.0`, close-delimited
    chunked_request: bool
    has_body: bool
    body_done: bool
    pending: list[bytes] | None
    pending_size: int
    endpoint: Endpoint                      # attempt() sets it before anything reads it
    tried: tuple | list
    attempts: int
    upstream: BackendConnection | None
    local_response: bytes
    status: int
    framing: int
    response_started: bool
    upstream_frames_by_close: bool
    request_bytes: int
    response_bytes: int
    started_at: float
    started_wall: float
    sent_at: float
    response_header_at: float
    router_error: str
    last_error: DialError | None
    user_agent: bytes
    referer: bytes
    x_forwarded_for: bytes
    x_forwarded_proto: bytes
    has_vcap_id_in_response: bool
    upgraded: bool
    upgrade_request: bool                   # a WebSocket/Upgrade request: HTTP/1.1 to the backend, never HTTP/2
    sticky_id: str
    session_cookie: bytes                   # the app's session Set-Cookie value, for __VCAP_ID__
    app_sets_vcap_id: bool
    negotiate_response: bool                # the backend answered WWW-Authenticate: Negotiate (auth stickiness)
    trace_debug: bool                       # X-Vcap-Trace matched trace_key: answer which router and backend served it
    must_be_sticky: bool                    # Authorization: Negotiate with __VCAP_ID__: that instance or none
    app_instance: Endpoint | None
    route_service: Endpoint | None          # set while the request goes to its route service
    log_values: tuple
    deadline: float
    finished: bool
    body_paused: bool                       # client reading paused because pending body chunks reached the bound
    request_trailers_list: list | None      # trailers ending the client's body, sent on at its end
    response_trailers_list: list | None     # trailers ending the backend's body, passed to the client

    def __cinit__(self, *args: object, **kwargs: object) -> None:
        """Compiled only (Cython calls it before __init__): the defaults that are not None, 0 or False."""
        self.host = b""
        self.head = b""
        self.tail = b"\r\n"
        self.request_id = b""
        self.keep_alive = True
        self.http11 = True
        self.tried = ()
        self.local_response = b""
        self.router_error = ""
        self.user_agent = b""
        self.referer = b""
        self.x_forwarded_for = b""
        self.x_forwarded_proto = b""
        self.sticky_id = ""
        self.session_cookie = b""
        self.log_values = ()


DEFAULTS: dict[str, object] = {
    "host": b"",
    "pool": None,
    "head": b"",
    "tail": b"\r\n",
    "request_id": b"",
    "keep_alive": True,
    "http11": True,
    "chunked_request": False,
    "has_body": False,
    "body_done": False,
    "pending": None,
    "pending_size": 0,
    "endpoint": None,
    "tried": (),
    "attempts": 0,
    "upstream": None,
    "local_response": b"",
    "status": 0,
    "framing": FRAME_NONE,
    "response_started": False,
    "upstream_frames_by_close": False,
    "request_bytes": 0,
    "response_bytes": 0,
    "started_at": 0.0,
    "started_wall": 0.0,
    "sent_at": 0.0,
    "response_header_at": 0.0,
    "router_error": "",
    "last_error": None,
    "user_agent": b"",
    "referer": b"",
    "x_forwarded_for": b"",
    "x_forwarded_proto": b"",
    "has_vcap_id_in_response": False,
    "upgraded": False,
    "upgrade_request": False,
    "sticky_id": "",
    "session_cookie": b"",
    "app_sets_vcap_id": False,
    "negotiate_response": False,
    "trace_debug": False,
    "must_be_sticky": False,
    "app_instance": None,
    "route_service": None,
    "log_values": (),
    "deadline": 0.0,
    "finished": False,
    "body_paused": False,
    "request_trailers_list": None,
    "response_trailers_list": None,
}

if not COMPILED:
    for _name, _value in DEFAULTS.items():
        setattr(ExchangeState, _name, _value)
