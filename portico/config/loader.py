"""Load a gorouter YAML config file into RouterConfig.

Operators bring their existing gorouter.yml, so the loader accepts both the current layout and the older one
(single-port status, `nats:` as a list) and ignores keys it does not know, as gorouter does. Every problem is
reported as one ConfigError line naming file:line:column, the dotted key and what to change: the YAML is
composed into a node tree (which keeps source positions) and walked, rather than loaded into plain dicts.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from portico.config.settings import (
    AccessLogSettings,
    BackendSettings,
    EtcdAnnounceSettings,
    HttpRewriteSettings,
    LoggingSettings,
    NatsServer,
    NatsSettings,
    RouterConfig,
    RouteServiceSettings,
    RouteSnapshotSettings,
    StatusSettings,
    TlsCertificate,
    TracingSettings,
)
from portico.routes.uri import allowlist_domains

__all__ = ["ConfigError", "load_config", "parse_duration"]

log = logging.getLogger(__name__)

BALANCING_ALGORITHMS = ("round-robin", "least-connection")

_TAG = "tag:yaml.org,2002:"
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_DURATION_HINT = 'a duration like "30s", "5m", "1h30m", "250ms" or a number of seconds'


class ConfigError(Exception):
    """A config problem as one actionable line: `file:line:col: key: reason`.

    The parts are kept as attributes so callers (and tests) need not parse the message.
    """

    def __init__(
        self,
        reason: str,
        *,
        path: str | None = None,
        key: str | None = None,
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        self.reason = " ".join(str(reason).split("\n"))
        self.path, self.key, self.line, self.column = path, key, line, column
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.path or ""
        if where and self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return ": ".join(part for part in (where, self.key, self.reason) if part)

    def located(self, path: str, node: Node | None) -> ConfigError:
        """The same error with the file and the node's position (1-based) filled in."""
        mark = node.start_mark if node is not None else None
        return ConfigError(
            self.reason,
            path=path,
            key=self.key,
            line=mark.line + 1 if mark else self.line,
            column=mark.column + 1 if mark else self.column,
        )


def parse_duration(value: Any, key: str) -> float:
    """Seconds from a Go duration string ("1h30m", "250ms", "0") or a bare number of seconds.

    Older gorouter configs write plain integers meaning seconds; newer ones write Go durations. Config
    durations are never negative, so a negative value is an error here rather than in every caller.
    """
    seconds: float | None = None
    if isinstance(value, bool) or value is None:
        seconds = None
    elif isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        seconds = _parse_duration_text(value.strip())
    if seconds is None or not math.isfinite(seconds):
        raise ConfigError(f"expected {_DURATION_HINT}, got {_show(value)}", key=key)
    if seconds < 0:
        raise ConfigError(f"must not be negative, got {_show(value)}", key=key)
    return seconds


def _parse_duration_text(text: str) -> float | None:
    """Go's time.ParseDuration grammar, plus a plain number meaning seconds; None when it does not parse."""
    try:
        return float(text)
    except ValueError:
        pass
    sign = 1.0
    if text and text[0] in "+-":
        sign, text = (-1.0 if text[0] == "-" else 1.0), text[1:]
    total, pos = 0.0, 0
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            return None
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        pos = match.end()
    if pos == 0 or pos != len(text):
        return None
    return sign * total


def _show(value: Any) -> str:
    """A short, quoted rendering of a bad value for an error message."""
    if value is None:
        return "an empty value"
    if isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
        return text if len(text) <= 60 else text[:56] + '..."'
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# --------------------------------------------------------------------------------------------------------------
# Reading the node tree


class _Doc:
    """Per-file state: the path for messages, a constructor for scalars, and the ignored keys seen so far."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.ignored: list[str] = []
        self._constructor = yaml.SafeLoader("")

    def error(self, reason: str, key: str | None, node: Node | None) -> ConfigError:
        return ConfigError(reason, key=key).located(self.path, node)

    def scalar(self, node: Node) -> Any:
        """The Python value of a scalar node (int, float, bool, None or str)."""
        if not isinstance(node, ScalarNode):
            return node
        if node.tag in (_TAG + "int", _TAG + "float", _TAG + "bool", _TAG + "null"):
            try:
                return self._constructor.construct_object(node, deep=True)
            except (yaml.YAMLError, ValueError):  # e.g. `!!int abc`: report the text as the wrong type
                return node.value
        return node.value

    def describe(self, node: Node) -> str:
        if isinstance(node, MappingNode):
            return "a mapping (indented keys)"
        if isinstance(node, SequenceNode):
            return "a list"
        return _show(self.scalar(node))

    def mapping(self, node: Node | None, name: str, at: Node | None) -> _Map:
        """A _Map for `node`; null or absent is an empty section, anything else but a mapping is an error."""
        if node is None or _is_null(node):
            return _Map(self, None, name)
        if not isinstance(node, MappingNode):
            raise self.error(f"expected a section of indented keys, got {self.describe(node)}", name, at or node)
        return _Map(self, node, name)


def _is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == _TAG + "null"


class _Map:
    """One YAML mapping under a dotted name. Remembers which keys were read so the rest can be reported."""

    def __init__(self, doc: _Doc, node: MappingNode | None, name: str) -> None:
        self.doc, self.name, self.node = doc, name, node
        self.entries: dict[str, tuple[Node, Node]] = {}
        self.used: set[str] = set()
        if node is None:
            return
        try:
            doc._constructor.flatten_mapping(node)  # applies `<<: *anchor` merges
        except yaml.MarkedYAMLError as exc:
            raise doc.error(f"cannot merge: {exc.problem}", name or None, node) from None
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                raise doc.error("keys must be plain names, not lists or mappings", name or None, key_node)
            key = str(key_node.value)
            if key in self.entries:
                log.warning("%s:%d: %s given twice; the later value wins", doc.path, key_node.start_mark.line + 1,
                            self.dotted(key))
            self.entries[key] = (key_node, value_node)

    def dotted(self, key: str) -> str:
        return f"{self.name}.{key}" if self.name else key

    def __contains__(self, key: str) -> bool:
        return key in self.entries

    def take(self, names: str | tuple[str, ...]) -> tuple[str, Node, Node] | None:
        """(dotted key, key node, value node) for the first present spelling; None when absent or null.

        Giving two spellings of one key (route_services_timeout and route_service_timeout) is an error rather
        than a silent choice, since the operator cannot tell which one wins.
        """
        names = (names,) if isinstance(names, str) else names
        found = [n for n in names if n in self.entries]
        self.used.update(found)
        if not found:
            return None
        if len(found) > 1:
            key_node = self.entries[found[1]][0]
            raise self.doc.error(f"also given as {self.dotted(found[0])}; keep only one of them",
                                 self.dotted(found[1]), key_node)
        key_node, value_node = self.entries[found[0]]
        if _is_null(value_node):
            return None
        return self.dotted(found[0]), key_node, value_node

    def get(self, names: str | tuple[str, ...], default: Any, convert: Callable[[Any], Any], expected: str) -> Any:
        """Convert a scalar value; `convert` returns None (or raises ValueError) when the value does not fit."""
        entry = self.take(names)
        if entry is None:
            return default
        key, key_node, value_node = entry
        value = self.doc.scalar(value_node) if isinstance(value_node, ScalarNode) else None
        try:
            result = convert(value) if isinstance(value_node, ScalarNode) else None
        except ValueError:
            result = None
        if result is None:
            raise self.doc.error(f"expected {expected}, got {self.doc.describe(value_node)}", key, key_node)
        return result

    def int(self, names: str | tuple[str, ...], default: int, lo: int | None = None, hi: int | None = None) -> int:
        value = self.get(names, default, _to_int, "an integer")
        self._check_range(names, value, lo, hi)
        return value

    def port(self, names: str | tuple[str, ...], default: int, lo: int = 0) -> int:
        return self.int(names, default, lo, 65535)

    def bool(self, names: str | tuple[str, ...], default: bool) -> bool:
        return self.get(names, default, _to_bool, "true or false")

    def str(self, names: str | tuple[str, ...], default: str = "") -> str:
        return self.get(names, default, _to_str, "a text value")

    def duration(self, names: str | tuple[str, ...], default: float, positive: bool = False) -> float:
        entry = self.take(names)
        if entry is None:
            return default
        key, key_node, value_node = entry
        if not isinstance(value_node, ScalarNode):
            raise self.doc.error(f"expected {_DURATION_HINT}, got {self.doc.describe(value_node)}", key, key_node)
        try:
            seconds = parse_duration(self.doc.scalar(value_node), key)
        except ConfigError as exc:
            raise exc.located(self.doc.path, key_node) from None
        if positive and seconds == 0:
            raise self.doc.error(f"must be greater than zero, got {value_node.value!s}", key, key_node)
        return seconds

    def choice(self, names: str | tuple[str, ...], default: str, choices: tuple[str, ...]) -> str:
        value = self.str(names, default)
        if value not in choices:
            key, key_node, _ = self.take(names)  # present, since the default is always valid
            options = " or ".join(choices)
            raise self.doc.error(f"expected {options}, got {_show(value)}", key, key_node)
        return value

    def str_list(self, names: str | tuple[str, ...], default: tuple[str, ...]) -> tuple[str, ...]:
        """A list of text values; a single value is taken as a one-item list."""
        items = self.items(names, accept_scalar=True)
        if items is None:
            return default
        out = []
        for key, node in items:
            value = _to_str(self.doc.scalar(node)) if isinstance(node, ScalarNode) else None
            if value is None:
                raise self.doc.error(f"expected a text value, got {self.doc.describe(node)}", key, node)
            out.append(value)
        return tuple(out)

    def items(self, names: str | tuple[str, ...], accept_scalar: bool = False) -> list[tuple[str, Node]] | None:
        """[(dotted key with index, item node)] of a list value; None when absent or null."""
        entry = self.take(names)
        if entry is None:
            return None
        key, key_node, value_node = entry
        if isinstance(value_node, SequenceNode):
            return [(f"{key}[{i}]", item) for i, item in enumerate(value_node.value)]
        if accept_scalar and isinstance(value_node, ScalarNode):
            return [(key, value_node)]
        raise self.doc.error(f"expected a list (lines starting with '- '), got {self.doc.describe(value_node)}",
                             key, key_node)

    def section(self, names: str | tuple[str, ...]) -> _Map:
        """The sub-mapping at `names`; an empty _Map when absent or null."""
        entry = self.take(names)
        if entry is None:
            return _Map(self.doc, None, self.dotted(names if isinstance(names, str) else names[0]))
        key, key_node, value_node = entry
        return self.doc.mapping(value_node, key, key_node)

    def _check_range(self, names: str | tuple[str, ...], value: int, lo: int | None, hi: int | None) -> None:
        if (lo is None or value >= lo) and (hi is None or value <= hi):
            return
        key, key_node, _ = self.take(names)
        if hi is None:
            bound = f"at least {lo}"
        elif lo is None:
            bound = f"at most {hi}"
        else:
            bound = f"between {lo} and {hi}"
        raise self.doc.error(f"must be {bound}, got {value}", key, key_node)

    def finish(self) -> None:
        """Record (and log at debug) every key nobody read: gorouter ignores unknown keys, so Portico does too."""
        for key, (key_node, _) in self.entries.items():
            if key not in self.used:
                dotted = self.dotted(key)
                log.debug("%s:%d: ignoring unknown key %s", self.doc.path, key_node.start_mark.line + 1, dotted)
                self.doc.ignored.append(dotted)


def _to_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value.strip()):
        return int(value)  # quoted numbers are common in templated configs
    return None


def _to_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


def _to_str(value: Any) -> str | None:
    """Any scalar as text, as gorouter's YAML decoder does for string fields (`zone: 1` is "1")."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return None


# --------------------------------------------------------------------------------------------------------------
# Broken YAML


def _yaml_hint(exc: yaml.MarkedYAMLError) -> str:
    """One line saying what the YAML parser tripped over and what usually fixes it."""
    problem = (exc.problem or exc.context or "invalid YAML").strip()
    text = f"{exc.context or ''} {problem}".lower()
    if "'\\t'" in text:
        hint = "indent with spaces, not tabs"
    elif "mapping values are not allowed" in text:
        hint = "check the indentation of this line and the one above, or quote a value that contains ': '"
    elif "expected <block end>" in text:
        problem = "this line is indented differently from the keys around it"
        hint = "check the indentation of this line and the one above"
    elif "did not find expected" in text or "could not find expected" in text:
        hint = "check the indentation of this line and the one above"
    elif "quoted scalar" in text:
        problem = "this quoted value is never closed"
        hint = "add the closing quote"
    elif "flow sequence" in text or "flow mapping" in text or "expected ','" in text:
        hint = "check that every '[' and '{' above is closed and items are separated by ','"
    elif "expected a single document" in text:
        problem = "a second YAML document starts here"
        hint = "the file must hold one document; remove this '---' and what follows, or merge them"
    elif "undefined alias" in text:
        hint = "define the &anchor before using the *alias"
    else:
        hint = "check the syntax of this line and the one above"
    return f"invalid YAML: {problem}; {hint}"


def _compose(path: str, text: str) -> Node | None:
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        # an unclosed quote is reported at the end of the file; point at where it opens instead
        quoted = "quoted scalar" in (exc.context or "")
        mark = (exc.context_mark if quoted else None) or exc.problem_mark or exc.context_mark
        raise ConfigError(_yaml_hint(exc), path=path, line=mark.line + 1 if mark else None,
                          column=mark.column + 1 if mark else None) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {' '.join(str(exc).split())}", path=path) from None


# --------------------------------------------------------------------------------------------------------------
# The gorouter keys


def load_config(path: str | Path) -> RouterConfig:
    """Read and validate a gorouter YAML config; raises ConfigError (one line) on any problem."""
    name = str(path)
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise ConfigError("config file not found; pass the path of a gorouter YAML config", path=name) from None
    except IsADirectoryError:
        raise ConfigError("is a directory, not a config file", path=name) from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file: {exc.strerror or exc}", path=name) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError("file is not UTF-8 text", path=name, line=line) from None

    root = _compose(name, text)
    doc = _Doc(name)
    if root is None or _is_null(root):
        return RouterConfig(source_path=name)
    if not isinstance(root, MappingNode):
        raise doc.error(f"the file must be a mapping of gorouter keys (key: value), got {doc.describe(root)}",
                        None, root)
    top = _Map(doc, root, "")
    config = _build(top)
    top.finish()
    return RouterConfig(**config, source_path=name, ignored_keys=tuple(doc.ignored))


def _build(top: _Map) -> dict[str, Any]:
    d = RouterConfig()
    c: dict[str, Any] = {
        "status": _status(top),
        "nats": _nats(top),
        "port": top.port("port", d.port, lo=1),
        "index": top.int("index", d.index, lo=0),
        "zone": top.str("zone", d.zone),
        "go_max_procs": top.int("go_max_procs", d.go_max_procs),
        "ip": top.str("ip", d.ip) or d.ip,
        "listen_host": top.str("listen_host", d.listen_host) or d.listen_host,
        "workers": top.int("workers", d.workers, lo=1),
        "prune_stale_droplets_interval": top.duration("prune_stale_droplets_interval",
                                                      d.prune_stale_droplets_interval, positive=True),
        "droplet_stale_threshold": top.duration("droplet_stale_threshold", d.droplet_stale_threshold, positive=True),
        "start_response_delay_interval": top.duration("start_response_delay_interval",
                                                      d.start_response_delay_interval),
        "publish_start_message_interval": top.duration("publish_start_message_interval",
                                                       d.publish_start_message_interval),
        "publish_active_apps_interval": top.duration("publish_active_apps_interval", d.publish_active_apps_interval),
        "suspend_pruning_if_nats_unavailable": top.bool("suspend_pruning_if_nats_unavailable",
                                                        d.suspend_pruning_if_nats_unavailable),
        "endpoint_timeout": top.duration("endpoint_timeout", d.endpoint_timeout, positive=True),
        "endpoint_dial_timeout": top.duration("endpoint_dial_timeout", d.endpoint_dial_timeout, positive=True),
        "frontend_idle_timeout": top.duration("frontend_idle_timeout", d.frontend_idle_timeout, positive=True),
        # gorouter's read_header_timeout; Portico's older name is kept. 0 means no limit, as in gorouter.
        "request_header_timeout": top.duration(("read_header_timeout", "request_header_timeout"),
                                               d.request_header_timeout),
        "max_client_connections": top.int("max_client_connections", d.max_client_connections, lo=0),
        "drain_wait": top.duration("drain_wait", d.drain_wait),
        "drain_timeout": top.duration("drain_timeout", d.drain_timeout),
        "balancing_algorithm": top.choice("balancing_algorithm", d.balancing_algorithm, BALANCING_ALGORITHMS),
        "backends": _backends(top),
        "disable_keep_alives": top.bool("disable_keep_alives", d.disable_keep_alives),
        "max_idle_conns_per_host": top.int(("max_idle_conns_per_host", "max_idle_connections_per_host"),
                                           d.max_idle_conns_per_host, lo=0),
        # gorouter treats 0 as "use the default" (Go's 1 MiB)
        "max_request_header_bytes": top.int("max_request_header_bytes", d.max_request_header_bytes, lo=0)
        or d.max_request_header_bytes,
        "empty_pool_response_code_503": top.bool("empty_pool_response_code_503", d.empty_pool_response_code_503),
        "force_forwarded_proto_https": top.bool("force_forwarded_proto_https", d.force_forwarded_proto_https),
        "sanitize_forwarded_proto": top.bool("sanitize_forwarded_proto", d.sanitize_forwarded_proto),
        "hop_by_hop_headers_to_filter": top.str_list("hop_by_hop_headers_to_filter", ()),
        "keep_alive_100_continue_requests": top.bool("keep_alive_100_continue_requests",
                                                     d.keep_alive_100_continue_requests),
        "secure_cookies": top.bool("secure_cookies", d.secure_cookies),
        "sticky_session_cookie_names": top.str_list("sticky_session_cookie_names", d.sticky_session_cookie_names),
        "route_services_secret": top.str("route_services_secret", d.route_services_secret),
        "route_services_timeout": top.duration(("route_services_timeout", "route_service_timeout"),
                                               d.route_services_timeout, positive=True),
        "route_services_secret_decrypt_only": top.str("route_services_secret_decrypt_only"),
        "route_services_recommend_https": top.bool("route_services_recommend_https",
                                                   d.route_services_recommend_https),
        "route_services_hairpinning": top.bool("route_services_hairpinning", d.route_services_hairpinning),
        "route_services_hairpinning_allowlist": _hairpinning_allowlist(top),
        "route_services_internal_server_port": top.port("route_services_internal_server_port",
                                                        d.route_services_internal_server_port, lo=1),
        "route_services": _route_services(top),
        "http_rewrite": _http_rewrite(top),
        "healthcheck_user_agent": top.str("healthcheck_user_agent", d.healthcheck_user_agent)
        or d.healthcheck_user_agent,
        "enable_proxy": top.bool("enable_proxy", d.enable_proxy),
        "enable_ssl": top.bool("enable_ssl", d.enable_ssl),
        "ssl_port": top.port("ssl_port", d.ssl_port),
        "tls_pem": _tls_pem(top),
        "tls_cert_dir": top.str("tls_cert_dir", d.tls_cert_dir),
        "ca_certs": _ca_certs(top),
        "skip_ssl_validation": top.bool("skip_ssl_validation", d.skip_ssl_validation),
        # gorouter treats "" as TLSv1.2
        "min_tls_version": top.choice("min_tls_version", d.min_tls_version,
                                      ("TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3", "")) or d.min_tls_version,
        "max_tls_version": top.choice("max_tls_version", d.max_tls_version, ("TLSv1.2", "TLSv1.3", ""))
        or d.max_tls_version,
        "extra_headers_to_log": top.str_list("extra_headers_to_log", d.extra_headers_to_log),
        "access_log": _access_log(top),
        "logging": _logging(top),
        "tracing": _tracing(top),
        "etcd": _etcd(top),
        "route_snapshot": _route_snapshot(top),
    }
    if c["enable_ssl"] and not c["tls_pem"] and not c["tls_cert_dir"]:
        _, key_node, _ = top.take("enable_ssl")
        raise top.doc.error("enable_ssl is true but no certificates are given; add tls_pem entries "
                            "(cert_chain and private_key), set tls_cert_dir, or set enable_ssl: false",
                            "tls_pem", key_node)
    return c


def _status(top: _Map) -> StatusSettings:
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
        host=s.str("host", d.host) or d.host,
        port=s.port("port", d.port),
        user=s.str("user"),
        password=s.str("pass"),
        routes_port=routes_port,
    )
    s.finish()
    return status


def _nats_server(doc: _Doc, key: str, node: Node) -> NatsServer:
    """One NATS host: {hostname, port} (current) or {host, port, user, pass} (older list layout)."""
    m = doc.mapping(node, key, node)
    if m.node is None:
        raise doc.error("expected hostname and port of a NATS server", key, node)
    d = NatsServer()
    server = NatsServer(
        hostname=m.str(("hostname", "host"), d.hostname) or d.hostname,
        port=m.port("port", d.port, lo=1),
        user=m.str("user"),
        password=m.str("pass"),
    )
    m.finish()
    return server


def _nats(top: _Map) -> NatsSettings:
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
        user=m.str("user"),
        password=m.str("pass"),
        tls_enabled=m.bool("tls_enabled", d.tls_enabled),
        ca_certs=_pem(m, "ca_certs", "CERTIFICATE"),
        cert_chain=_pem(m, "cert_chain", "CERTIFICATE"),
        private_key=_pem(m, "private_key", "PRIVATE KEY"),
        token=m.str("token"),
    )
    _pair(m, nats.cert_chain, nats.private_key, "NATS client TLS")
    m.finish()
    return nats


def _pair(m: _Map, cert_chain: str, private_key: str, what: str) -> None:
    """A client certificate needs its key and the other way round."""
    if bool(cert_chain) != bool(private_key):
        missing = "private_key" if cert_chain else "cert_chain"
        raise m.doc.error(f"{what} needs both cert_chain and private_key", m.dotted(missing), m.node)


def _backends(top: _Map) -> BackendSettings:
    d = BackendSettings()
    b = top.section("backends")
    backends = BackendSettings(
        max_conns=b.int("max_conns", d.max_conns, lo=0),
        max_attempts=b.int("max_attempts", d.max_attempts, lo=1),
        cert_chain=_pem(b, "cert_chain", "CERTIFICATE"),
        private_key=_pem(b, "private_key", "PRIVATE KEY"),
        ca_certs=_pem(b, "ca_certs", "CERTIFICATE"),
    )
    if bool(backends.cert_chain) != bool(backends.private_key):
        missing = "private_key" if backends.cert_chain else "cert_chain"
        raise top.doc.error("backend client TLS needs both cert_chain and private_key", b.dotted(missing), b.node)
    b.finish()
    return backends


def _route_services(top: _Map) -> RouteServiceSettings:
    d = RouteServiceSettings()
    m = top.section("route_services")
    settings = RouteServiceSettings(
        max_attempts=m.int("max_attempts", d.max_attempts, lo=1),
        strict_signature_validation=m.bool("strict_signature_validation", d.strict_signature_validation),
        cert_chain=_pem(m, "cert_chain", "CERTIFICATE"),
        private_key=_pem(m, "private_key", "PRIVATE KEY"),
    )
    if bool(settings.cert_chain) != bool(settings.private_key):
        missing = "private_key" if settings.cert_chain else "cert_chain"
        raise top.doc.error("route service client TLS needs both cert_chain and private_key", m.dotted(missing),
                            m.node)
    m.finish()
    return settings


def _http_rewrite(top: _Map) -> HttpRewriteSettings:
    """http_rewrite.responses.{remove_headers: [{name}], add_headers_if_not_present: [{name, value}]}."""
    m = top.section("http_rewrite")
    responses = m.section("responses")
    lists: dict[str, list[tuple[str, str]]] = {}
    for key in ("remove_headers", "add_headers_if_not_present"):
        lists[key] = []
        for item_key, node in responses.items(key) or []:
            item = top.doc.mapping(node, item_key, node)
            name = item.str("name")
            if not name or not _HEADER_NAME.match(name):
                raise top.doc.error(f"expected a header name, got {_show(name)}", f"{item_key}.name", node)
            value = item.str("value")
            if "\r" in value or "\n" in value:
                raise top.doc.error("a header value must be one line", f"{item_key}.value", node)
            lists[key].append((name, value))
            item.finish()
    responses.finish()
    m.finish()
    return HttpRewriteSettings(remove_headers=tuple(n for n, _ in lists["remove_headers"]),
                               add_headers_if_not_present=tuple(lists["add_headers_if_not_present"]))


_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")


def _hairpinning_allowlist(top: _Map) -> tuple[str, ...]:
    entries = top.str_list("route_services_hairpinning_allowlist", ())
    try:
        allowlist_domains(entries)
    except ValueError as exc:
        _, key_node, _ = top.take("route_services_hairpinning_allowlist")
        raise top.doc.error(str(exc), "route_services_hairpinning_allowlist", key_node) from None
    return entries


def _pem(m: _Map, key: str, kind: str) -> str:
    """PEM text; checked for its BEGIN line so a file path or a truncated paste is caught at load time."""
    value = m.str(key)
    if value and "-----BEGIN" not in value:
        dotted, key_node, _ = m.take(key)
        raise m.doc.error(f"expected PEM text starting with '-----BEGIN {kind}-----' (the contents, not a path)",
                          dotted, key_node)
    return value


def _ca_certs(top: _Map) -> tuple[str, ...]:
    """gorouter's top-level ca_certs: a list of PEM texts (one text is taken as a one-item list)."""
    out = []
    for key, node in top.items("ca_certs", accept_scalar=True) or []:
        value = top.doc.scalar(node) if isinstance(node, ScalarNode) else None
        if not isinstance(value, str) or "-----BEGIN" not in value:
            raise top.doc.error("expected PEM text starting with '-----BEGIN CERTIFICATE-----' (the contents, "
                                "not a path)", key, node)
        out.append(value)
    return tuple(out)


def _tls_pem(top: _Map) -> tuple[TlsCertificate, ...]:
    out = []
    for key, node in top.items("tls_pem") or []:
        m = top.doc.mapping(node, key, node)
        cert, private_key = _pem(m, "cert_chain", "CERTIFICATE"), _pem(m, "private_key", "PRIVATE KEY")
        for name, value in (("cert_chain", cert), ("private_key", private_key)):
            if not value:
                raise top.doc.error("missing; each tls_pem entry needs cert_chain and private_key",
                                    f"{key}.{name}", node)
        m.finish()
        out.append(TlsCertificate(cert_chain=cert, private_key=private_key))
    return tuple(out)


def _access_log(top: _Map) -> AccessLogSettings:
    m = top.section("access_log")
    settings = AccessLogSettings(file=m.str("file"))
    m.finish()
    return settings


def _logging(top: _Map) -> LoggingSettings:
    d = LoggingSettings()
    m = top.section("logging")
    fmt = m.section("format")
    settings = LoggingSettings(
        file=m.str("file"),
        syslog=m.str("syslog"),
        level=(m.str("level", d.level) or d.level).lower(),
        timestamp_format=fmt.str("timestamp", d.timestamp_format) or d.timestamp_format,
    )
    fmt.finish()
    m.finish()
    return settings


def _tracing(top: _Map) -> TracingSettings:
    m = top.section("tracing")
    settings = TracingSettings(enable_zipkin=m.bool("enable_zipkin", TracingSettings().enable_zipkin))
    m.finish()
    return settings


def _etcd(top: _Map) -> EtcdAnnounceSettings:
    d = EtcdAnnounceSettings()
    m = top.section("etcd")
    settings = EtcdAnnounceSettings(
        endpoints=tuple(e for e in m.str_list("endpoints", d.endpoints) if e),
        prefix=m.str("prefix", d.prefix) or d.prefix,
        lease_ttl=m.duration("lease_ttl", d.lease_ttl, positive=True),
        advertise_host=m.str("advertise_host", d.advertise_host) or d.advertise_host,
        username=m.str("username"),
        password=m.str("password"),
        ca_certs=_pem(m, "ca_certs", "CERTIFICATE"),
        cert_chain=_pem(m, "cert_chain", "CERTIFICATE"),
        private_key=_pem(m, "private_key", "PRIVATE KEY"),
    )
    _pair(m, settings.cert_chain, settings.private_key, "etcd client TLS")
    if bool(settings.username) != bool(settings.password):
        missing = "password" if settings.username else "username"
        raise m.doc.error("etcd authentication needs both username and password", m.dotted(missing), m.node)
    m.finish()
    return settings


def _route_snapshot(top: _Map) -> RouteSnapshotSettings:
    d = RouteSnapshotSettings()
    m = top.section("route_snapshot")
    settings = RouteSnapshotSettings(
        enabled=m.bool("enabled", d.enabled),
        file=m.str("file", d.file),
        interval=m.duration("interval", d.interval, positive=True),
    )
    m.finish()
    return settings
