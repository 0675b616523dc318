"""Route services as gorouter runs them: send a route's requests through its service, then to the app.

A request for a route registered with `route_service_url` goes first to that URL, signed (X-CF-Proxy-Signature,
X-CF-Proxy-Metadata) and told where to go next (X-CF-Forwarded-Url). The service sends it back through the
router with the signature; a valid, unexpired signature for the same route lets it through to the app, with
the three headers removed. Everything configurable is settled here once, at start; a request whose route has
no service and that carries none of the three headers never reaches this module.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from portico.proxy import rs_signature
from portico.proxy.rs_signature import SignatureError, SignatureKey
from portico.routes.endpoint import Endpoint
from portico.routes.uri import allowlist_domains, host_without_port

SIGNATURE = b"x-cf-proxy-signature"
METADATA = b"x-cf-proxy-metadata"
FORWARDED_URL = b"x-cf-forwarded-url"
HEADER_NAMES = (SIGNATURE, METADATA, FORWARDED_URL)
_TARGET_CACHE_SIZE = 1024


class Refusal:
    """A route service answer given by the router itself: status, X-Cf-Routererror code (may be empty), text."""

    __slots__ = ("code", "message", "status")

    def __init__(self, status: int, code: str, message: str) -> None:
        self.status, self.code, self.message = status, code, message


class RouteServiceEndpoint(Endpoint):
    """Where a route service request is sent: no X-CF-* app headers, never written to the route table."""

    is_route_service = True

    @property
    def cf_headers(self) -> bytes:
        return b""


class Outbound:
    """A request on its way to a route service: the endpoint to dial, the request target, the Host value and
    the three X-CF-* header lines."""

    __slots__ = ("endpoint", "headers", "host", "target")

    def __init__(self, endpoint: Endpoint, target: bytes, host: bytes, headers: bytes) -> None:
        self.endpoint, self.target, self.host, self.headers = endpoint, target, host, headers


class RouteServices:
    """The route service rules of one router, fixed at start."""

    def __init__(self, config: Any, table: Any) -> None:
        self.table = table
        self.enabled = bool(config.route_services_secret)
        keys = []
        if self.enabled:
            keys.append(SignatureKey(config.route_services_secret))
            if config.route_services_secret_decrypt_only:
                keys.append(SignatureKey(config.route_services_secret_decrypt_only))
        self.keys = tuple(keys)
        self.timeout = config.route_services_timeout
        self.scheme = "https" if config.route_services_recommend_https else "http"
        self.strict = config.route_services.strict_signature_validation
        self.max_attempts = config.route_services.max_attempts
        self.hairpinning = config.route_services_hairpinning
        self.allowlist = allowlist_domains(config.route_services_hairpinning_allowlist)
        self.internal_port = config.route_services_internal_server_port
        self._targets: dict[str, tuple[str, int, bool, bytes, bytes, str]] = {}

    # ---- a route without a service --------------------------------------------------------------------------

    def check_unbound(self, values: dict[bytes, bytes]) -> Refusal | None:
        """With strict validation, a signature on a request for a route without a service must be valid."""
        if not self.strict or SIGNATURE not in values:
            return None
        try:
            self._validate(values)
        except SignatureError as exc:
            if exc.expired:
                return Refusal(504, "expired_route_service_signature",
                               f"Failed to validate Route Service Signature: {exc}")
            return Refusal(400, "invalid_route_service_signature", "invalid route service signature detected")
        return None

    def is_route_service_traffic(self, values: dict[bytes, bytes]) -> bool:
        """A request back from a route service (valid signature): its X-Forwarded-Proto is left alone."""
        if not self.keys or not values.get(SIGNATURE) or not values.get(FORWARDED_URL):
            return False
        try:
            self._validate(values)
        except SignatureError:
            return False
        return True

    # ---- a route bound to a service -------------------------------------------------------------------------

    def check_bound(self, ex: Any, pool: Any, service_url: str, values: dict[bytes, bytes] | None,
                    websocket: bool) -> Refusal | Outbound | None:
        """Refusal, an Outbound (send to the service), or None (back from the service: on to the app)."""
        if not self.enabled:
            return Refusal(502, "route_service_unsupported", "Support for route services is disabled.")
        if websocket:
            return Refusal(503, "route_service_unsupported",
                           "Websocket requests are not supported for routes bound to Route Services.")
        if values and values.get(SIGNATURE):
            try:
                self._arrived(pool, values)
            except SignatureError as exc:
                status = 504 if exc.expired else 502
                return Refusal(status, "", f"Failed to validate Route Service Signature: {exc}")
            return None
        return self._outbound(ex, service_url)

    def _validate(self, values: dict[bytes, bytes]) -> str:
        url, requested_at = rs_signature.read(self.keys, values.get(SIGNATURE, b""), values.get(METADATA, b""))
        rs_signature.check_age(requested_at, self.timeout)
        return url

    def _arrived(self, pool: Any, values: dict[bytes, bytes]) -> None:
        """A valid signature whose forwarded URL names this same route (host and context path)."""
        url = self._validate(values)
        parts = urlsplit(url)
        host = host_without_port(parts.netloc)
        path = parts.path
        forwarded = self.table.lookup(host.lower(), path.encode("latin-1", "replace"))
        if forwarded is None:
            raise SignatureError(f"original request URL {host}{path} does not exist in the routing table")
        if forwarded.host != pool.host or forwarded.context_path != pool.context_path:
            raise SignatureError(f"route service forwarded URL {pool.host}{pool.context_path} does not match the "
                                 f"original request URL {host}{path}")

    def _outbound(self, ex: Any, service_url: str) -> Outbound:
        host, port, tls, target, host_value, route_key = self._parse(service_url)
        request_host = ex.host.decode("latin-1").partition(":")[0]
        forwarded_url = f"{self.scheme}://{request_host}{ex.uri.decode('latin-1')}"
        signature, metadata = rs_signature.sign(self.keys[0], forwarded_url)
        headers = (b"X-CF-Proxy-Signature: " + signature + b"\r\nX-CF-Proxy-Metadata: " + metadata
                   + b"\r\nX-CF-Forwarded-Url: " + forwarded_url.encode("latin-1", "replace") + b"\r\n")
        if self.hairpinning and self._hairpin(route_key):
            # Known to this router: through our own internal listener, not out and back in by DNS.
            endpoint: Endpoint = RouteServiceEndpoint("127.0.0.1", self.internal_port)
        else:
            endpoint = RouteServiceEndpoint(host, port, tls=tls, server_cert_domain_san=host)
        return Outbound(endpoint, target, host_value, headers)

    def _hairpin(self, route_key: str) -> bool:
        host, _, path = route_key.partition("/")
        pool = self.table.lookup(host.lower(), ("/" + path).encode("latin-1", "replace") if path else b"")
        if pool is None:
            return False
        if not self.allowlist:
            return True
        name = pool.host.lower()
        return name in self.allowlist or ("." + name.partition(".")[2]) in self.allowlist

    def _parse(self, service_url: str) -> tuple[str, int, bool, bytes, bytes, str]:
        """(host, port, tls, request target, Host value, route key) of a service URL; cached per URL."""
        parsed = self._targets.get(service_url)
        if parsed is not None:
            return parsed
        parts = urlsplit(service_url)
        tls = parts.scheme.lower() == "https"
        host = parts.hostname or ""
        port = parts.port or (443 if tls else 80)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        parsed = (host, port, tls, target.encode("latin-1", "replace"), parts.netloc.encode("latin-1", "replace"),
                  host_without_port(parts.netloc) + parts.path)
        if len(self._targets) < _TARGET_CACHE_SIZE:
            self._targets[service_url] = parsed
        return parsed
