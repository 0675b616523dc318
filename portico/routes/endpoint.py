"""One backend instance behind a route, plus the live state the balancer needs."""

from __future__ import annotations


class Endpoint:
    """A registered app instance.

    Registration fields are fixed once made; re-registering the same address replaces the object. The
    counters (`active`, `benched_until`) are the proxy's narrow way of telling the balancer what it saw.
    The X-CF-* request header block is built here once, so the proxy does not rebuild it per request.
    """

    __slots__ = (
        "host", "port", "tls", "address", "app_id", "private_instance_id", "private_instance_index",
        "server_cert_domain_san", "route_service_url", "tags", "ttl", "isolation_segment", "protocol",
        "availability_zone", "load_balancing_algorithm", "updated_at", "updated_at_ns",
        "active", "benched_until", "cf_headers", "address_bytes", "log_ids",
    )

    def __init__(self, host: str, port: int, *, tls: bool = False, app_id: str = "",
                 private_instance_id: str = "", private_instance_index: str = "",
                 server_cert_domain_san: str = "", route_service_url: str = "",
                 tags: dict[str, str] | None = None, ttl: float = 120.0, isolation_segment: str = "",
                 protocol: str = "http1", availability_zone: str = "", load_balancing_algorithm: str = "",
                 updated_at: float = 0.0, updated_at_ns: int = 0) -> None:
        self.host = host
        self.port = port
        self.tls = tls
        self.address = f"{host}:{port}"
        self.app_id = app_id
        self.private_instance_id = private_instance_id
        self.private_instance_index = private_instance_index
        self.server_cert_domain_san = server_cert_domain_san
        self.route_service_url = route_service_url
        self.tags = tags
        self.ttl = ttl
        self.isolation_segment = isolation_segment
        self.protocol = protocol or "http1"
        self.availability_zone = availability_zone
        self.load_balancing_algorithm = load_balancing_algorithm
        self.updated_at = updated_at
        self.updated_at_ns = updated_at_ns
        self.active = 0               # requests in flight to this endpoint
        self.benched_until = 0.0      # monotonic time until which the balancer skips it
        self.address_bytes = self.address.encode()
        self.cf_headers = _cf_header_block(self)
        # (app_id, app_index, instance_id) as the access log writes them.
        self.log_ids = (app_id.encode(), private_instance_index.encode(), private_instance_id.encode())

    def same_registration(self, other: "Endpoint") -> bool:
        """True when a re-registration only refreshes the timestamp, so live counters can be kept."""
        return all(getattr(self, name) == getattr(other, name) for name in _REGISTRATION_FIELDS)

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


_REGISTRATION_FIELDS = (
    "host", "port", "tls", "app_id", "private_instance_id", "private_instance_index", "server_cert_domain_san",
    "route_service_url", "tags", "ttl", "isolation_segment", "protocol", "availability_zone",
    "load_balancing_algorithm",
)


def _latin1(value: str) -> bytes:
    """Header-safe bytes: a registration must not be able to inject header lines."""
    return value.replace("\r", " ").replace("\n", " ").encode("latin-1", "replace")


def _cf_header_block(ep: Endpoint) -> bytes:
    """X-CF-ApplicationID / InstanceIndex / InstanceID lines (InstanceID falls back to ip:port)."""
    lines = []
    if ep.app_id:
        lines.append(b"X-CF-ApplicationID: " + _latin1(ep.app_id) + b"\r\n")
    if ep.private_instance_index:
        lines.append(b"X-CF-InstanceIndex: " + _latin1(ep.private_instance_index) + b"\r\n")
    lines.append(b"X-CF-InstanceID: " + _latin1(ep.private_instance_id or ep.address) + b"\r\n")
    return b"".join(lines)
