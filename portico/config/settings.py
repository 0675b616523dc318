"""Typed router settings, with gorouter's defaults.

The loader (portico.config.loader) turns a gorouter YAML file into these; everything else in Portico reads only
these types. Durations are float seconds. Where gorouter's binary default and a normal BOSH deployment differ,
the comment says which one Portico picked and why.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from portico.config.values import NatsServer, secret


@dataclass(frozen=True, slots=True)
class NatsSettings:
    hosts: tuple[NatsServer, ...] = (NatsServer(),)
    user: str = ""
    password: str = secret()
    tls_enabled: bool = False
    ca_certs: str = ""            # PEM text: CAs that sign the NATS servers' certificates (else system CAs)
    cert_chain: str = ""          # client certificate (PEM) when the servers verify clients
    private_key: str = secret()
    token: str = secret()         # Portico: token authentication (`authorization { token: ... }`)

    def urls(self) -> list[str]:
        """nats:// URLs, credentials (per host, else the shared ones) included."""
        scheme = "tls" if self.tls_enabled else "nats"
        return [h.url_with_credentials(self.user, self.password, scheme) for h in self.hosts]


@dataclass(frozen=True, slots=True)
class StatusSettings:
    host: str = "0.0.0.0"
    port: int = 8080
    user: str = ""
    password: str = secret()
    # Current layout: /routes on its own port (127.0.0.1). None means the older single-port layout, where
    # status.port serves /routes, /varz and /healthz behind basic auth as well as /health.
    routes_port: int | None = 8082


@dataclass(frozen=True, slots=True)
class BackendSettings:
    max_conns: int = 0            # 0: no limit per endpoint
    max_attempts: int = 1         # gorouter's binary default; BOSH runs 3
    cert_chain: str = ""          # client certificate for TLS backends (PEM text)
    private_key: str = secret()
    ca_certs: str = ""            # Portico's older spelling of the top-level ca_certs (PEM text)
    enable_h2c: bool = False      # Portico: HTTP/2 with prior knowledge to plaintext `http2` endpoints


@dataclass(frozen=True, slots=True)
class RouteServiceSettings:
    """gorouter's `route_services` section."""

    # gorouter leaves this 0 when unset, and then answers every route service request 502 unknown_failure;
    # Portico takes the BOSH job's default instead.
    max_attempts: int = 3
    strict_signature_validation: bool = False
    cert_chain: str = ""          # client certificate presented to TLS route services (PEM text)
    private_key: str = secret()


@dataclass(frozen=True, slots=True)
class HttpRewriteSettings:
    """gorouter's `http_rewrite.responses`: response headers removed, and added when the app set none."""

    remove_headers: tuple[str, ...] = ()
    add_headers_if_not_present: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class TlsCertificate:
    cert_chain: str               # PEM text
    private_key: str = secret()   # PEM text


@dataclass(frozen=True, slots=True)
class AccessLogSettings:
    file: str = ""                # empty: no access log


@dataclass(frozen=True, slots=True)
class LoggingSettings:
    file: str = ""
    syslog: str = ""
    level: str = "info"
    timestamp_format: str = "rfc3339"


@dataclass(frozen=True, slots=True)
class TracingSettings:
    enable_zipkin: bool = False
    enable_w3c: bool = False
    w3c_tenant_id: str = ""


@dataclass(frozen=True, slots=True)
class EtcdAnnounceSettings:
    """Where a router announces itself for HAProxy (Portico's own section, not gorouter's)."""

    endpoints: tuple[str, ...] = ()   # empty: do not announce
    prefix: str = "/portico"
    lease_ttl: float = 10.0
    advertise_host: str = "127.0.0.1"
    username: str = ""                # etcd authentication (both or neither)
    password: str = secret()
    ca_certs: str = ""                # PEM: TLS to etcd (https:// endpoints), verified against these CAs
    cert_chain: str = ""              # PEM: client certificate, when etcd verifies clients
    private_key: str = secret()


@dataclass(frozen=True, slots=True)
class RouteSnapshotSettings:
    """Portico's own: keep the route table in a file so a restart does not forget every route."""

    enabled: bool = True
    file: str = ""                # empty: routes-<port>.json in the user's state directory
    interval: float = 30.0        # also written on drain and on stop


@dataclass(frozen=True, slots=True)
class MetricsSettings:
    """Portico's own: how many of the busiest routes get per-route series in /metrics (0: none)."""

    per_route_top: int = 20


@dataclass(frozen=True, slots=True)
class RouterConfig:
    status: StatusSettings = StatusSettings()
    nats: NatsSettings = NatsSettings()
    port: int = 8081
    index: int = 0
    zone: str = ""
    go_max_procs: int = -1
    ip: str = "127.0.0.1"                         # address published in router.start "hosts"
    listen_host: str = "0.0.0.0"                  # where the proxy port listens

    prune_stale_droplets_interval: float = 30.0
    droplet_stale_threshold: float = 120.0
    start_response_delay_interval: float = 5.0
    publish_start_message_interval: float = 0.0   # 0: only on connect and reconnect
    publish_active_apps_interval: float = 0.0
    suspend_pruning_if_nats_unavailable: bool = False

    endpoint_timeout: float = 60.0
    endpoint_dial_timeout: float = 5.0
    frontend_idle_timeout: float = 900.0
    request_header_timeout: float = 60.0          # Portico: a client must finish its request head in time
    # Portico: an HTTP/2 client whose flow-control window stays shut this long is cut off (0: never)
    http2_stall_timeout: float = 60.0
    # Portico: open client connections per worker; past it the worker stops accepting until one closes.
    # 0: derived from the file-descriptor limit (portico.proxy.admission), so descriptors never run out.
    max_client_connections: int = 0
    drain_wait: float = 0.0
    drain_timeout: float = 0.0                    # 0: wait as long as endpoint_timeout

    balancing_algorithm: str = "round-robin"      # or "least-connection"
    balancing_algorithm_az_preference: str = "none"  # or "locally-optimistic": first try this zone's instances
    sticky_sessions_for_auth_negotiate: bool = False  # `Authorization: Negotiate` requests stick to __VCAP_ID__
    empty_pool_timeout: float = 0.0               # with the 503 on: how long a route outlives its last endpoint
    websocket_dial_timeout: float = 0.0           # read for compatibility; gorouter does not use it either
    pid_file: str = ""                            # the router's process id is written here while it runs
    backends: BackendSettings = BackendSettings()
    # gorouter's binary defaults to no backend keep-alive; BOSH deployments enable it. Portico keeps
    # connections to backends alive unless the file says disable_keep_alives: true.
    disable_keep_alives: bool = False
    max_idle_conns_per_host: int = 100            # gorouter binary 2; BOSH-style value, the pool needs it
    max_request_header_bytes: int = 1024 * 1024
    max_request_header_count: int = 100           # gorouter's max_request_headers (its default 0: no limit)
    max_response_headers: int = 0                 # more response header lines than this: 502 (0: no limit)
    max_response_header_bytes: int = 0           # a bigger backend response head: 502 (0: no limit)
    max_uri_bytes: int = 8192                     # Portico: a longer request target is answered 414
    empty_pool_response_code_503: bool = True

    force_forwarded_proto_https: bool = False     # X-Forwarded-Proto: https on every request
    sanitize_forwarded_proto: bool = False        # X-Forwarded-Proto: the listener's scheme, the client's ignored
    hop_by_hop_headers_to_filter: tuple[str, ...] = ()  # named in Connection, but still passed on
    keep_alive_100_continue_requests: bool = False  # else 100-continue requests close the backend connection
    secure_cookies: bool = False
    sticky_session_cookie_names: tuple[str, ...] = ("JSESSIONID",)
    route_services_secret: str = secret()
    route_services_timeout: float = 60.0
    route_services_secret_decrypt_only: str = secret()  # the previous secret, still accepted (rotation)
    route_services_recommend_https: bool = False  # X-CF-Forwarded-Url says https (BOSH default: true)
    route_services_hairpinning: bool = False      # services that are routes of this router go through it
    route_services_hairpinning_allowlist: tuple[str, ...] = ()
    route_services_internal_server_port: int = 7070
    route_services: RouteServiceSettings = RouteServiceSettings()
    http_rewrite: HttpRewriteSettings = HttpRewriteSettings()
    healthcheck_user_agent: str = "HTTP-Monitor/1.1"

    disable_http: bool = False                    # with enable_ssl: no plain listener on `port`
    trace_key: str = ""                           # X-Vcap-Trace with this value: X-Vcap-Router/-Backend answered
    enable_proxy: bool = False                    # a PROXY protocol (v1/v2) header may precede requests
    enable_ssl: bool = False
    enable_http2: bool = True                     # ALPN h2 on ssl_port (else http/1.1 only), as gorouter
    enable_h2c: bool = True                       # Portico: HTTP/2 with prior knowledge on the plain `port`
    http2_max_concurrent_streams: int = 250       # Portico: SETTINGS_MAX_CONCURRENT_STREAMS (Go's default)
    ssl_port: int = 443
    tls_pem: tuple[TlsCertificate, ...] = ()
    tls_cert_dir: str = ""  # Portico's own: *.pem files (chain + key) served by SNI, reloaded on change
    ca_certs: tuple[str, ...] = ()                # PEM texts trusted (with the system CAs) for TLS backends
    skip_ssl_validation: bool = False             # route services' certificates are not verified
    min_tls_version: str = "TLSv1.2"              # TLSv1.0 .. TLSv1.3 (TLS listener and route services)
    cipher_suites: str = ""                       # OpenSSL list (converted from gorouter's); "": OpenSSL's
    client_cert_validation: str = "none"          # none, request or require (gorouter: must be given)
    client_ca_certs: str = ""                     # PEM texts trusted for client certificates
    only_trust_client_ca_certs: bool = False      # else the system CAs are trusted for them too
    forwarded_client_cert: str = "always_forward" # or forward, sanitize_set (X-Forwarded-Client-Cert)
    tls_handshake_timeout: float = 10.0           # TLS handshakes with backends
    max_tls_version: str = "TLSv1.2"              # TLSv1.2 or TLSv1.3

    extra_headers_to_log: tuple[str, ...] = ()
    access_log: AccessLogSettings = AccessLogSettings()
    logging: LoggingSettings = LoggingSettings()
    tracing: TracingSettings = TracingSettings()
    etcd: EtcdAnnounceSettings = EtcdAnnounceSettings()
    route_snapshot: RouteSnapshotSettings = RouteSnapshotSettings()
    metrics: MetricsSettings = MetricsSettings()

    workers: int = 1                              # Portico: processes sharing the proxy port
    huge_pages: bool = True                       # Portico: a big table's heap on 2 MiB pages (huge_pages.py)
    source_path: str = ""                         # the file this came from, for messages
    ignored_keys: tuple[str, ...] = field(default=())
