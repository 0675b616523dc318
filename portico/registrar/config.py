"""Load and check `portico registrar`'s YAML file.

The file format is a superset of Cloud Foundry route-registrar's config (its JSON keys, written as YAML):

    message_bus_servers: [{host: "10.0.0.4:4222", user: nats, password: secret}]
    host: 10.0.0.5                       # default backend address for every route
    routes:
      - name: api
        port: 8080                       # and/or tls_port (then server_cert_domain_san is required)
        uris: [api.example.com]
        registration_interval: 20s
        health_check: {name: api-up, script_path: /var/vcap/jobs/api/bin/healthy, timeout: 5s}

Portico adds: `nats:` (a `nats://` URL or a list of them) instead of message_bus_servers; a per-route `host`;
`app`, `private_instance_id`, `private_instance_index`, `stale_threshold_in_seconds`; and `http_url` health
checks (GET, healthy on 2xx). Unknown keys are ignored, as gorouter and route-registrar do.

It is read with the router's config toolkit (portico.config.yaml_reader, portico.config.values), so every
problem is one ConfigError naming file:line:col and the key path (`routes[0].health_check.timeout`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from yaml.nodes import Node, ScalarNode

from portico.config.values import ConfigError, NatsServer, parse_nats_url, show, to_str
from portico.config.yaml_reader import Document, Section, compose, read_yaml

__all__ = ["ConfigError", "HealthCheck", "NatsServer", "RegistrarConfig", "Route", "load_config", "parse_config"]

DEFAULT_REGISTRATION_INTERVAL = 20.0


@dataclass(frozen=True)
class HealthCheck:
    name: str
    timeout: float
    script_path: str | None = None
    http_url: str | None = None

    @property
    def kind(self) -> str:
        return "script" if self.script_path else "http"

    @property
    def target(self) -> str:
        return self.script_path or self.http_url or ""


@dataclass(frozen=True)
class Route:
    name: str
    host: str
    uris: tuple[str, ...]
    registration_interval: float
    port: int | None = None
    tls_port: int | None = None
    tags: dict[str, str] = field(default_factory=dict)
    app: str | None = None
    private_instance_id: str | None = None
    private_instance_index: str | None = None
    server_cert_domain_san: str | None = None
    route_service_url: str | None = None
    stale_threshold_in_seconds: int | None = None
    health_check: HealthCheck | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.tls_port or self.port}"

    def message(self, default_instance_id: str | None = None) -> dict[str, Any]:
        """The gorouter router.register / router.unregister JSON object for this route."""
        msg: dict[str, Any] = {"host": self.host, "port": self.port or 0, "uris": list(self.uris)}
        if self.tls_port:
            msg["tls_port"] = self.tls_port
        optional = {
            "app": self.app,
            "private_instance_id": self.private_instance_id or default_instance_id,
            "private_instance_index": self.private_instance_index,
            "server_cert_domain_san": self.server_cert_domain_san,
            "route_service_url": self.route_service_url,
            "stale_threshold_in_seconds": self.stale_threshold_in_seconds,
        }
        msg.update({k: v for k, v in optional.items() if v is not None})
        if self.tags:
            msg["tags"] = dict(self.tags)
        return msg


@dataclass(frozen=True)
class RegistrarConfig:
    nats: tuple[NatsServer, ...]
    routes: tuple[Route, ...]


def load_config(path: str | Path) -> RegistrarConfig:
    """Read and check the YAML file at `path`; every problem is one ConfigError naming file:line:col."""
    doc, root = read_yaml(path, "a registrar YAML config")
    return _registrar(doc, root)


def parse_config(data: Any) -> RegistrarConfig:
    """Check an already decoded document (a dict, e.g. from JSON); errors name the key but no file."""
    return _registrar(Document(""), compose("", yaml.safe_dump(data)))


# --- sections -----------------------------------------------------------------------------------------

def _registrar(doc: Document, root: Node | None) -> RegistrarConfig:
    top = doc.root(root, "routes and NATS servers")
    mtls = top.section("nats_mtls_config")
    if mtls.flag("enabled", False):
        raise mtls.error("enabled", "NATS mutual TLS is not supported yet")
    nats = _nats_servers(top)
    default_host = top.text("host") or None
    route_sections = top.sections("routes")
    if not route_sections:
        raise top.error("routes", f"must be a non-empty list of routes, got {_given(top, 'routes')}")
    routes = tuple(_route(r, default_host) for r in route_sections)
    seen: dict[str, int] = {}
    for i, (route, section) in enumerate(zip(routes, route_sections, strict=True)):
        if route.name in seen:
            raise section.error("name", f"{show(route.name)} is already the name of routes[{seen[route.name]}]")
        seen[route.name] = i
    top.finish()
    return RegistrarConfig(nats=nats, routes=routes)


def _nats_servers(top: Section) -> tuple[NatsServer, ...]:
    servers: list[NatsServer] = []
    for key, node in top.items("nats", accept_scalar=True) or []:
        url = _scalar_text(top.doc, key, node, "a nats:// URL")
        try:
            servers.append(parse_nats_url(url, key))
        except ConfigError as exc:
            raise exc.located(top.doc.path, node) from None
    for entry in top.sections("message_bus_servers") or []:
        host, port = _host_port(entry)
        servers.append(NatsServer(hostname=host, port=port, user=entry.text("user"),
                                  password=entry.text("password")))
        entry.finish()
    if not servers:
        raise top.error("message_bus_servers", "is required: list the NATS servers "
                        "(message_bus_servers: [{host: \"ip:port\", user, password}] or nats: nats://ip:port)")
    return tuple(servers)


def _host_port(entry: Section) -> tuple[str, int]:
    text = entry.text("host")
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise entry.error("host", f"must be \"host:port\" (e.g. \"10.0.0.4:4222\"), got {show(text or None)}")
    return host.strip("[]"), int(port)


def _route(r: Section, default_host: str | None) -> Route:
    if r.text("type") not in ("", "http"):
        raise r.error("type", f"{show(r.text('type'))} routes are not supported: portico registrar publishes "
                              "HTTP routes on NATS only")
    name = r.text("name")
    if not name:
        raise r.error("name", "is required")
    host = r.text("host") or default_host
    if not host:
        raise r.error("host", "is required (set it on the route or at the top level)")
    port, tls_port = _optional_port(r, "port"), _optional_port(r, "tls_port")
    if port is None and tls_port is None:
        raise r.error("port", "is required: give port and/or tls_port")
    uri_items = r.items("uris")
    if not uri_items:
        raise r.error("uris", f"must be a non-empty list of routes like app.example.com, got {_given(r, 'uris')}")
    uris = []
    for key, node in uri_items:
        uri = _scalar_text(r.doc, key, node, "a non-empty string").strip()
        if not uri:
            raise r.doc.error("must be a non-empty string, got an empty value", key, node)
        uris.append(uri)
    tag_section = r.section("tags")
    tags = {tag: tag_section.text(tag) for tag in tag_section.entries}
    san = r.text("server_cert_domain_san") or None
    if tls_port is not None and not san:
        raise r.error("server_cert_domain_san", "is required when tls_port is set "
                                                "(the router verifies the backend's certificate)")
    rs_url = r.text("route_service_url") or None
    if rs_url and not rs_url.startswith("https"):
        raise r.error("route_service_url", f"must start with https (gorouter rejects others), got {show(rs_url)}")
    interval = r.duration("registration_interval", DEFAULT_REGISTRATION_INTERVAL, positive=True)
    stale = r.integer("stale_threshold_in_seconds", 0, lo=1) or None
    if stale is not None and interval >= stale:
        raise r.error("registration_interval", f"must be less than stale_threshold_in_seconds ({interval:g}s >= "
                                               f"{stale}s), or the route expires between registrations")
    route = Route(
        name=name, host=host, uris=tuple(uris), registration_interval=interval,
        port=port, tls_port=tls_port, tags=tags,
        app=r.text("app") or None,
        private_instance_id=r.text("private_instance_id") or None,
        private_instance_index=r.text("private_instance_index") or None,
        server_cert_domain_san=san, route_service_url=rs_url, stale_threshold_in_seconds=stale,
        health_check=_health_check(r.section("health_check"), name, interval),
    )
    tag_section.finish()
    r.finish()
    return route


def _health_check(hc: Section, route_name: str, interval: float) -> HealthCheck | None:
    if hc.node is None:
        return None
    script = hc.text("script_path") or None
    url = hc.text("http_url") or None
    if script and url:
        raise hc.doc.error("give script_path or http_url, not both", hc.name, hc.node)
    if not script and not url:
        raise hc.doc.error("needs script_path (an executable; exit 0 = healthy) or http_url (GET; 2xx = healthy)",
                           hc.name, hc.node)
    if url:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise hc.error("http_url", f"must be an http:// or https:// URL, got {show(url)}")
    # route-registrar's default timeout: half the registration interval
    timeout = hc.duration("timeout", interval / 2, positive=True)
    if timeout >= interval:
        raise hc.error("timeout", f"must be less than the registration_interval ({timeout:g}s >= {interval:g}s)")
    name = hc.text("name") or route_name
    hc.finish()
    return HealthCheck(name=name, timeout=timeout, script_path=script, http_url=url)


# --- small readers --------------------------------------------------------------------------------------

def _optional_port(m: Section, key: str) -> int | None:
    """A port number 1..65535 (route-registrar's README writes them as strings), or None when not given."""
    if m.take(key) is None:
        return None
    return m.port(key, 0, lo=1)


def _scalar_text(doc: Document, key: str, node: Node, expected: str) -> str:
    value = to_str(doc.scalar(node)) if isinstance(node, ScalarNode) else None
    if value is None:
        raise doc.error(f"must be {expected}, got {doc.describe(node)}", key, node)
    return value


def _given(m: Section, key: str) -> str:
    """What was written at `key`, for a message ("nothing" when it is absent)."""
    entry = m.take(key)
    return m.doc.describe(entry[2]) if entry is not None else "nothing"
