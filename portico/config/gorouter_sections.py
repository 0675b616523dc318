"""Readers for the sections of a gorouter config: one function per section, each a settings object.

`portico.config.loader` calls them from `load_config`; they read through the config toolkit's `Section`
(portico.config.yaml_reader), which names file:line:col, the dotted key and what to change on any problem.
"""

from __future__ import annotations

import re

from yaml.nodes import Node, ScalarNode, SequenceNode

from portico.config.ciphers import openssl_cipher_list
from portico.config.settings import (
    AccessLogSettings,
    BackendSettings,
    EtcdAnnounceSettings,
    HttpRewriteSettings,
    LoggingSettings,
    MetricsSettings,
    NatsServer,
    NatsSettings,
    RouteServiceSettings,
    RouteSnapshotSettings,
    StatusSettings,
    TlsCertificate,
    TracingSettings,
)
from portico.config.values import show
from portico.config.yaml_reader import Document, Section
from portico.routes.uri import allowlist_domains


def read_status(top: Section) -> StatusSettings:
    """Current layout has status.routes.port; a status section without `routes` is the older single-port one."""
    d = StatusSettings()
    present = top.take("status") is not None
    s = top.section("status")
    if present and "routes" not in s:
        routes_port: int | None = None
    else:
        routes = s.section("routes")
        routes_port = routes.port("port", d.routes_port or 8082)
        routes.finish()
    status = StatusSettings(
        host=s.text("host", d.host) or d.host,
        port=s.port("port", d.port),
        user=s.text("user"),
        password=s.text("pass"),
        routes_port=routes_port,
    )
    s.finish()
    return status


def _nats_server(doc: Document, key: str, node: Node) -> NatsServer:
    """One NATS host: {hostname, port} (current) or {host, port, user, pass} (older list layout)."""
    m = doc.mapping(node, key, node)
    if m.node is None:
        raise doc.error("expected hostname and port of a NATS server", key, node)
    d = NatsServer()
    server = NatsServer(
        hostname=m.text(("hostname", "host"), d.hostname) or d.hostname,
        port=m.port("port", d.port, lo=1),
        user=m.text("user"),
        password=m.text("pass"),
    )
    m.finish()
    return server


def read_nats(top: Section) -> NatsSettings:
    d = NatsSettings()
    entry = top.take("nats")
    if entry is None:
        return d
    key, key_node, node = entry
    if isinstance(node, SequenceNode):  # older layout: a list of servers, credentials per server
        hosts = tuple(_nats_server(top.doc, f"{key}[{i}]", item) for i, item in enumerate(node.value))
        return NatsSettings(hosts=hosts or d.hosts)
    m = top.doc.mapping(node, key, key_node)
    items = m.items("hosts") or []
    hosts = tuple(_nats_server(top.doc, item_key, item) for item_key, item in items)
    nats = NatsSettings(
        hosts=hosts or d.hosts,
        user=m.text("user"),
        password=m.text("pass"),
        tls_enabled=m.flag("tls_enabled", d.tls_enabled),
        ca_certs=read_pem(m, "ca_certs", "CERTIFICATE"),
        cert_chain=read_pem(m, "cert_chain", "CERTIFICATE"),
        private_key=read_pem(m, "private_key", "PRIVATE KEY"),
        token=m.text("token"),
    )
    _pair(m, nats.cert_chain, nats.private_key, "NATS client TLS")
    m.finish()
    return nats


def _pair(m: Section, cert_chain: str, private_key: str, what: str) -> None:
    """A client certificate needs its key and the other way round."""
    if bool(cert_chain) != bool(private_key):
        missing = "private_key" if cert_chain else "cert_chain"
        raise m.doc.error(f"{what} needs both cert_chain and private_key", m.dotted(missing), m.node)


def read_backends(top: Section) -> BackendSettings:
    d = BackendSettings()
    b = top.section("backends")
    backends = BackendSettings(
        max_conns=b.integer("max_conns", d.max_conns, lo=0),
        max_attempts=b.integer("max_attempts", d.max_attempts, lo=1),
        cert_chain=read_pem(b, "cert_chain", "CERTIFICATE"),
        private_key=read_pem(b, "private_key", "PRIVATE KEY"),
        ca_certs=read_pem(b, "ca_certs", "CERTIFICATE"),
        enable_h2c=b.flag("enable_h2c", d.enable_h2c),
    )
    _pair(b, backends.cert_chain, backends.private_key, "backend client TLS")
    b.finish()
    return backends


def read_route_services(top: Section) -> RouteServiceSettings:
    d = RouteServiceSettings()
    m = top.section("route_services")
    settings = RouteServiceSettings(
        max_attempts=m.integer("max_attempts", d.max_attempts, lo=1),
        strict_signature_validation=m.flag("strict_signature_validation", d.strict_signature_validation),
        cert_chain=read_pem(m, "cert_chain", "CERTIFICATE"),
        private_key=read_pem(m, "private_key", "PRIVATE KEY"),
    )
    _pair(m, settings.cert_chain, settings.private_key, "route service client TLS")
    m.finish()
    return settings


def read_http_rewrite(top: Section) -> HttpRewriteSettings:
    """http_rewrite.responses.{remove_headers: [{name}], add_headers_if_not_present: [{name, value}]}."""
    m = top.section("http_rewrite")
    responses = m.section("responses")
    lists: dict[str, list[tuple[str, str]]] = {}
    for key in ("remove_headers", "add_headers_if_not_present"):
        lists[key] = []
        for item_key, node in responses.items(key) or []:
            item = top.doc.mapping(node, item_key, node)
            name = item.text("name")
            if not name or not _HEADER_NAME.match(name):
                raise top.doc.error(f"expected a header name, got {show(name)}", f"{item_key}.name", node)
            value = item.text("value")
            if "\r" in value or "\n" in value:
                raise top.doc.error("a header value must be one line", f"{item_key}.value", node)
            lists[key].append((name, value))
            item.finish()
    responses.finish()
    m.finish()
    return HttpRewriteSettings(remove_headers=tuple(n for n, _ in lists["remove_headers"]),
                               add_headers_if_not_present=tuple(lists["add_headers_if_not_present"]))


_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")


def read_cipher_suites(top: Section) -> str:
    value = top.text("cipher_suites")
    try:
        return openssl_cipher_list(value)
    except ValueError as exc:
        _, key_node, _ = top.present("cipher_suites")
        raise top.doc.error(str(exc), "cipher_suites", key_node) from None


def read_hairpinning_allowlist(top: Section) -> tuple[str, ...]:
    entries = top.text_list("route_services_hairpinning_allowlist", ())
    try:
        allowlist_domains(entries)
    except ValueError as exc:
        _, key_node, _ = top.present("route_services_hairpinning_allowlist")
        raise top.doc.error(str(exc), "route_services_hairpinning_allowlist", key_node) from None
    return entries


def read_pem(m: Section, key: str, kind: str) -> str:
    """PEM text; checked for its BEGIN line so a file path or a truncated paste is caught at load time."""
    value = m.text(key)
    if value and "-----BEGIN" not in value:
        dotted, key_node, _ = m.present(key)
        raise m.doc.error(f"expected PEM text starting with '-----BEGIN {kind}-----' (the contents, not a path)",
                          dotted, key_node)
    return value


def read_ca_certs(top: Section) -> tuple[str, ...]:
    """gorouter's top-level ca_certs: a list of PEM texts (one text is taken as a one-item list)."""
    out = []
    for key, node in top.items("ca_certs", accept_scalar=True) or []:
        value = top.doc.scalar(node) if isinstance(node, ScalarNode) else None
        if not isinstance(value, str) or "-----BEGIN" not in value:
            raise top.doc.error("expected PEM text starting with '-----BEGIN CERTIFICATE-----' (the contents, "
                                "not a path)", key, node)
        out.append(value)
    return tuple(out)


def read_tls_pem(top: Section) -> tuple[TlsCertificate, ...]:
    out = []
    for key, node in top.items("tls_pem") or []:
        m = top.doc.mapping(node, key, node)
        cert, private_key = read_pem(m, "cert_chain", "CERTIFICATE"), read_pem(m, "private_key", "PRIVATE KEY")
        for name, value in (("cert_chain", cert), ("private_key", private_key)):
            if not value:
                raise top.doc.error("missing; each tls_pem entry needs cert_chain and private_key",
                                    f"{key}.{name}", node)
        m.finish()
        out.append(TlsCertificate(cert_chain=cert, private_key=private_key))
    return tuple(out)


def read_access_log(top: Section) -> AccessLogSettings:
    m = top.section("access_log")
    settings = AccessLogSettings(file=m.text("file"))
    m.finish()
    return settings


def read_logging(top: Section) -> LoggingSettings:
    d = LoggingSettings()
    m = top.section("logging")
    fmt = m.section("format")
    settings = LoggingSettings(
        file=m.text("file"),
        syslog=m.text("syslog"),
        level=(m.text("level", d.level) or d.level).lower(),
        timestamp_format=fmt.text("timestamp", d.timestamp_format) or d.timestamp_format,
    )
    fmt.finish()
    m.finish()
    return settings


def read_tracing(top: Section) -> TracingSettings:
    m = top.section("tracing")
    d = TracingSettings()
    settings = TracingSettings(enable_zipkin=m.flag("enable_zipkin", d.enable_zipkin),
                               enable_w3c=m.flag("enable_w3c", d.enable_w3c),
                               w3c_tenant_id=m.text("w3c_tenant_id", d.w3c_tenant_id))
    m.finish()
    return settings


def read_etcd(top: Section) -> EtcdAnnounceSettings:
    d = EtcdAnnounceSettings()
    m = top.section("etcd")
    settings = EtcdAnnounceSettings(
        endpoints=tuple(e for e in m.text_list("endpoints", d.endpoints) if e),
        prefix=m.text("prefix", d.prefix) or d.prefix,
        lease_ttl=m.duration("lease_ttl", d.lease_ttl, positive=True),
        advertise_host=m.text("advertise_host", d.advertise_host) or d.advertise_host,
        username=m.text("username"),
        password=m.text("password"),
        ca_certs=read_pem(m, "ca_certs", "CERTIFICATE"),
        cert_chain=read_pem(m, "cert_chain", "CERTIFICATE"),
        private_key=read_pem(m, "private_key", "PRIVATE KEY"),
    )
    _pair(m, settings.cert_chain, settings.private_key, "etcd client TLS")
    if bool(settings.username) != bool(settings.password):
        missing = "password" if settings.username else "username"
        raise m.doc.error("etcd authentication needs both username and password", m.dotted(missing), m.node)
    m.finish()
    return settings


def read_metrics(top: Section) -> MetricsSettings:
    d = MetricsSettings()
    m = top.section("metrics")
    settings = MetricsSettings(per_route_top=m.integer("per_route_top", d.per_route_top, lo=0, hi=200))
    m.finish()
    return settings


def read_route_snapshot(top: Section) -> RouteSnapshotSettings:
    d = RouteSnapshotSettings()
    m = top.section("route_snapshot")
    settings = RouteSnapshotSettings(
        enabled=m.flag("enabled", d.enabled),
        file=m.text("file", d.file),
        interval=m.duration("interval", d.interval, positive=True),
    )
    m.finish()
    return settings
