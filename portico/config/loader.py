"""Load a gorouter YAML config file into RouterConfig.

Operators bring their existing gorouter.yml, so the loader accepts both the current layout and the older one
(single-port status, `nats:` as a list) and ignores keys it does not know, as gorouter does. Every problem is
reported as one ConfigError line naming file:line:column, the dotted key and what to change, through the config
toolkit (portico.config.yaml_reader and portico.config.values) that the registrar's config uses too. The
sections (status, nats, backends, TLS, route services, ...) are read in portico.config.gorouter_sections.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from portico.config.gorouter_sections import (
    read_access_log,
    read_backends,
    read_ca_certs,
    read_cipher_suites,
    read_etcd,
    read_hairpinning_allowlist,
    read_http_rewrite,
    read_logging,
    read_metrics,
    read_nats,
    read_pem,
    read_route_services,
    read_route_snapshot,
    read_status,
    read_tls_pem,
    read_tracing,
)
from portico.config.settings import RouterConfig
from portico.config.values import ConfigError, parse_duration
from portico.config.yaml_reader import Section, is_null, read_yaml

__all__ = ["BALANCING_ALGORITHMS", "ConfigError", "load_config", "parse_duration"]

BALANCING_ALGORITHMS = ("round-robin", "least-connection")




def load_config(path: str | Path) -> RouterConfig:
    """Read and validate a gorouter YAML config; raises ConfigError (one line) on any problem."""
    doc, root = read_yaml(path, "a gorouter YAML config")
    if root is None or is_null(root):
        return RouterConfig(source_path=doc.path)
    top = doc.root(root, "gorouter keys")
    config = _build(top)
    top.finish()
    return RouterConfig(**config, source_path=doc.path, ignored_keys=tuple(doc.ignored))


def _build(top: Section) -> dict[str, Any]:
    d = RouterConfig()
    c: dict[str, Any] = {
        "status": read_status(top),
        "nats": read_nats(top),
        "port": top.port("port", d.port, lo=1),
        "index": top.integer("index", d.index, lo=0),
        "zone": top.text("zone", d.zone),
        "go_max_procs": top.integer("go_max_procs", d.go_max_procs),
        "ip": top.text("ip", d.ip) or d.ip,
        "listen_host": top.text("listen_host", d.listen_host) or d.listen_host,
        "workers": top.integer("workers", d.workers, lo=1),
        "huge_pages": top.flag("huge_pages", d.huge_pages),
        "prune_stale_droplets_interval": top.duration("prune_stale_droplets_interval",
                                                      d.prune_stale_droplets_interval, positive=True),
        "droplet_stale_threshold": top.duration("droplet_stale_threshold", d.droplet_stale_threshold, positive=True),
        "start_response_delay_interval": top.duration("start_response_delay_interval",
                                                      d.start_response_delay_interval),
        "publish_start_message_interval": top.duration("publish_start_message_interval",
                                                       d.publish_start_message_interval),
        "publish_active_apps_interval": top.duration("publish_active_apps_interval", d.publish_active_apps_interval),
        "suspend_pruning_if_nats_unavailable": top.flag("suspend_pruning_if_nats_unavailable",
                                                        d.suspend_pruning_if_nats_unavailable),
        "endpoint_timeout": top.duration("endpoint_timeout", d.endpoint_timeout, positive=True),
        "endpoint_dial_timeout": top.duration("endpoint_dial_timeout", d.endpoint_dial_timeout, positive=True),
        "frontend_idle_timeout": top.duration("frontend_idle_timeout", d.frontend_idle_timeout, positive=True),
        # gorouter's read_header_timeout; Portico's older name is kept. 0 means no limit, as in gorouter.
        "request_header_timeout": top.duration(("read_header_timeout", "request_header_timeout"),
                                               d.request_header_timeout),
        "http2_stall_timeout": top.duration("http2_stall_timeout", d.http2_stall_timeout),
        "max_client_connections": top.integer("max_client_connections", d.max_client_connections, lo=0),
        "drain_wait": top.duration("drain_wait", d.drain_wait),
        "drain_timeout": top.duration("drain_timeout", d.drain_timeout),
        "balancing_algorithm": top.choice("balancing_algorithm", d.balancing_algorithm, BALANCING_ALGORITHMS),
        "balancing_algorithm_az_preference": top.choice("balancing_algorithm_az_preference",
                                                        d.balancing_algorithm_az_preference,
                                                        ("none", "locally-optimistic")),
        "sticky_sessions_for_auth_negotiate": top.flag("sticky_sessions_for_auth_negotiate",
                                                       d.sticky_sessions_for_auth_negotiate),
        "empty_pool_timeout": top.duration("empty_pool_timeout", d.empty_pool_timeout),
        "websocket_dial_timeout": top.duration("websocket_dial_timeout", d.websocket_dial_timeout),
        "pid_file": top.text("pid_file", d.pid_file),
        "backends": read_backends(top),
        "disable_keep_alives": top.flag("disable_keep_alives", d.disable_keep_alives),
        "max_idle_conns_per_host": top.integer(("max_idle_conns_per_host", "max_idle_connections_per_host"),
                                           d.max_idle_conns_per_host, lo=0),
        # gorouter treats 0 as "use the default" (Go's 1 MiB)
        # gorouter's max_request_headers (0: no limit); Portico's documented name is kept
        "max_request_header_count": top.integer(("max_request_headers", "max_request_header_count"),
                                                d.max_request_header_count, lo=0),
        "max_response_headers": top.integer("max_response_headers", d.max_response_headers, lo=0),
        "max_response_header_bytes": top.integer("max_response_header_bytes", d.max_response_header_bytes, lo=0),
        "max_uri_bytes": top.integer("max_uri_bytes", d.max_uri_bytes, lo=1),
        "max_request_header_bytes": top.integer("max_request_header_bytes", d.max_request_header_bytes, lo=0)
        or d.max_request_header_bytes,
        "empty_pool_response_code_503": top.flag("empty_pool_response_code_503", d.empty_pool_response_code_503),
        "force_forwarded_proto_https": top.flag("force_forwarded_proto_https", d.force_forwarded_proto_https),
        "sanitize_forwarded_proto": top.flag("sanitize_forwarded_proto", d.sanitize_forwarded_proto),
        "hop_by_hop_headers_to_filter": top.text_list("hop_by_hop_headers_to_filter", ()),
        "keep_alive_100_continue_requests": top.flag("keep_alive_100_continue_requests",
                                                     d.keep_alive_100_continue_requests),
        "secure_cookies": top.flag("secure_cookies", d.secure_cookies),
        "sticky_session_cookie_names": top.text_list("sticky_session_cookie_names", d.sticky_session_cookie_names),
        "route_services_secret": top.text("route_services_secret", d.route_services_secret),
        "route_services_timeout": top.duration(("route_services_timeout", "route_service_timeout"),
                                               d.route_services_timeout, positive=True),
        "route_services_secret_decrypt_only": top.text("route_services_secret_decrypt_only"),
        "route_services_recommend_https": top.flag("route_services_recommend_https",
                                                   d.route_services_recommend_https),
        "route_services_hairpinning": top.flag("route_services_hairpinning", d.route_services_hairpinning),
        "route_services_hairpinning_allowlist": read_hairpinning_allowlist(top),
        "route_services_internal_server_port": top.port("route_services_internal_server_port",
                                                        d.route_services_internal_server_port, lo=1),
        "route_services": read_route_services(top),
        "http_rewrite": read_http_rewrite(top),
        "healthcheck_user_agent": top.text("healthcheck_user_agent", d.healthcheck_user_agent)
        or d.healthcheck_user_agent,
        "enable_proxy": top.flag("enable_proxy", d.enable_proxy),
        "disable_http": top.flag("disable_http", d.disable_http),
        "trace_key": top.text("trace_key", d.trace_key),
        "enable_ssl": top.flag("enable_ssl", d.enable_ssl),
        "enable_http2": top.flag("enable_http2", d.enable_http2),
        "enable_h2c": top.flag("enable_h2c", d.enable_h2c),
        "http2_max_concurrent_streams": top.integer("http2_max_concurrent_streams", d.http2_max_concurrent_streams,
                                                    lo=1),
        "ssl_port": top.port("ssl_port", d.ssl_port),
        "tls_pem": read_tls_pem(top),
        "tls_cert_dir": top.text("tls_cert_dir", d.tls_cert_dir),
        "ca_certs": read_ca_certs(top),
        "skip_ssl_validation": top.flag("skip_ssl_validation", d.skip_ssl_validation),
        # gorouter treats "" as TLSv1.2
        "min_tls_version": top.choice("min_tls_version", d.min_tls_version,
                                      ("TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3", "")) or d.min_tls_version,
        "cipher_suites": read_cipher_suites(top),
        "client_cert_validation": top.choice("client_cert_validation", d.client_cert_validation,
                                             ("none", "request", "require")),
        "client_ca_certs": read_pem(top, "client_ca_certs", "CERTIFICATE"),
        "only_trust_client_ca_certs": top.flag("only_trust_client_ca_certs", d.only_trust_client_ca_certs),
        "forwarded_client_cert": top.choice("forwarded_client_cert", d.forwarded_client_cert,
                                            ("always_forward", "forward", "sanitize_set")),
        "tls_handshake_timeout": top.duration("tls_handshake_timeout", d.tls_handshake_timeout, positive=True),
        "max_tls_version": top.choice("max_tls_version", d.max_tls_version, ("TLSv1.2", "TLSv1.3", ""))
        or d.max_tls_version,
        "extra_headers_to_log": top.text_list("extra_headers_to_log", d.extra_headers_to_log),
        "access_log": read_access_log(top),
        "logging": read_logging(top),
        "tracing": read_tracing(top),
        "etcd": read_etcd(top),
        "route_snapshot": read_route_snapshot(top),
        "metrics": read_metrics(top),
    }
    if c["enable_ssl"] and not c["tls_pem"] and not c["tls_cert_dir"]:
        _, key_node, _ = top.present("enable_ssl")
        raise top.doc.error("enable_ssl is true but no certificates are given; add tls_pem entries "
                            "(cert_chain and private_key), set tls_cert_dir, or set enable_ssl: false",
                            "tls_pem", key_node)
    if c["disable_http"] and not c["enable_ssl"]:
        _, key_node, _ = top.present("disable_http")
        raise top.doc.error("neither http nor https listener is enabled: set enable_ssl: true (with tls_pem) or "
                            "disable_http: false", "disable_http", key_node)
    if c["only_trust_client_ca_certs"] and c["client_cert_validation"] != "none" and not c["client_ca_certs"]:
        _, key_node, _ = top.present("only_trust_client_ca_certs")
        raise top.doc.error("client_ca_certs cannot be empty if only_trust_client_ca_certs is true and "
                            "client_cert_validation is 'request' or 'require'", "client_ca_certs", key_node)
    return c
