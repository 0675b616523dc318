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

Every problem is reported as one `ConfigError` naming the key path (`routes[0].health_check.timeout`) and why.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

DEFAULT_REGISTRATION_INTERVAL = 20.0


class ConfigError(Exception):
    """A problem in the registrar's config file: `key` is the path of the offending key, `why` the reason."""

    def __init__(self, key: str, why: str):
        super().__init__(f"{key}: {why}" if key else why)
        self.key = key
        self.why = why


_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(value: Any, key: str) -> float:
    """A Go duration string ("20s", "1m30s", "500ms") or a bare number of seconds -> seconds (> 0)."""
    if isinstance(value, bool):
        raise ConfigError(key, f"must be a duration like \"20s\" or a number of seconds, got {value!r}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip()
        try:
            seconds = float(text)  # "20" written as a string still means seconds
        except ValueError:
            if not text or _DURATION_PART.sub("", text) != "":
                raise ConfigError(key, f"must be a duration like \"20s\", \"500ms\" or \"1m30s\", got {value!r}") \
                    from None
            seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(text))
    else:
        raise ConfigError(key, f"must be a duration like \"20s\" or a number of seconds, got {value!r}")
    if not math.isfinite(seconds) or seconds <= 0:
        raise ConfigError(key, f"must be greater than zero, got {value!r}")
    return seconds


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
class NatsServer:
    url: str            # nats://host:port (credentials, when any, are in user/password)
    user: str | None = None
    password: str | None = None


@dataclass(frozen=True)
class RegistrarConfig:
    nats: tuple[NatsServer, ...]
    routes: tuple[Route, ...]


# --- helpers that read one typed value and name the key on failure -------------------------------------

def _mapping(value: Any, key: str) -> dict:
    if not isinstance(value, dict):
        raise ConfigError(key, f"must be a mapping, got {_kind(value)}")
    return value


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    names: dict[type, str] = {dict: "a mapping", list: "a list", str: f"the string {value!r}"}
    return names.get(type(value), repr(value))


def _string(value: Any, key: str, *, required: bool = False) -> str | None:
    if value is None or value == "":
        if required:
            raise ConfigError(key, "is required")
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ConfigError(key, f"must be a string, got {_kind(value)}")
    return str(value)


def _port(value: Any, key: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)  # route-registrar's README writes ports as strings
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise ConfigError(key, f"must be a port number 1..65535, got {value!r}")
    return value


def _host_port(value: Any, key: str) -> tuple[str, int]:
    text = _string(value, key, required=True) or ""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ConfigError(key, f"must be \"host:port\" (e.g. \"10.0.0.4:4222\"), got {text!r}")
    return host.strip("[]"), int(port)


# --- sections -----------------------------------------------------------------------------------------

def _nats_servers(doc: dict) -> tuple[NatsServer, ...]:
    servers: list[NatsServer] = []
    if doc.get("nats") is not None:
        value = doc["nats"]
        urls = [value] if isinstance(value, str) else value
        if not isinstance(urls, list) or not urls:
            raise ConfigError("nats", f"must be a nats:// URL or a list of them, got {_kind(value)}")
        for i, url in enumerate(urls):
            key = "nats" if isinstance(value, str) else f"nats[{i}]"
            if not isinstance(url, str):
                raise ConfigError(key, f"must be a nats:// URL, got {_kind(url)}")
            parts = urlsplit(url.strip())
            try:
                port = parts.port
            except ValueError:
                raise ConfigError(key, f"has a bad port in {url!r}") from None
            if parts.scheme not in ("nats", "tls") or not parts.hostname:
                raise ConfigError(key, f"must be a URL like nats://127.0.0.1:4222, got {url!r}")
            host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
            servers.append(NatsServer(f"{parts.scheme}://{host}:{port or 4222}",
                                      parts.username or None, parts.password or None))
    if doc.get("message_bus_servers") is not None:
        value = doc["message_bus_servers"]
        if not isinstance(value, list):
            raise ConfigError("message_bus_servers", f"must be a list of {{host, user, password}}, got {_kind(value)}")
        for i, entry in enumerate(value):
            key = f"message_bus_servers[{i}]"
            entry = _mapping(entry, key)
            host, port = _host_port(entry.get("host"), f"{key}.host")
            host = f"[{host}]" if ":" in host else host
            servers.append(NatsServer(f"nats://{host}:{port}", _string(entry.get("user"), f"{key}.user"),
                                      _string(entry.get("password"), f"{key}.password")))
    if not servers:
        raise ConfigError("message_bus_servers", "is required: list the NATS servers "
                          "(message_bus_servers: [{host: \"ip:port\", user, password}] or nats: nats://ip:port)")
    return tuple(servers)


def _health_check(value: Any, key: str, route_name: str, interval: float) -> HealthCheck | None:
    if value is None:
        return None
    hc = _mapping(value, key)
    script = _string(hc.get("script_path"), f"{key}.script_path")
    url = _string(hc.get("http_url"), f"{key}.http_url")
    if script and url:
        raise ConfigError(key, "give script_path or http_url, not both")
    if not script and not url:
        raise ConfigError(key, "needs script_path (an executable; exit 0 = healthy) "
                               "or http_url (GET; 2xx = healthy)")
    if url:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"{key}.http_url", f"must be an http:// or https:// URL, got {url!r}")
    if hc.get("timeout") in (None, ""):
        timeout = interval / 2  # route-registrar's default: half the registration interval
    else:
        timeout = parse_duration(hc["timeout"], f"{key}.timeout")
        if timeout >= interval:
            raise ConfigError(f"{key}.timeout", f"must be less than the registration_interval "
                                                f"({timeout:g}s >= {interval:g}s)")
    name = _string(hc.get("name"), f"{key}.name") or route_name
    return HealthCheck(name=name, timeout=timeout, script_path=script, http_url=url)


def _route(value: Any, i: int, default_host: str | None) -> Route:
    key = f"routes[{i}]"
    r = _mapping(value, key)
    if r.get("type") not in (None, "", "http"):
        raise ConfigError(f"{key}.type", f"{r['type']!r} routes are not supported: portico registrar publishes "
                                         "HTTP routes on NATS only")
    name = _string(r.get("name"), f"{key}.name", required=True) or ""
    host = _string(r.get("host"), f"{key}.host") or default_host
    if not host:
        raise ConfigError(f"{key}.host", "is required (set it on the route or at the top level)")
    port = _port(r.get("port"), f"{key}.port")
    tls_port = _port(r.get("tls_port"), f"{key}.tls_port")
    if port is None and tls_port is None:
        raise ConfigError(f"{key}.port", "is required: give port and/or tls_port")
    uris = r.get("uris")
    if not isinstance(uris, list) or not uris:
        raise ConfigError(f"{key}.uris", f"must be a non-empty list of routes like app.example.com, got {_kind(uris)}")
    for j, uri in enumerate(uris):
        if not isinstance(uri, str) or not uri.strip():
            raise ConfigError(f"{key}.uris[{j}]", f"must be a non-empty string, got {_kind(uri)}")
    tags_value = r.get("tags") or {}
    tags = {}
    for tag, tag_value in _mapping(tags_value, f"{key}.tags").items():
        tags[str(tag)] = _string(tag_value, f"{key}.tags.{tag}") or ""
    san = _string(r.get("server_cert_domain_san"), f"{key}.server_cert_domain_san")
    if tls_port is not None and not san:
        raise ConfigError(f"{key}.server_cert_domain_san", "is required when tls_port is set "
                                                           "(the router verifies the backend's certificate)")
    rs_url = _string(r.get("route_service_url"), f"{key}.route_service_url")
    if rs_url and not rs_url.startswith("https"):
        raise ConfigError(f"{key}.route_service_url",
                          f"must start with https (gorouter rejects others), got {rs_url!r}")
    interval_value = r.get("registration_interval")
    interval = (DEFAULT_REGISTRATION_INTERVAL if interval_value in (None, "")
                else parse_duration(interval_value, f"{key}.registration_interval"))
    stale = r.get("stale_threshold_in_seconds")
    if stale is not None:
        if isinstance(stale, bool) or not isinstance(stale, int) or stale <= 0:
            raise ConfigError(f"{key}.stale_threshold_in_seconds",
                              f"must be a whole number of seconds > 0, got {stale!r}")
        if interval >= stale:
            raise ConfigError(f"{key}.registration_interval",
                              f"must be less than stale_threshold_in_seconds ({interval:g}s >= {stale}s), "
                              "or the route expires between registrations")
    return Route(
        name=name, host=host, uris=tuple(u.strip() for u in uris), registration_interval=interval,
        port=port, tls_port=tls_port, tags=tags,
        app=_string(r.get("app"), f"{key}.app"),
        private_instance_id=_string(r.get("private_instance_id"), f"{key}.private_instance_id"),
        private_instance_index=_string(r.get("private_instance_index"), f"{key}.private_instance_index"),
        server_cert_domain_san=san, route_service_url=rs_url, stale_threshold_in_seconds=stale,
        health_check=_health_check(r.get("health_check"), f"{key}.health_check", name, interval),
    )


def parse_config(doc: Any) -> RegistrarConfig:
    """Check a decoded YAML document and return the typed config, or raise ConfigError."""
    doc = _mapping(doc, "") if doc is not None else {}
    mtls = doc.get("nats_mtls_config")
    if isinstance(mtls, dict) and mtls.get("enabled"):
        raise ConfigError("nats_mtls_config.enabled", "NATS mutual TLS is not supported yet")
    nats = _nats_servers(doc)
    default_host = _string(doc.get("host"), "host")
    routes_value = doc.get("routes")
    if not isinstance(routes_value, list) or not routes_value:
        raise ConfigError("routes", f"must be a non-empty list of routes, got {_kind(routes_value)}")
    routes = tuple(_route(r, i, default_host) for i, r in enumerate(routes_value))
    seen: dict[str, int] = {}
    for i, route in enumerate(routes):
        if route.name in seen:
            raise ConfigError(f"routes[{i}].name", f"{route.name!r} is already the name of routes[{seen[route.name]}]")
        seen[route.name] = i
    return RegistrarConfig(nats=nats, routes=routes)


def load_config(path: str | Path) -> RegistrarConfig:
    """Read and check the YAML file at `path`; every problem is one ConfigError."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigError("", f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError("", f"not valid YAML{where}: {problem}") from None
    if doc is not None and not isinstance(doc, dict):
        raise ConfigError("", f"the file must be a YAML mapping with routes and NATS servers, got {_kind(doc)}")
    return parse_config(doc)
