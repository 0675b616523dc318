"""One backend instance behind a route, plus the live state the balancer needs."""

from __future__ import annotations

from sys import intern

_ADDRESS_BYTES: dict[str, bytes] = {}


class Endpoint:
    """A registered app instance.

    Registration fields are fixed once made; re-registering the same address replaces the object. The
    counters (`active`, `benched_until`) are the proxy's narrow way of telling the balancer what it saw.
    The X-CF-* request header block is built here once, so the proxy does not rebuild it per request.
    """

    __slots__ = (
        "_cf_headers",
        "active",
        "address",
        "app_id",
        "availability_zone",
        "benched_until",
        "host",
        "isolation_segment",
        "load_balancing_algorithm",
        "port",
        "private_instance_id",
        "private_instance_index",
        "protocol",
        "route_service_url",
        "server_cert_domain_san",
        "tags",
        "tls",
        "ttl",
        "updated_at",
        "updated_at_ns",
    )
    host: str
    port: int
    tls: bool
    address: str
    app_id: str
    private_instance_id: str
    private_instance_index: str
    server_cert_domain_san: str
    route_service_url: str
    tags: dict[str, str] | None
    ttl: float
    isolation_segment: str
    protocol: str
    availability_zone: str
    load_balancing_algorithm: str
    updated_at: float
    updated_at_ns: int
    active: int
    benched_until: float
    _cf_headers: bytes | None

    is_route_service = False    # True only for portico.proxy.route_services' stand-in endpoints

    def __init__(self, host: str, port: int, *, tls: bool = False, app_id: str = "",
                 private_instance_id: str = "", private_instance_index: str = "",
                 server_cert_domain_san: str = "", route_service_url: str = "",
                 tags: dict[str, str] | None = None, ttl: float = 120.0, isolation_segment: str = "",
                 protocol: str = "http1", availability_zone: str = "", load_balancing_algorithm: str = "",
                 updated_at: float = 0.0, updated_at_ns: int = 0) -> None:
        _fill(self, host, port, tls, app_id, private_instance_id, private_instance_index, server_cert_domain_san,
              route_service_url, tags, ttl, isolation_segment, protocol, availability_zone,
              load_balancing_algorithm, updated_at, updated_at_ns)

    @property
    def cf_headers(self) -> bytes:
        """The X-CF-ApplicationID / InstanceIndex / InstanceID request header lines."""
        block = self._cf_headers
        if block is None:
            block = self._cf_headers = _cf_header_block(self)
        return block

    @property
    def address_bytes(self) -> bytes:
        """The address as bytes, one shared object per distinct address (not one per endpoint)."""
        value = _ADDRESS_BYTES.get(self.address)
        if value is None:
            value = _ADDRESS_BYTES[self.address] = self.address.encode()
        return value

    def same_registration(self, other: Endpoint) -> bool:
        """True when a re-registration only refreshes the timestamp, so live counters can be kept."""
        if other is self:
            return True
        return (self.host == other.host and self.port == other.port and self.tls == other.tls
                and self.app_id == other.app_id and self.private_instance_id == other.private_instance_id
                and self.private_instance_index == other.private_instance_index
                and self.server_cert_domain_san == other.server_cert_domain_san
                and self.route_service_url == other.route_service_url and self.tags == other.tags
                and self.ttl == other.ttl and self.isolation_segment == other.isolation_segment
                and self.protocol == other.protocol and self.availability_zone == other.availability_zone
                and self.load_balancing_algorithm == other.load_balancing_algorithm)

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
        if self.private_instance_id:
            out["private_instance_id"] = self.private_instance_id
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
    """`Endpoint(...)` for the bus's hot path: the same object, built without the keyword call.

    Calling a class with 14 keyword arguments packs them into a dict and unpacks them again (~0.8 us on the
    bench VM, about a tenth of applying a registration). Both fill the slots through `_fill`.
    """
    ep = _new(Endpoint)
    _fill(ep, host, port, tls, app_id, private_instance_id, private_instance_index, server_cert_domain_san,
          route_service_url, tags, ttl, isolation_segment, protocol, availability_zone, load_balancing_algorithm,
          updated_at, updated_at_ns)
    return ep


def _fill(ep: Endpoint, host, port, tls, app_id, private_instance_id, private_instance_index,
          server_cert_domain_san, route_service_url, tags, ttl, isolation_segment, protocol, availability_zone,
          load_balancing_algorithm, updated_at, updated_at_ns, /) -> None:
    """Set every slot: the one place both constructors share (positional, so the bus's path stays cheap)."""
    ep.host = host
    ep.port = port
    ep.tls = tls
    ep.address = intern(f"{host}:{port}")  # many routes share an instance: hold its address once
    ep.app_id = app_id
    ep.private_instance_id = private_instance_id
    ep.private_instance_index = private_instance_index
    ep.server_cert_domain_san = server_cert_domain_san
    ep.route_service_url = route_service_url
    ep.tags = tags
    ep.ttl = ttl
    ep.isolation_segment = isolation_segment
    ep.protocol = protocol or "http1"
    ep.availability_zone = availability_zone
    ep.load_balancing_algorithm = load_balancing_algorithm
    ep.updated_at = updated_at
    ep.updated_at_ns = updated_at_ns
    ep.active = 0               # requests in flight to this endpoint
    ep.benched_until = 0.0      # monotonic time until which the balancer skips it
    ep._cf_headers = None       # built on first use


_new = object.__new__



def _latin1(value: str) -> bytes:
    """Header-safe bytes: a registration must not be able to inject header lines."""
    return value.replace("\r", " ").replace("\n", " ").encode("latin-1", "replace")


def _cf_header_block(ep: Endpoint) -> bytes:
    """X-CF-ApplicationID / InstanceIndex / InstanceID lines.

    As gorouter, the first two are sent even when the registration has no `app` / `private_instance_index`
    (with an empty value); InstanceID falls back to ip:port.
    """
    return (b"X-CF-ApplicationID: " + _latin1(ep.app_id) + b"\r\nX-CF-InstanceIndex: "
            + _latin1(ep.private_instance_index) + b"\r\nX-CF-InstanceID: "
            + _latin1(ep.private_instance_id or ep.address) + b"\r\n")


# The fields `same_registration` compares: the registration's own, not the timestamps or live counters.
_REGISTRATION_FIELDS = (
    "host", "port", "tls", "app_id", "private_instance_id", "private_instance_index", "server_cert_domain_san",
    "route_service_url", "tags", "ttl", "isolation_segment", "protocol", "availability_zone",
    "load_balancing_algorithm",
)
