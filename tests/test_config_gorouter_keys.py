"""gorouter keys read for drop-in behaviour (issue 11): spellings, aliases, lists, bad values."""

from __future__ import annotations

import textwrap

import pytest
import yaml

from portico.config.loader import ConfigError, load_config

PEM_A = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"


def load(tmp_path, text: str):
    path = tmp_path / "gorouter.yml"
    path.write_text(textwrap.dedent(text))
    return load_config(path)


def error(tmp_path, text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    return info.value


def test_read_header_timeout_is_gorouters_name_for_request_header_timeout(tmp_path):
    assert load(tmp_path, "read_header_timeout: 3s\n").request_header_timeout == 3.0
    assert load(tmp_path, "request_header_timeout: 4s\n").request_header_timeout == 4.0
    assert load(tmp_path, "read_header_timeout: 0\n").request_header_timeout == 0.0  # no limit, as gorouter
    err = error(tmp_path, "read_header_timeout: 3s\nrequest_header_timeout: 4s\n")
    assert "keep only one" in str(err)


def test_top_level_ca_certs_list_and_skip_ssl_validation(tmp_path):
    cfg = load(tmp_path, yaml.safe_dump({"ca_certs": [PEM_A, PEM_A], "skip_ssl_validation": True}))
    assert len(cfg.ca_certs) == 2 and cfg.ca_certs[0].startswith("-----BEGIN CERTIFICATE-----")
    assert cfg.skip_ssl_validation is True
    single = load(tmp_path, 'ca_certs: "-----BEGIN CERTIFICATE-----\\nA\\n-----END CERTIFICATE-----"\n')
    assert len(single.ca_certs) == 1
    assert load(tmp_path, "port: 1\n").ca_certs == ()
    err = error(tmp_path, "ca_certs:\n- /etc/ssl/ca.pem\n")
    assert err.key == "ca_certs[0]" and err.line == 2 and "PEM" in err.reason


def test_route_services_keys(tmp_path):
    cfg = load(tmp_path, """\
        route_services_secret: now
        route_services_secret_decrypt_only: before
        route_service_timeout: 30s
        route_services_recommend_https: true
        route_services_hairpinning: true
        route_services_hairpinning_allowlist: ["*.apps.internal", svc.example.com]
        route_services_internal_server_port: 7171
        route_services:
          max_attempts: 5
          strict_signature_validation: true
        """)
    assert (cfg.route_services_secret, cfg.route_services_secret_decrypt_only) == ("now", "before")
    assert cfg.route_services_timeout == 30.0
    assert cfg.route_services_recommend_https and cfg.route_services_hairpinning
    assert cfg.route_services_hairpinning_allowlist == ("*.apps.internal", "svc.example.com")
    assert cfg.route_services_internal_server_port == 7171
    assert cfg.route_services.max_attempts == 5 and cfg.route_services.strict_signature_validation
    # unset max_attempts: gorouter would answer every route service request 502; Portico takes 3
    assert load(tmp_path, "route_services_secret: s\n").route_services.max_attempts == 3


def test_route_services_bad_values(tmp_path):
    err = error(tmp_path, "route_services_hairpinning_allowlist: ['*.*.example.com']\n")
    assert err.key == "route_services_hairpinning_allowlist" and "Must be wildcard" in err.reason
    err = error(tmp_path, "route_services:\n  max_attempts: 0\n")
    assert err.key == "route_services.max_attempts" and err.line == 2
    err = error(tmp_path, f"route_services:\n  cert_chain: {PEM_A!r}\n")
    assert err.key == "route_services.private_key"


def test_tls_versions(tmp_path):
    cfg = load(tmp_path, "min_tls_version: TLSv1.3\nmax_tls_version: TLSv1.3\n")
    assert (cfg.min_tls_version, cfg.max_tls_version) == ("TLSv1.3", "TLSv1.3")
    assert load(tmp_path, 'min_tls_version: ""\n').min_tls_version == "TLSv1.2"
    err = error(tmp_path, "max_tls_version: TLSv1.1\n")
    assert err.key == "max_tls_version" and "TLSv1.2" in err.reason


def test_forwarded_proto_hop_by_hop_100_continue_and_http_rewrite(tmp_path):
    cfg = load(tmp_path, """\
        force_forwarded_proto_https: true
        sanitize_forwarded_proto: true
        hop_by_hop_headers_to_filter: [X-Keep]
        keep_alive_100_continue_requests: true
        http_rewrite:
          responses:
            remove_headers: [{name: Server}]
            add_headers_if_not_present: [{name: X-Frame-Options, value: DENY}]
        """)
    assert cfg.force_forwarded_proto_https and cfg.sanitize_forwarded_proto
    assert cfg.hop_by_hop_headers_to_filter == ("X-Keep",) and cfg.keep_alive_100_continue_requests
    assert cfg.http_rewrite.remove_headers == ("Server",)
    assert cfg.http_rewrite.add_headers_if_not_present == (("X-Frame-Options", "DENY"),)
    err = error(tmp_path, "http_rewrite:\n  responses:\n    remove_headers: [{name: 'bad name'}]\n")
    assert err.key == "http_rewrite.responses.remove_headers[0].name"


def test_enable_proxy(tmp_path):
    assert load(tmp_path, "enable_proxy: true\n").enable_proxy is True
    assert load(tmp_path, "port: 1\n").enable_proxy is False


def test_tls_listener_keys(tmp_path):
    cfg = load(tmp_path, yaml.safe_dump({
        "client_cert_validation": "require", "client_ca_certs": PEM_A, "only_trust_client_ca_certs": True,
        "forwarded_client_cert": "sanitize_set", "tls_handshake_timeout": "3s",
        "cipher_suites": "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256:ECDHE-RSA-AES256-GCM-SHA384"}))
    assert (cfg.client_cert_validation, cfg.only_trust_client_ca_certs) == ("require", True)
    assert cfg.forwarded_client_cert == "sanitize_set" and cfg.tls_handshake_timeout == 3.0
    assert cfg.cipher_suites == "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384"
    assert error(tmp_path, "cipher_suites: NOT-A-SUITE\n").key == "cipher_suites"
    assert error(tmp_path, "forwarded_client_cert: always\n").key == "forwarded_client_cert"
    err = error(tmp_path, "only_trust_client_ca_certs: true\nclient_cert_validation: request\n")
    assert err.key == "client_ca_certs"


def test_tracing_w3c(tmp_path):
    cfg = load(tmp_path, "tracing:\n  enable_w3c: true\n  w3c_tenant_id: t1\n")
    assert cfg.tracing.enable_w3c and cfg.tracing.w3c_tenant_id == "t1"


def test_balancing_sticky_pool_and_pid_keys(tmp_path):
    cfg = load(tmp_path, """\
        balancing_algorithm_az_preference: locally-optimistic
        sticky_sessions_for_auth_negotiate: true
        empty_pool_timeout: 30s
        websocket_dial_timeout: 2s
        pid_file: /var/vcap/sys/run/gorouter/gorouter.pid
        """)
    assert cfg.balancing_algorithm_az_preference == "locally-optimistic"
    assert cfg.sticky_sessions_for_auth_negotiate and cfg.empty_pool_timeout == 30.0
    assert cfg.websocket_dial_timeout == 2.0 and cfg.pid_file.endswith("gorouter.pid")
    assert error(tmp_path, "balancing_algorithm_az_preference: nearest\n").key == "balancing_algorithm_az_preference"


def test_header_count_and_size_limits(tmp_path):
    cfg = load(tmp_path, "max_request_headers: 50\nmax_response_headers: 40\nmax_response_header_bytes: 4096\n"
                         "max_uri_bytes: 2048\n")
    assert (cfg.max_request_header_count, cfg.max_response_headers, cfg.max_response_header_bytes) == (50, 40, 4096)
    assert cfg.max_uri_bytes == 2048
    assert load(tmp_path, "max_request_header_count: 7\n").max_request_header_count == 7
    assert load(tmp_path, "max_request_headers: 0\n").max_request_header_count == 0   # no limit, as gorouter


def test_disable_http_and_trace_key(tmp_path):
    err = error(tmp_path, "disable_http: true\n")
    assert err.key == "disable_http" and "neither http nor https" in err.reason
    assert load(tmp_path, "trace_key: abc\n").trace_key == "abc"
