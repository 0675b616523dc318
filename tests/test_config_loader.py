"""The gorouter YAML loader: both layouts, durations, and a located one-line error for every mistake."""

from __future__ import annotations

import logging
import textwrap

import pytest

from portico.config.loader import ConfigError, load_config, parse_duration
from portico.config.settings import RouterConfig, StatusSettings

# The older-layout config from the issue, verbatim.
OLDER_SAMPLE = """\
status:
  port: 8082
  user: admin
  pass: admin123
nats:
  - host: "127.0.0.1"
    port: 4222
    user:
    pass:
logging:
  file:
  syslog:
  level: info
port: 9999
index: 0
go_max_procs: -1
publish_start_message_interval: 600
prune_stale_droplets_interval: 10
droplet_stale_threshold: 80
publish_active_apps_interval: 0
secure_cookies: false
route_service_timeout: 600
route_services_secret: "tWPE+sWJq+ZnGJpyKkIPYg=="
extra_headers_to_log:
- Span-Id
- Trace-Id
- Cache-Control
"""

CERT = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
KEY = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n"

# A current-layout file in the shape a BOSH deployment renders for gorouter.
CURRENT = """\
status:
  host: 0.0.0.0
  port: 8080
  user: router-status
  pass: s3cret
  routes:
    port: 8082
nats:
  hosts:
  - hostname: 10.0.16.11
    port: 4222
  - hostname: 10.0.16.12
    port: 4223
  user: nats
  pass: nats-pass
  tls_enabled: true
logging:
  file: /var/vcap/sys/log/gorouter/gorouter.log
  syslog: vcap.gorouter
  level: DEBUG
  format:
    timestamp: unix-epoch
access_log:
  file: /var/vcap/sys/log/gorouter/access.log
tracing:
  enable_zipkin: true
port: 8081
index: 2
zone: z1
go_max_procs: 8
prune_stale_droplets_interval: 30s
droplet_stale_threshold: 2m
start_response_delay_interval: 5s
publish_start_message_interval: 30s
suspend_pruning_if_nats_unavailable: true
endpoint_timeout: 900s
endpoint_dial_timeout: 500ms
frontend_idle_timeout: 15m
drain_wait: 20s
drain_timeout: 1m30s
request_header_timeout: 1.5s
balancing_algorithm: least-connection
backends:
  max_conns: 500
  max_attempts: 3
disable_keep_alives: false
max_idle_conns_per_host: 100
max_request_header_bytes: 65536
empty_pool_response_code_503: false
secure_cookies: true
sticky_session_cookie_names: [JSESSIONID, SESSION]
route_services_secret: rs-secret
route_services_timeout: 60s
healthcheck_user_agent: ELB-HealthChecker/2.0
enable_ssl: true
ssl_port: 8443
tls_pem:
- cert_chain: |
    -----BEGIN CERTIFICATE-----
    MIIB
    -----END CERTIFICATE-----
  private_key: |
    -----BEGIN PRIVATE KEY-----
    MIIE
    -----END PRIVATE KEY-----
extra_headers_to_log: [X-B3-TraceId]
etcd:
  endpoints: ["http://10.0.0.1:2379", "http://10.0.0.2:2379"]
  prefix: /routers
  lease_ttl: 15s
  advertise_host: 10.0.16.20
workers: 4
listen_host: 10.0.16.20
"""


def write(tmp_path, text: str, name: str = "gorouter.yml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def error_for(tmp_path, text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    message = str(info.value)
    assert "\n" not in message
    return info.value


# --- layouts ----------------------------------------------------------------------------------------------------


def test_older_sample_from_the_issue(tmp_path):
    cfg = load_config(write(tmp_path, OLDER_SAMPLE))
    assert cfg.status == StatusSettings(host="0.0.0.0", port=8082, user="admin", password="admin123",
                                        routes_port=None)
    assert [(h.hostname, h.port, h.user, h.password) for h in cfg.nats.hosts] == [("127.0.0.1", 4222, "", "")]
    assert cfg.nats.urls() == ["nats://127.0.0.1:4222"]
    assert (cfg.logging.file, cfg.logging.syslog, cfg.logging.level) == ("", "", "info")
    assert (cfg.port, cfg.index, cfg.go_max_procs) == (9999, 0, -1)
    assert cfg.publish_start_message_interval == 600.0
    assert cfg.prune_stale_droplets_interval == 10.0
    assert cfg.droplet_stale_threshold == 80.0
    assert cfg.publish_active_apps_interval == 0.0
    assert cfg.secure_cookies is False
    assert cfg.route_services_timeout == 600.0
    assert cfg.route_services_secret == "tWPE+sWJq+ZnGJpyKkIPYg=="
    assert cfg.extra_headers_to_log == ("Span-Id", "Trace-Id", "Cache-Control")
    assert cfg.ignored_keys == ()
    assert cfg.source_path == str(tmp_path / "gorouter.yml")


def test_current_layout(tmp_path):
    cfg = load_config(write(tmp_path, CURRENT))
    assert cfg.status == StatusSettings(host="0.0.0.0", port=8080, user="router-status", password="s3cret",
                                        routes_port=8082)
    assert [(h.hostname, h.port) for h in cfg.nats.hosts] == [("10.0.16.11", 4222), ("10.0.16.12", 4223)]
    assert (cfg.nats.user, cfg.nats.password, cfg.nats.tls_enabled) == ("nats", "nats-pass", True)
    assert cfg.nats.urls()[0] == "tls://nats:nats-pass@10.0.16.11:4222"
    assert cfg.logging.file == "/var/vcap/sys/log/gorouter/gorouter.log"
    assert (cfg.logging.syslog, cfg.logging.level, cfg.logging.timestamp_format) == (
        "vcap.gorouter", "debug", "unix-epoch")
    assert cfg.access_log.file == "/var/vcap/sys/log/gorouter/access.log"
    assert cfg.tracing.enable_zipkin is True
    assert (cfg.port, cfg.index, cfg.zone, cfg.go_max_procs) == (8081, 2, "z1", 8)
    assert cfg.prune_stale_droplets_interval == 30.0
    assert cfg.droplet_stale_threshold == 120.0
    assert cfg.start_response_delay_interval == 5.0
    assert cfg.publish_start_message_interval == 30.0
    assert cfg.suspend_pruning_if_nats_unavailable is True
    assert cfg.endpoint_timeout == 900.0
    assert cfg.endpoint_dial_timeout == pytest.approx(0.5)
    assert cfg.frontend_idle_timeout == 900.0
    assert (cfg.drain_wait, cfg.drain_timeout) == (20.0, 90.0)
    assert cfg.request_header_timeout == pytest.approx(1.5)
    assert cfg.balancing_algorithm == "least-connection"
    assert (cfg.backends.max_conns, cfg.backends.max_attempts) == (500, 3)
    assert cfg.disable_keep_alives is False
    assert cfg.max_idle_conns_per_host == 100
    assert cfg.max_request_header_bytes == 65536
    assert cfg.empty_pool_response_code_503 is False
    assert cfg.secure_cookies is True
    assert cfg.sticky_session_cookie_names == ("JSESSIONID", "SESSION")
    assert cfg.route_services_secret == "rs-secret"
    assert cfg.route_services_timeout == 60.0
    assert cfg.healthcheck_user_agent == "ELB-HealthChecker/2.0"
    assert (cfg.enable_ssl, cfg.ssl_port) == (True, 8443)
    assert len(cfg.tls_pem) == 1
    assert cfg.tls_pem[0].cert_chain == CERT and cfg.tls_pem[0].private_key == KEY
    assert cfg.extra_headers_to_log == ("X-B3-TraceId",)
    assert cfg.etcd.endpoints == ("http://10.0.0.1:2379", "http://10.0.0.2:2379")
    assert (cfg.etcd.prefix, cfg.etcd.lease_ttl, cfg.etcd.advertise_host) == ("/routers", 15.0, "10.0.16.20")
    assert (cfg.workers, cfg.listen_host) == (4, "10.0.16.20")
    assert cfg.ignored_keys == ()


def test_empty_file_gives_defaults(tmp_path):
    path = write(tmp_path, "")
    cfg = load_config(path)
    assert cfg == RouterConfig(source_path=str(path))
    assert cfg.status.routes_port == 8082


def test_comment_only_file_gives_defaults(tmp_path):
    path = write(tmp_path, "# nothing set yet\n")
    assert load_config(path) == RouterConfig(source_path=str(path))


def test_accepts_str_path(tmp_path):
    path = write(tmp_path, "port: 8000\n")
    assert load_config(str(path)).port == 8000


def test_empty_sections_and_hosts_use_defaults(tmp_path):
    cfg = load_config(write(tmp_path, """\
        nats:
          hosts: []
        backends:
        logging:
    """))
    assert [(h.hostname, h.port) for h in cfg.nats.hosts] == [("127.0.0.1", 4222)]
    assert cfg.backends.max_attempts == 1
    assert cfg.logging.level == "info"
    assert cfg.status.routes_port == 8082


def test_older_nats_list_with_credentials_per_host(tmp_path):
    cfg = load_config(write(tmp_path, """\
        nats:
          - host: 10.0.0.1
            port: 4222
            user: a
            pass: pa
          - host: 10.0.0.2
            port: 4223
            user: b
            pass: pb
    """))
    assert cfg.nats.urls() == ["nats://a:pa@10.0.0.1:4222", "nats://b:pb@10.0.0.2:4223"]


def test_older_nats_empty_list_defaults(tmp_path):
    cfg = load_config(write(tmp_path, "nats: []\n"))
    assert cfg.nats.urls() == ["nats://127.0.0.1:4222"]


def test_status_with_routes_section_but_no_port_keeps_default(tmp_path):
    cfg = load_config(write(tmp_path, "status:\n  port: 9090\n  routes: {}\n"))
    assert (cfg.status.port, cfg.status.routes_port) == (9090, 8082)


def test_max_idle_connections_per_host_spelling(tmp_path):
    assert load_config(write(tmp_path, "max_idle_connections_per_host: 7\n")).max_idle_conns_per_host == 7


def test_both_spellings_of_one_key_is_an_error(tmp_path):
    err = error_for(tmp_path, "route_services_timeout: 10s\nroute_service_timeout: 20\n")
    assert err.key == "route_service_timeout" and err.line == 2
    assert "keep only one" in str(err)


def test_zero_header_bytes_means_default(tmp_path):
    assert load_config(write(tmp_path, "max_request_header_bytes: 0\n")).max_request_header_bytes == 1024 * 1024


def test_scalars_as_text_and_quoted_numbers(tmp_path):
    cfg = load_config(write(tmp_path, 'zone: 1\nport: "8090"\nsecure_cookies: "true"\n'))
    assert (cfg.zone, cfg.port, cfg.secure_cookies) == ("1", 8090, True)


def test_yaml_anchors_and_merge_keys(tmp_path):
    cfg = load_config(write(tmp_path, """\
        defaults: &nats_host {port: 4333}
        nats:
          hosts:
          - <<: *nats_host
            hostname: n1
    """))
    assert [(h.hostname, h.port) for h in cfg.nats.hosts] == [("n1", 4333)]
    assert cfg.ignored_keys == ("defaults",)


# --- durations --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120s", 120.0), ("5m", 300.0), ("1h30m", 5400.0), ("250ms", 0.25), ("1.5s", 1.5), ("0", 0.0),
        ("1h", 3600.0), ("2m30.5s", 150.5), ("100us", 1e-4), ("100µs", 1e-4), ("10ns", 1e-8), (".5s", 0.5),
        ("+3s", 3.0), ("600", 600.0), (600, 600.0), (0, 0.0), (1.5, 1.5),
    ],
)
def test_parse_duration(value, seconds):
    assert parse_duration(value, "k") == pytest.approx(seconds)


@pytest.mark.parametrize("value", ["5 minutes", "s", "", "1h 30m", "3d", "1.2.3s", "ms5", None, True, [1], "-5s",
                                   -1, float("nan"), "inf"])
def test_parse_duration_rejects(value):
    with pytest.raises(ConfigError) as info:
        parse_duration(value, "drain_wait")
    assert str(info.value).startswith("drain_wait: ")


def test_durations_in_file_both_forms(tmp_path):
    cfg = load_config(write(tmp_path, """\
        endpoint_timeout: 90
        endpoint_dial_timeout: 0.25
        drain_wait: 1m
        drain_timeout: "45s"
        route_service_timeout: 2m
    """))
    assert (cfg.endpoint_timeout, cfg.endpoint_dial_timeout) == (90.0, 0.25)
    assert (cfg.drain_wait, cfg.drain_timeout, cfg.route_services_timeout) == (60.0, 45.0, 120.0)


def test_zero_duration_where_it_makes_no_sense(tmp_path):
    err = error_for(tmp_path, "port: 8081\nprune_stale_droplets_interval: 0s\n")
    assert str(err) == (f"{tmp_path / 'gorouter.yml'}:2:1: prune_stale_droplets_interval: "
                        "must be greater than zero, got 0s")


def test_zero_duration_allowed_where_it_means_off(tmp_path):
    cfg = load_config(write(tmp_path, "drain_wait: 0\nstart_response_delay_interval: 0s\n"))
    assert (cfg.drain_wait, cfg.start_response_delay_interval) == (0.0, 0.0)


def test_bad_duration_names_key_and_line(tmp_path):
    err = error_for(tmp_path, "port: 8081\n\nendpoint_timeout: 5 minutes\n")
    assert str(err).endswith(':3:1: endpoint_timeout: expected a duration like "30s", "5m", "1h30m", "250ms" '
                             'or a number of seconds, got "5 minutes"')


def test_negative_duration(tmp_path):
    err = error_for(tmp_path, "drain_wait: -5s\n")
    assert (err.key, err.line) == ("drain_wait", 1)
    assert "negative" in str(err)


def test_list_where_duration_expected(tmp_path):
    err = error_for(tmp_path, "drain_wait: [1, 2]\n")
    assert "got a list" in str(err) and err.key == "drain_wait"


# --- errors -----------------------------------------------------------------------------------------------------


def test_wrong_type_names_key_line_and_column(tmp_path):
    err = error_for(tmp_path, """\
        port: 8081
        backends:
          max_conns: 5
          max_attempts: three
    """)
    assert str(err) == f'{tmp_path / "gorouter.yml"}:4:3: backends.max_attempts: expected an integer, got "three"'
    assert (err.path, err.key, err.line, err.column) == (str(tmp_path / "gorouter.yml"), "backends.max_attempts", 4, 3)


def test_max_attempts_must_be_at_least_one(tmp_path):
    err = error_for(tmp_path, "backends:\n  max_attempts: 0\n")
    assert str(err).endswith(":2:3: backends.max_attempts: must be at least 1, got 0")


def test_broken_indentation_names_line_and_column(tmp_path):
    err = error_for(tmp_path, "status:\n  port: 8080\n user: admin\n")
    assert (err.line, err.column) == (3, 2)
    assert str(err).startswith(f"{tmp_path / 'gorouter.yml'}:3:2: invalid YAML")
    assert "check the indentation of this line and the one above" in str(err)


def test_value_with_colon_hint(tmp_path):
    err = error_for(tmp_path, "port: 8081\nzone: a: b\n")
    assert (err.line, err.column) == (2, 8)
    assert "indentation" in str(err) and "quote" in str(err)


def test_tab_indentation(tmp_path):
    err = error_for(tmp_path, "status:\n\tport: 8080\n")
    assert err.line == 2 and "spaces, not tabs" in str(err)


def test_unclosed_quote(tmp_path):
    err = error_for(tmp_path, 'port: 8081\nzone: "z1\n')
    assert (err.line, err.column) == (2, 7) and "never closed" in str(err)


def test_two_documents(tmp_path):
    err = error_for(tmp_path, "port: 1\n---\nport: 2\n")
    assert "one document" in str(err) and err.line == 2


def test_top_level_not_a_mapping(tmp_path):
    err = error_for(tmp_path, "- port: 8081\n")
    assert "must be a mapping" in str(err) and err.line == 1


def test_section_not_a_mapping(tmp_path):
    err = error_for(tmp_path, "port: 8081\nbackends: 3\n")
    assert (err.key, err.line) == ("backends", 2)
    assert "expected a section" in str(err)


def test_list_expected(tmp_path):
    err = error_for(tmp_path, "tls_pem: abc\n")
    assert err.key == "tls_pem" and "expected a list" in str(err)


def test_bad_item_in_list(tmp_path):
    err = error_for(tmp_path, "extra_headers_to_log:\n- Span-Id\n- {a: b}\n")
    assert (err.key, err.line, err.column) == ("extra_headers_to_log[1]", 3, 3)


def test_bad_algorithm(tmp_path):
    err = error_for(tmp_path, "balancing_algorithm: random\n")
    assert str(err).endswith(':1:1: balancing_algorithm: expected round-robin or least-connection, got "random"')


@pytest.mark.parametrize(
    ("text", "key", "message"),
    [
        ("port: 0\n", "port", "must be between 1 and 65535, got 0"),
        ("port: 70000\n", "port", "must be between 1 and 65535, got 70000"),
        ("status:\n  port: -1\n", "status.port", "must be between 0 and 65535, got -1"),
        ("status:\n  routes:\n    port: 65536\n", "status.routes.port", "must be between 0 and 65535, got 65536"),
        ("ssl_port: 99999\n", "ssl_port", "must be between 0 and 65535, got 99999"),
        ("nats:\n  hosts:\n  - hostname: n\n    port: 0\n", "nats.hosts[0].port", "must be between 1 and 65535"),
        ("nats:\n- host: n\n  port: 123456\n", "nats[0].port", "must be between 1 and 65535"),
        ("port: 80.5\n", "port", "expected an integer, got 80.5"),
        ("port: true\n", "port", "expected an integer, got true"),
    ],
)
def test_bad_port(tmp_path, text, key, message):
    err = error_for(tmp_path, text)
    assert err.key == key and message in str(err)
    assert err.line is not None


def test_bad_bool(tmp_path):
    err = error_for(tmp_path, "port: 8081\nsecure_cookies: maybe\n")
    assert str(err).endswith(':2:1: secure_cookies: expected true or false, got "maybe"')


def test_enable_ssl_without_certificates(tmp_path):
    err = error_for(tmp_path, "port: 8081\nenable_ssl: true\n")
    assert err.key == "tls_pem" and err.line == 2
    assert "tls_pem" in str(err) and "enable_ssl: false" in str(err)


def test_tls_pem_entry_missing_key(tmp_path):
    err = error_for(tmp_path, f"enable_ssl: true\ntls_pem:\n- cert_chain: {CERT!r}\n".replace("'", '"'))
    assert err.key == "tls_pem[0].private_key" and err.line == 3


def test_tls_pem_path_instead_of_pem(tmp_path):
    err = error_for(tmp_path, "tls_pem:\n- cert_chain: /etc/cert.pem\n  private_key: /etc/key.pem\n")
    assert err.key == "tls_pem[0].cert_chain" and "not a path" in str(err)


def test_backend_cert_without_key(tmp_path):
    err = error_for(tmp_path, f"backends:\n  cert_chain: {CERT!r}\n".replace("'", '"'))
    assert err.key == "backends.private_key"


def test_nats_host_not_a_mapping(tmp_path):
    err = error_for(tmp_path, "nats:\n  hosts:\n  - 10.0.0.1:4222\n")
    assert err.key == "nats.hosts[0]" and err.line == 3


def test_workers_must_be_positive(tmp_path):
    err = error_for(tmp_path, "workers: 0\n")
    assert err.key == "workers" and "at least 1" in str(err)


def test_missing_file(tmp_path):
    path = tmp_path / "absent.yml"
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}: ") and "not found" in str(info.value)


def test_directory_instead_of_file(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert "directory" in str(info.value)


def test_not_utf8(tmp_path):
    path = tmp_path / "gorouter.yml"
    path.write_bytes(b"port: 8081\nzone: \xff\xfe\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.line == 2 and "UTF-8" in str(info.value)


# --- unknown keys -----------------------------------------------------------------------------------------------


def test_unknown_keys_ignored_recorded_and_logged(tmp_path, caplog):
    caplog.set_level(logging.DEBUG, logger="portico.config")
    cfg = load_config(write(tmp_path, """\
        port: 8081
        oauth:
          token_endpoint: uaa.example.com
        status:
          port: 8080
          tls:
            port: 8443
          routes:
            port: 8082
            extra: 1
        nats:
          hosts:
          - hostname: n1
            port: 4222
            weight: 3
          pool_size: 2
        backends:
          max_attempts: 2
          enable_tls: true
        logging:
          format:
            timestamp: rfc3339
            colour: none
        tracing:
          enable_opentelemetry: true
    """))
    assert cfg.port == 8081 and cfg.backends.max_attempts == 2
    assert set(cfg.ignored_keys) == {
        "oauth", "status.tls", "status.routes.extra", "nats.hosts[0].weight", "nats.pool_size",
        "backends.enable_tls", "logging.format.colour", "tracing.enable_opentelemetry",
    }
    logged = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG)
    assert "ignoring unknown key oauth" in logged and "ignoring unknown key nats.pool_size" in logged


def test_merge_of_a_non_mapping(tmp_path):
    err = error_for(tmp_path, "x: &a [1]\nbackends:\n  <<: *a\n")
    assert err.key == "backends" and "cannot merge" in str(err)


def test_explicit_tag_with_bad_value(tmp_path):
    err = error_for(tmp_path, "index: !!int abc\n")
    assert str(err).endswith(':1:1: index: expected an integer, got "abc"')


def test_duplicate_key_later_wins_with_warning(tmp_path, caplog):
    cfg = load_config(write(tmp_path, "port: 1000\nport: 2000\n"))
    assert cfg.port == 2000
    assert any("given twice" in r.getMessage() for r in caplog.records)


def test_one_nats_address_type_for_urls_and_config():
    from portico.config.values import NatsServer, parse_nats_url

    server = parse_nats_url("tls://u:p%40ss@[::1]:4223")
    assert server == NatsServer("::1", 4223, "u", "p@ss", "tls")
    assert server.url == "tls://[::1]:4223"
    assert parse_nats_url("10.0.0.4") == NatsServer("10.0.0.4", 4222)
    assert NatsServer("h", 1).url_with_credentials("shared", "pw") == "nats://shared:pw@h:1"
    assert "p@ss" not in repr(server)
    for bad in ("http://h:4222", "nats://h:port", "nats://:4222"):
        with pytest.raises(ConfigError) as info:
            parse_nats_url(bad, "nats[0]")
        assert info.value.key == "nats[0]"


def test_metrics_per_route_top(tmp_path):
    assert load_config(write(tmp_path, "port: 8081\n")).metrics.per_route_top == 20
    assert load_config(write(tmp_path, "metrics:\n  per_route_top: 0\n")).metrics.per_route_top == 0
    err = error_for(tmp_path, "metrics:\n  per_route_top: 5000\n")
    assert "metrics.per_route_top" in str(err)


@pytest.mark.parametrize(("section", "what"), [("backends", "backend client TLS"),
                                               ("route_services", "route service client TLS"),
                                               ("nats", "NATS client TLS")])
def test_client_certificate_without_its_key_names_the_missing_key(tmp_path, section, what):
    text = f"{section}:\n  cert_chain: {CERT!r}\n".replace("'", '"')
    err = error_for(tmp_path, text)
    assert err.key == f"{section}.private_key" and f"{what} needs both cert_chain and private_key" in str(err)
