"""TLS contexts: the proxy's server side (certificates chosen by SNI) and the client side to TLS backends."""

from __future__ import annotations

import logging
import ssl
import tempfile
from pathlib import Path

from portico.config.settings import RouterConfig, TlsCertificate


def _load_chain(ctx: ssl.SSLContext, cert: TlsCertificate) -> None:
    """ssl wants files: write the PEM texts to private temporary files just long enough to load them."""
    with tempfile.TemporaryDirectory(prefix="portico-tls-") as tmp:
        cert_path, key_path = Path(tmp) / "cert.pem", Path(tmp) / "key.pem"
        cert_path.write_text(cert.cert_chain)
        key_path.write_text(cert.private_key)
        key_path.chmod(0o600)
        ctx.load_cert_chain(str(cert_path), str(key_path))


def _names_of(cert: TlsCertificate) -> list[str]:
    with tempfile.NamedTemporaryFile("w", suffix=".pem") as f:
        f.write(cert.cert_chain)
        f.flush()
        decoded = ssl._ssl._test_decode_cert(f.name)  # type: ignore[attr-defined]  # the stdlib's own PEM decoder; no other is needed
    names = [value.lower() for kind, value in decoded.get("subjectAltName", ()) if kind == "DNS"]
    if not names:
        for rdn in decoded.get("subject", ()):
            for key, value in rdn:
                if key == "commonName":
                    names.append(value.lower())
    return names


def _matches(name: str, pattern: str) -> bool:
    if pattern.startswith("*."):
        return "." in name and name.split(".", 1)[1] == pattern[2:]
    return name == pattern


def load_ca_certs(ctx: ssl.SSLContext, config: RouterConfig) -> None:
    """Trust the configured CA certificates (top-level ca_certs, then backends.ca_certs) besides the system's."""
    for pem in (*config.ca_certs, config.backends.ca_certs):
        if pem:
            ctx.load_verify_locations(cadata=pem)


_CLIENT_CERT_MODES = {"none": ssl.CERT_NONE, "request": ssl.CERT_OPTIONAL, "require": ssl.CERT_REQUIRED}


def _server_ctx(config: RouterConfig | None = None) -> ssl.SSLContext:
    """A listener context with gorouter's TLS settings: versions, cipher suites, client certificates."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_alpn_protocols(["http/1.1"])
    if config is None:
        return ctx
    # enable_http2 (gorouter's key, default true): offer h2 first, as gorouter does
    ctx.set_alpn_protocols(["h2", "http/1.1"] if config.enable_http2 else ["http/1.1"])
    ctx.minimum_version = TLS_VERSIONS[config.min_tls_version]
    ctx.maximum_version = TLS_VERSIONS[config.max_tls_version]
    if config.cipher_suites:
        ctx.set_ciphers(config.cipher_suites)
    ctx.verify_mode = _CLIENT_CERT_MODES[config.client_cert_validation]
    if ctx.verify_mode != ssl.CERT_NONE:
        if not config.only_trust_client_ca_certs:
            ctx.load_default_certs(ssl.Purpose.CLIENT_AUTH)
        if config.client_ca_certs:
            ctx.load_verify_locations(cadata=config.client_ca_certs)
    return ctx


def _contexts(certs, config: RouterConfig | None = None) -> list[tuple[list[str], ssl.SSLContext]]:
    out = []
    for cert in certs:
        ctx = _server_ctx(config)
        _load_chain(ctx, cert)
        out.append((_names_of(cert), ctx))
    return out


class SniCertificates:
    """The TLS listener's certificates: tls_pem (fixed) and those of tls_cert_dir (replaced when it changes).

    An exact name beats a wildcard; among equals, tls_pem comes first. The first tls_pem certificate is the
    default for clients that send no SNI or an unknown name (without tls_pem there is no default).
    """

    def __init__(self, config: RouterConfig) -> None:
        self.config = config
        self.fixed = _contexts(config.tls_pem, config)
        self.from_dir: list[tuple[list[str], ssl.SSLContext]] = []
        self.default = self.fixed[0][1] if self.fixed else _server_ctx(config)
        self.default.sni_callback = self._choose

    def replace_directory_certs(self, named_certs) -> int:
        """Load (file name, TlsCertificate) pairs; a certificate that fails to load is logged and skipped."""
        loaded = []
        for file_name, cert in named_certs:
            try:
                loaded.extend(_contexts([cert], self.config))
            except (ssl.SSLError, ValueError) as exc:
                logging.getLogger("portico.proxy").warning("tls_cert_dir: %s: %s; skipped", file_name, exc)
        self.from_dir = loaded
        return len(loaded)

    def _choose(self, sock: ssl.SSLObject, server_name: str | None, _ctx) -> None:
        if not server_name:
            return None
        name = server_name.lower()
        candidates = self.fixed + self.from_dir
        for names, ctx in candidates:
            if name in names:
                sock.context = ctx
                return None
        for names, ctx in candidates:
            if any(_matches(name, pattern) for pattern in names if pattern.startswith("*.")):
                sock.context = ctx
                return None
        return None


def server_context(config: RouterConfig) -> ssl.SSLContext:
    """A server context whose SNI callback picks the certificate matching the client's server name."""
    return SniCertificates(config).default


def backend_context_factory(config: RouterConfig):
    """A function giving the client context for a TLS endpoint; it verifies server_cert_domain_san.

    Backends are verified against the system CAs plus the top-level ca_certs (and Portico's older
    backends.ca_certs), and the router presents backends.cert_chain/private_key when set (mutual TLS, as
    gorouter does). As in gorouter, skip_ssl_validation does not apply to backends, only to route services.
    """
    ctx = _backend_context(config, ["http/1.1"])
    service_ctx = route_service_context(config)
    h2_ctx: list[ssl.SSLContext] = []   # made on first use: most routers have no `http2` endpoint

    def context_for(endpoint, http2: bool = False) -> ssl.SSLContext:
        """The context for a TLS endpoint; with `http2`, one that offers ALPN h2 before http/1.1."""
        if endpoint.is_route_service:
            return service_ctx
        if not http2:
            return ctx
        if not h2_ctx:
            h2_ctx.append(_backend_context(config, ["h2", "http/1.1"]))
        return h2_ctx[0]

    return context_for


def _backend_context(config: RouterConfig, alpn: list[str]) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    load_ca_certs(ctx, config)
    if config.backends.cert_chain and config.backends.private_key:
        _load_chain(ctx, TlsCertificate(config.backends.cert_chain, config.backends.private_key))
    if config.cipher_suites:
        ctx.set_ciphers(config.cipher_suites)
    ctx.set_alpn_protocols(alpn)
    return ctx


TLS_VERSIONS = {"TLSv1.0": ssl.TLSVersion.TLSv1, "TLSv1.1": ssl.TLSVersion.TLSv1_1,
                "TLSv1.2": ssl.TLSVersion.TLSv1_2, "TLSv1.3": ssl.TLSVersion.TLSv1_3}


def route_service_context(config: RouterConfig) -> ssl.SSLContext:
    """The client context for https route services: ca_certs (or no check at all with skip_ssl_validation),
    route_services.cert_chain/private_key, and min_tls_version..max_tls_version (gorouter: both TLSv1.2)."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    load_ca_certs(ctx, config)
    if config.skip_ssl_validation:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    services = config.route_services
    if services.cert_chain and services.private_key:
        _load_chain(ctx, TlsCertificate(services.cert_chain, services.private_key))
    # enable_http2 (gorouter's key, default true): offer h2 first, as gorouter does
    ctx.set_alpn_protocols(["h2", "http/1.1"] if config.enable_http2 else ["http/1.1"])
    ctx.minimum_version = TLS_VERSIONS[config.min_tls_version]
    ctx.maximum_version = TLS_VERSIONS[config.max_tls_version]
    if config.cipher_suites:
        ctx.set_ciphers(config.cipher_suites)
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx
