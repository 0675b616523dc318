# cython: annotation_typing=False
"""gorouter's NATS messages: the registration schema, its decoding and encoding, and the router.start payload.

The wire format is gorouter's contract, so existing registrars and `nats-pub` keep working:

- unknown fields are ignored, a missing field takes its default;
- `null` is treated like a missing field (Go's decoder does the same), so `"tags": null` from a Go registrar
  is fine;
- a wrong type (`"private_instance_index": 3`, `"port": "80"`), a port outside 0..65535, a `protocol` other
  than http1/http2, or a `route_service_url` that does not start with `https` rejects the whole message.

Everything here is pure: no I/O, no clocks (time is passed in). `apply_registration` /
`apply_unregistration` are what the bus runs per message, kept here so they can be timed without NATS.
"""

from __future__ import annotations

from sys import intern
from typing import TYPE_CHECKING, Annotated, Literal, cast

import msgspec
from msgspec.structs import astuple

from portico.routes.endpoint import Endpoint
from portico.routes.guids import pack as pack_guids
from portico.routes.pool import ALGORITHMS

if TYPE_CHECKING:   # compiled, messages.pxd cimports RouteTable (its register path is then a C call)
    from portico.routes.table import RouteTable

REGISTER = "router.register"
UNREGISTER = "router.unregister"
GREET = "router.greet"
START = "router.start"

Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]


class MalformedMessage(ValueError):
    """A NATS message that is not a valid registration; str() is a one-line reason."""


class Options(msgspec.Struct, omit_defaults=True, gc=False):
    """Per-route options of a registration."""

    loadbalancing: str | None = ""


class Registration(msgspec.Struct, omit_defaults=True, gc=False):
    """One `router.register` / `router.unregister` message, field for field as gorouter reads it.

    After decoding, no field is None: nulls are replaced by the defaults below (only `tags` and `options`
    stay None when absent, meaning "none").
    """

    host: str | None = ""
    port: Port | None = 0
    tls_port: Port | None = 0
    uris: list[str] | None = msgspec.field(default_factory=list)
    app: str | None = ""
    private_instance_id: str | None = ""
    private_instance_index: str | None = ""
    server_cert_domain_san: str | None = ""
    route_service_url: str | None = ""
    tags: dict[str, str] | None = None
    stale_threshold_in_seconds: int | None = 0
    isolation_segment: str | None = ""
    protocol: Literal["", "http1", "http2"] | None = ""
    availability_zone: str | None = ""
    endpoint_updated_at_ns: int | None = 0
    options: Options | None = None

    def __post_init__(self) -> None:
        # null means "not sent": normalise once here so readers never see None (cheap identity checks).
        if self.host is None:
            self.host = ""
        if self.port is None:
            self.port = 0
        if self.tls_port is None:
            self.tls_port = 0
        if self.uris is None:
            self.uris = []
        if self.app is None:
            self.app = ""
        if self.private_instance_id is None:
            self.private_instance_id = ""
        if self.private_instance_index is None:
            self.private_instance_index = ""
        if self.server_cert_domain_san is None:
            self.server_cert_domain_san = ""
        rs = self.route_service_url
        if rs is None:
            self.route_service_url = ""
        elif rs and not rs.startswith("https"):
            raise ValueError(f"route_service_url must use https, got {rs!r}")
        if self.stale_threshold_in_seconds is None:
            self.stale_threshold_in_seconds = 0
        if self.isolation_segment is None:
            self.isolation_segment = ""
        if self.protocol is None:
            self.protocol = ""
        if self.availability_zone is None:
            self.availability_zone = ""
        if self.endpoint_updated_at_ns is None:
            self.endpoint_updated_at_ns = 0
        if self.options is not None and self.options.loadbalancing is None:
            self.options.loadbalancing = ""

    @property
    def tls(self) -> bool:
        return self.tls_port != 0

    @property
    def address(self) -> str:
        """`host:port` as the route table keys it (the TLS port when there is one)."""
        return f"{self.host}:{self.tls_port or self.port}"


class _StrictOptions(msgspec.Struct, gc=False):
    loadbalancing: str = ""


class StrictRegistration(msgspec.Struct, gc=False):
    """Registration without nulls: the same fields and checks, no `__post_init__` (~0.35 us less per decode).

    For the route feed's hot path: a payload it rejects (a null, or anything invalid) is decoded again as a
    `Registration`, which accepts nulls and words the error; so results and errors are the same.
    """

    host: str = ""
    port: Port = 0
    tls_port: Port = 0
    uris: list[str] = []
    app: str = ""
    private_instance_id: str = ""
    private_instance_index: str = ""
    server_cert_domain_san: str = ""
    route_service_url: Annotated[str, msgspec.Meta(pattern="^(?:https|$)")] = ""
    # the tags object as JSON: checked_tags checks it and gives the shared dict (or None), so a burst that repeats
    # one app's tags compares bytes instead of building and comparing a dict per message
    tags: msgspec.Raw = msgspec.Raw()
    stale_threshold_in_seconds: int = 0
    isolation_segment: str = ""
    protocol: Literal["", "http1", "http2"] = ""
    availability_zone: str = ""
    endpoint_updated_at_ns: int = 0
    options: _StrictOptions | None = None

    @property
    def tls(self) -> bool:
        return self.tls_port != 0

    @property
    def address(self) -> str:
        """`host:port` as the route table keys it (the TLS port when there is one)."""
        return f"{self.host}:{self.tls_port or self.port}"


_strict_decode = msgspec.json.Decoder(StrictRegistration).decode


def field_at(name: str) -> int:
    """Where a registration field sits in its fields tuple (`astuple`'s order, the same for both Structs)."""
    return StrictRegistration.__struct_fields__.index(name)


_URIS_AT = field_at("uris")
_TAGS_AT = field_at("tags")
_tags_decode = msgspec.json.Decoder(dict[str, str] | None).decode
_last_raw_tags: list = [msgspec.Raw(), None]   # the last tags JSON checked_tags checked, and its shared dict


def strict_decode(data: bytes) -> StrictRegistration:
    """The hot path's first try: no nulls, every check in C; on DecodeError use decode_registration_strict_first.

    The tags come out as the shared dict `checked_tags` gives (None when absent or empty). Tags that are not a
    str -> str object raise DecodeError like any other field (decode_registration_strict_first then words the
    error from the full Registration decode).
    """
    reg = _strict_decode(data)
    raw = reg.tags
    reg.tags = checked_tags(raw) if raw else None  # type: ignore[assignment]  # from here on, the checked dict
    return reg


def strict_fields(data: bytes) -> tuple:
    """The route feed's decode: `strict_decode`'s checks, the result as the registration's fields in order
    (msgspec's `astuple`, what `apply_fields` takes), the tags still their JSON (`checked_tags` checks them).

    No attribute is read or written on the decoded Struct (~150 instructions each from C): its fields come out
    in one call, and the Struct is freed with them.
    """
    return astuple(_strict_decode(data))


def checked_tags(raw: msgspec.Raw) -> dict[str, str] | None:
    """A registration's tags JSON as the shared dict `shared_tags` gives (None when empty or null); raises
    DecodeError when they are not a str -> str object. A burst repeats one app's tags, so JSON equal to the last
    message's is not decoded again: bytes are compared instead of a dict built and compared per message."""
    last = _last_raw_tags
    if raw == last[0]:
        return last[1]
    tags = shared_tags(_tags_decode(raw))
    last[0] = raw.copy()
    last[1] = tags
    return tags


_decoder = msgspec.json.Decoder(Registration)
_encoder = msgspec.json.Encoder()

#: The raw decode, for hot paths that handle `msgspec.DecodeError` themselves (see `describe_error`).
decode_registration_fast = _decoder.decode


def decode_registration_strict_first(data: bytes) -> StrictRegistration:
    """The hot path's decode: StrictRegistration, else Registration (raises its msgspec.DecodeError).

    A decoded Registration has no None field left (its `__post_init__` fills them), so it reads exactly like
    a StrictRegistration: the cast states that for the type checker.
    """
    try:
        return strict_decode(data)
    except msgspec.DecodeError:
        return cast(StrictRegistration, _decoder.decode(data))


def describe_error(data: bytes, err: Exception) -> str:
    """A clear one-line reason for a message that failed to decode."""
    if not data or not data.strip():
        return "empty payload"
    text = str(err).replace("\n", " ")
    if isinstance(err, msgspec.ValidationError):
        return text
    return text  # "JSON is malformed: ..." or "Input data was truncated"


def decode_registration(data: bytes) -> Registration:
    """Decode one registration message; raise MalformedMessage with a one-line reason when it is not valid."""
    try:
        return _decoder.decode(data)
    except msgspec.DecodeError as err:  # ValidationError is a DecodeError
        raise MalformedMessage(describe_error(data, err)) from None


def encode_registration(reg: Registration) -> bytes:
    """JSON for publishing; empty optional fields are left out, host and uris first as in the docs."""
    return _encoder.encode(reg)


_TAGS: dict[tuple, dict[str, str]] = {}
_TAGS_LIMIT = 50_000
_last_tags: list[dict[str, str]] = [{}]

# host -> port -> (host, port, "host:port"): one shared object of each per instance address, found with two
# dict hits (interning the host and formatting and interning the address took ~0.3 us per registration).
_ADDRESSES: dict[str, dict[int, tuple[str, int, str]]] = {}
_ADDRESSES_LIMIT = 200_000   # distinct hosts kept; past it the cache starts over (values stay interned)


_last_host: list = ["", {}]     # the host of the last registration and its ports in _ADDRESSES (see endpoint_fields)
_last_index: list[str] = [""]   # the shared instance index of the last registration


def shared_address(host: str, port: int) -> tuple[str, int, str]:
    """The shared (host, port, "host:port") for an instance address (see _ADDRESSES)."""
    ports = _ADDRESSES.get(host)
    if ports is None:
        if len(_ADDRESSES) >= _ADDRESSES_LIMIT:
            _ADDRESSES.clear()
        host = intern(host)
        ports = _ADDRESSES[host] = {}
    found = ports.get(port)
    if found is None:
        found = ports[port] = (intern(host), port, intern(f"{host}:{port}"))
    return found


# private_instance_index -> itself, interned: route emitters send "0", "1", ... (a dict hit is cheaper than intern())
_INDEXES: dict[str, str] = {}
_INDEXES_LIMIT = 10_000


def shared_instance_index(index: str) -> str:
    """The shared object for an instance index (see _INDEXES); past the limit, the index interned."""
    index = intern(index)
    if len(_INDEXES) < _INDEXES_LIMIT:
        _INDEXES[index] = index
    return index


def shared_tags(tags: dict[str, str] | None) -> dict[str, str] | None:
    """One dict object for every endpoint with the same tags (routes of one app repeat them): tags are never
    changed after registration, and a 100k-route table then holds a handful of tag dicts, not 100k. A burst
    repeats the same tags message after message, so the last ones are compared first (no key built)."""
    if not tags:
        return None
    last = _last_tags[0]
    if tags == last:
        return last
    key = tuple(tags.items())
    found = _TAGS.get(key)
    if found is None:
        if len(_TAGS) >= _TAGS_LIMIT:
            return tags
        found = _TAGS[key] = tags
    _last_tags[0] = found
    return found


def registration_to_endpoint(reg: StrictRegistration, table: RouteTable, now: float) -> Endpoint:
    """The Endpoint a registration describes: TLS when tls_port != 0 (then that port is used).

    Values that repeat across a table (host addresses, ports, instance indexes, tags) are shared so each is
    held once: this keeps a large table near its memory target (a port above 256 is otherwise a 32 B int
    object per endpoint).
    """
    return endpoint_from_fields(astuple(reg), table, now)


def endpoint_from_fields(fields: tuple, table: RouteTable, now: float) -> Endpoint:
    """`registration_to_endpoint` from the registration's fields in declaration order (msgspec's `astuple`)."""
    return Endpoint(*endpoint_fields(fields, fields[_TAGS_AT], table, now))


def endpoint_fields(fields: tuple, tags: dict[str, str] | None, table: RouteTable, now: float) -> tuple:
    """The Endpoint a registration describes, as its constructor's arguments in Endpoint's field order (the
    address given, the live counters zero, the two ids packed into one block), not yet built: the table compares
    them with the endpoint it keeps (`RouteTable.renew`), so an unchanged re-registration builds nothing.

    The route feed runs this for every registration: one `astuple` call hands over all sixteen fields (reading
    them one by one as attributes cost ~150 instructions each, compiled or not), and the common cases are
    inline.
    """
    (host, port, tls_port, _uris, app, instance_id, index, san, route_service_url, _tags, stale, isolation_segment,
     protocol, zone, updated_at_ns, options) = fields
    if tls_port:
        port = tls_port
    # a burst's registrations mostly come from one cell (one host, its ports) and repeat an instance index: a
    # string compare with the last one is cheaper than hashing the freshly decoded string for a dict lookup
    last = _last_host
    if host == last[0]:
        ports = last[1]
    else:
        ports = _ADDRESSES.get(host)
        if ports is not None:
            last[0] = host
            last[1] = ports
    shared = ports.get(port) if ports is not None else None
    if shared is None:
        shared = shared_address(host, port)
        last[0] = shared[0]
        last[1] = _ADDRESSES[shared[0]]
    host, port, address = shared
    if tags:
        last = _last_tags
        if tags is not last[0]:     # checked_tags' tags are already the shared dict
            tags = last[0] if tags == last[0] else shared_tags(tags)
    else:
        tags = None
    last = _last_index
    if index == last[0]:
        shared_index = last[0]
    else:
        found = _INDEXES.get(index)
        shared_index = found if found is not None else shared_instance_index(index)
        last[0] = shared_index
    lb = options.loadbalancing if options is not None else ""
    return (  # positional, the address given: Endpoint.__post_init__ then has nothing to compute
        host, port, tls_port != 0, address, 0, 0.0, pack_guids(app, instance_id), shared_index, san,
        route_service_url, tags, table.ttl_for(stale) if stale else table.droplet_stale_threshold,
        isolation_segment, protocol or "http1", zone, lb if lb and lb in ALGORITHMS else "", now, updated_at_ns,
    )


def apply_registration(table: RouteTable, reg: StrictRegistration, now: float) -> Endpoint | None:
    """router.register: put the endpoint in each uri's pool (one Endpoint shared by all of them); see apply_fields."""
    fields = astuple(reg)
    return apply_fields(table, fields, fields[_TAGS_AT], now)


def apply_fields(table: RouteTable, fields: tuple, tags: dict[str, str] | None, now: float) -> Endpoint | None:
    """`apply_registration` from the registration's fields (`astuple`'s, or `strict_fields`') and its checked tags.

    A pool that keeps this registration unchanged only has it renewed (`RouteTable.renew`); the Endpoint is
    built once, and only for a uri where it is new or changed. Returns the endpoint in use for the last uri.
    """
    uris = fields[_URIS_AT]
    if not uris:
        return None
    values = endpoint_fields(fields, tags, table, now)
    if len(uris) == 1:      # the common case: one call, one lookup
        uri = uris[0]
        return table.register_fields(uri, values) if uri else None
    endpoint = None
    used = None
    for uri in uris:
        if uri:
            used = table.renew(uri, values)
            if used is None:
                if endpoint is None:
                    endpoint = Endpoint(*values)
                used = table.register(uri, endpoint)
    return used


def apply_unregistration(table: RouteTable, reg: StrictRegistration) -> int:
    """router.unregister: remove `host:port` from each uri's pool; return how many endpoints went."""
    uris = reg.uris
    if not uris:
        return 0
    address = reg.address
    unregister = table.unregister
    removed = 0
    for uri in uris:
        if uri and unregister(uri, address) is not None:
            removed += 1
    return removed


def start_payload(router_id: str, ip: str, minimum_register_interval: float, prune_threshold: float) -> bytes:
    return _encoder.encode({
        "id": router_id,
        "hosts": [ip],
        "minimumRegisterIntervalInSeconds": int(minimum_register_interval),
        "pruneThresholdInSeconds": int(prune_threshold),
    })


def start_message(state, config) -> bytes:
    """The router.start / router.greet reply payload of this router."""
    return start_payload(state.id, config.ip, config.start_response_delay_interval, config.droplet_stale_threshold)


__all__ = [
    "GREET", "REGISTER", "START", "UNREGISTER", "MalformedMessage", "Options", "Registration",
    "apply_fields", "apply_registration", "apply_unregistration", "checked_tags", "decode_registration",
    "decode_registration_fast", "describe_error", "encode_registration", "endpoint_fields", "endpoint_from_fields",
    "field_at", "registration_to_endpoint", "start_message", "start_payload", "strict_fields",
]
