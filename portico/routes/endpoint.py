# cython: annotation_typing=False
"""One backend instance behind a route, plus the live state the balancer needs."""

from __future__ import annotations

from sys import intern
from typing import Any

import msgspec
from msgspec.structs import astuple

from portico.routes.guids import app_id_of, cf_block, instance_id_of, pack

try:
    import cython
    COMPILED: bool = cython.compiled
except ImportError:   # no Cython installed: certainly the pure module
    COMPILED = False


class Endpoint(msgspec.Struct, gc=False, eq=False):
    """A registered app instance.

    Registration fields are fixed once made; re-registering the same address replaces the object. The
    counters (`active`, `benched_until`) are the proxy's narrow way of telling the balancer what it saw.
    The X-CF-* request header block is built here per request (`cf_headers`), from the packed ids (`guids`).

    A msgspec Struct rather than a __slots__ class: built in C (a registration's endpoint in ~0.5 us, not
    ~1.1), 16 B smaller, and `gc=False` keeps a million endpoints out of every garbage collection's walk
    (an endpoint holds only strings, numbers and a str->str tags dict, so it can never be in a cycle).
    `eq=False`: endpoints compare and hash by identity, as the balancer's `exclude` needs.
    """

    # What a request reads comes first (after the 16-B header, in the object's first 64 B): where to dial, the
    # balancer's live counters, the X-CF-* values. Positional construction follows this order (new_endpoint,
    # the feed's endpoint_fields tuple), and `_same_fields` skips the live counters and the timestamps.
    host: str
    port: int
    tls: bool = False
    address: str = ""           # host:port, interned (many routes share an instance); set from them when not given
    active: int = 0             # requests in flight to this endpoint
    benched_until: float = 0.0  # monotonic time until which the balancer skips it
    guids: bytes | tuple = b""  # app GUID and instance GUID as one block (portico.routes.guids); see app_id
    private_instance_index: str = ""
    server_cert_domain_san: str = ""
    route_service_url: str = ""
    tags: dict[str, str] | None = None
    ttl: float = 120.0
    isolation_segment: str = ""
    protocol: str = "http1"
    availability_zone: str = ""
    load_balancing_algorithm: str = ""
    updated_at: float = 0.0
    updated_at_ns: int = 0

    is_route_service = False    # True only for portico.proxy.route_services' stand-in endpoints

    def __post_init__(self) -> None:
        # the route feed passes the address it computed (see registration_to_endpoint); others leave it to us
        if not self.address:
            self.address = intern(f"{self.host}:{self.port}")
        if not self.protocol:
            self.protocol = "http1"

    @property
    def app_id(self) -> str:
        """The registration's `app` GUID, as registered (kept packed in `guids`: built per call)."""
        return app_id_of(self.guids)

    @property
    def private_instance_id(self) -> str:
        """The registration's `private_instance_id`, as registered (kept packed in `guids`: built per call)."""
        return instance_id_of(self.guids)

    @property
    def cf_headers(self) -> bytes:
        """The X-CF-ApplicationID / InstanceIndex / InstanceID request header lines, built per request.

        Not kept: a kept block cost ~170 B for every endpoint that ever had traffic (~170 MB at a million
        routes). Compiled, the packed ids are written as hex straight into the block (guids.cf_block); a cache
        bounded in size cost more than the build on a big table (inserting and emptying it). Route services'
        stand-ins (a subclass) send none.
        """
        return _cf_header_block(self)

    @property
    def address_bytes(self) -> bytes:
        """The address as bytes, encoded per request (~30 ns): no per-endpoint copy, no table of them."""
        return self.address.encode()

    def same_registration(self, other: Endpoint) -> bool:
        """True when a re-registration only refreshes the timestamp, so live counters can be kept."""
        if other is self:
            return True
        # the registration's fields lead, in declaration order (but the live counters): two astuple calls
        # and a C loop over them instead of 28 attribute reads (~4k instructions a re-registration)
        return _same_fields(astuple(self), astuple(other))

    def to_json(self) -> dict:
        """This endpoint as gorouter's /routes shows it."""
        out: dict = {
            "address": self.address,
            "availability_zone": self.availability_zone,
            "protocol": self.protocol,
            "tls": self.tls,
            "ttl": int(self.ttl),
            "tags": self.tags or None,
        }
        if self.route_service_url:
            out["route_service_url"] = self.route_service_url
        if self.isolation_segment:
            out["isolation_segment"] = self.isolation_segment
        instance_id = instance_id_of(self.guids)
        if instance_id:
            out["private_instance_id"] = instance_id
        if self.server_cert_domain_san:
            out["server_cert_domain_san"] = self.server_cert_domain_san
        if self.load_balancing_algorithm:
            out["load_balancing_algorithm"] = self.load_balancing_algorithm
        return out

    def __repr__(self) -> str:
        return f"Endpoint({self.address}{' tls' if self.tls else ''})"


def new_endpoint(host: str, port: int, tls: bool, app_id: str, private_instance_id: str,
                 private_instance_index: str, server_cert_domain_san: str, route_service_url: str,
                 tags: dict[str, str] | None, ttl: float, isolation_segment: str, protocol: str,
                 availability_zone: str, load_balancing_algorithm: str, updated_at: float,
                 updated_at_ns: int, /) -> Endpoint:
    """`Endpoint(...)` for the bus's hot path: the same object, built with positional arguments only (a
    keyword call packs and unpacks a dict of 14 arguments), the two ids packed into one block."""
    return Endpoint(host, port, tls, "", 0, 0.0, pack(app_id, private_instance_id), private_instance_index,
                    server_cert_domain_san, route_service_url, tags, ttl, isolation_segment, protocol,
                    availability_zone, load_balancing_algorithm, updated_at, updated_at_ns)


def make_endpoint(host: str, port: int, *, app_id: str = "", private_instance_id: str = "", **fields: Any) -> Endpoint:
    """`Endpoint(...)` by keyword with the registration's two ids as strings (a Struct cannot take them: it keeps
    them packed in `guids`). For tests, snapshots and other cold builders."""
    return Endpoint(host, port, guids=pack(app_id, private_instance_id), **fields)


def _same_fields(mine: tuple, theirs: tuple) -> bool:
    """The registration fields of two endpoints' `astuple`s equal (each by identity first: the feed shares most
    values between registrations of one instance): the leading _REGISTRATION_END fields but the live counters."""
    for i in range(_REGISTRATION_END):
        if i in (_ACTIVE, _BENCHED_UNTIL):
            continue
        a = mine[i]
        b = theirs[i]
        if a is not b and a != b:
            return False
    return True


def _latin1(value: str) -> bytes:
    """Header-safe bytes: a registration must not be able to inject header lines."""
    return value.replace("\r", " ").replace("\n", " ").encode("latin-1", "replace")


def _cf_header_block(ep: Endpoint) -> bytes:
    """X-CF-ApplicationID / InstanceIndex / InstanceID lines.

    As gorouter, the first two are sent even when the registration has no `app` / `private_instance_index`
    (with an empty value); InstanceID falls back to ip:port. One format and one encode; a value carrying a
    CR or LF (it would inject header lines) takes the path that blanks them.
    """
    guids = ep.guids
    if COMPILED:
        block = cf_block(guids, ep.private_instance_index, ep.address)
        if block is not None:
            return block
    app, index, instance = app_id_of(guids), ep.private_instance_index, instance_id_of(guids) or ep.address
    if ("\r" not in app and "\n" not in app and "\r" not in index and "\n" not in index and "\r" not in instance
            and "\n" not in instance):
        text = f"X-CF-ApplicationID: {app}\r\nX-CF-InstanceIndex: {index}\r\nX-CF-InstanceID: {instance}\r\n"
        # ASCII (app guids, indexes, ip:port) is the same bytes in UTF-8, whose encoder is the cheaper call
        return text.encode() if text.isascii() else text.encode("latin-1", "replace")
    return (b"X-CF-ApplicationID: " + _latin1(app) + b"\r\nX-CF-InstanceIndex: " + _latin1(index)
            + b"\r\nX-CF-InstanceID: " + _latin1(instance) + b"\r\n")


# The fields `same_registration` compares: the registration's own (and the address made from them), not the
# timestamps or live counters. They are Endpoint's leading fields but `active` and `benched_until` (a test holds
# it to that).
_REGISTRATION_FIELDS = (
    "host", "port", "tls", "address", "guids", "private_instance_index", "server_cert_domain_san",
    "route_service_url", "tags", "ttl", "isolation_segment", "protocol", "availability_zone",
    "load_balancing_algorithm",
)


def field_positions(*names: str) -> tuple[int, ...]:
    """Where `names` sit in an Endpoint's astuple (and its constructor's positional arguments), for code that
    compares or renews an endpoint from a tuple of fields without building one (RouteTable.register_fields)."""
    return tuple(Endpoint.__struct_fields__.index(name) for name in names)


_ACTIVE, _BENCHED_UNTIL = field_positions("active", "benched_until")
_REGISTRATION_END = len(_REGISTRATION_FIELDS) + 2
