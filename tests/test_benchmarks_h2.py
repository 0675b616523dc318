"""Unit tests of the benchmark harness's HTTP/2 part (benchmarks/harness/h2.py): parsers, configs, report.

Recorded h2load output only; nothing here starts a process or measures time.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

from harness import h2, parse, report

H2LOAD_H2C = """starting benchmark...
spawning thread #0: 10 total client(s). Timing-based test with 0s of warm-up time and 3s of main duration for
measurements.
Warm-up phase is over for thread #0.
Main benchmark duration is started for thread #0.
progress: 10% of clients started
Application protocol: h2c
Main benchmark duration is over for thread #0. Stopping all clients.
Stopped all clients for thread #0

finished in 3.00s, 22166.33 req/s, 1.10MB/s
requests: 66499 total, 66599 started, 66499 done, 66499 succeeded, 0 failed, 0 errored, 0 timeout
status codes: 66499 2xx, 0 3xx, 0 4xx, 0 5xx
traffic: 3.29MB (3452348) total, 1.20MB (1258910) headers (space savings 93.67%), 194.82KB (199497) data
                     min         max         mean         sd        +/- sd
time for request:      281us     31.29ms      4.41ms      1.86ms    73.22%
time for connect:      102us       452us       210us        98us    80.00%
time to 1st byte:     1.02ms      4.50ms      2.10ms       1.01ms    70.00%
req/s           :    2101.11     2301.45     2216.63       60.02    70.00%
"""

H2LOAD_NO_H2 = """starting benchmark...
spawning thread #0: 10 total client(s). Timing-based test with 0s of warm-up time and 1s of main duration for
measurements.
No protocol negotiated. Aborted.
"""


def test_parses_protocol_mean_latency_and_summary():
    assert h2.parse_protocol(H2LOAD_H2C) == "h2c"
    assert h2.parse_protocol(H2LOAD_NO_H2) is None
    assert h2.parse_mean_request_ms(H2LOAD_H2C) == pytest.approx(4.41)
    assert h2.parse_mean_request_ms(H2LOAD_H2C.replace("4.41ms", "812.50us")) == pytest.approx(0.8125)
    summary = parse.parse_h2load(H2LOAD_H2C)
    assert summary.rps == pytest.approx(22166.33) and summary.status_2xx == 66499


def test_h2load_puts_the_route_in_authority_never_in_a_second_host_header():
    argv = h2.h2load_argv("/usr/bin/h2load", 8443, "tls", "bench.local", 50, 10, 3, None)
    assert argv[-1] == "https://127.0.0.1:8443/"
    assert ":authority: bench.local" in argv and not [a for a in argv if a.lower().startswith("host:")]
    assert argv[argv.index("-c") + 1] == "50" and argv[argv.index("-m") + 1] == "10"
    assert h2.h2load_argv("h2load", 9999, "h2c", "bench.local", 10, 1, 3, None)[-1] == "http://127.0.0.1:9999/"


def test_listener_configs_speak_h2_on_tls_and_in_clear_text(tmp_path):
    tls = h2.H2Listeners(tmp_path).tls
    assert b"BEGIN CERTIFICATE" in tls.cert.read_bytes() and b"PRIVATE KEY" in tls.key.read_bytes()
    assert tls.combined.read_bytes() == tls.cert.read_bytes() + tls.key.read_bytes()
    nginx = h2.nginx_listen_lines(1001, 1002, tls)
    assert "listen 127.0.0.1:1001 ssl http2" in nginx and "listen 127.0.0.1:1002 http2" in nginx
    haproxy = h2.haproxy_bind_lines(1001, 1002, tls)
    assert "bind 127.0.0.1:1001 ssl crt" in haproxy and "alpn h2,http/1.1" in haproxy
    assert "bind 127.0.0.1:1002 proto h2" in haproxy
    portico = h2.portico_tls_lines(1003, tls)
    assert "enable_ssl: true" in portico and "ssl_port: 1003" in portico and "enable_http2: true" in portico
    # Portico reads the file: tls_pem holds the PEM texts themselves
    import yaml

    from portico.config.loader import load_config

    config = tmp_path / "portico.yml"
    config.write_text(f"port: 18080\nstatus:\n  port: 18082\n{portico}")
    loaded = load_config(str(config))
    assert loaded.enable_ssl and loaded.ssl_port == 1003
    assert yaml.safe_load(portico)["tls_pem"][0]["cert_chain"].strip() == tls.cert.read_text().strip()


def _row(target, transport, c, m, rps, cpu=20.0):
    return {"target": target, "transport": transport, "connections": c, "streams": m, "rps": rps,
            "mean_ms": 1.0, "cpu_us_per_req": cpu, "proxy_cpu_util": 0.9, "foreign_cpu_util": 0.0, "errors": 0}


def test_goal_is_portico_best_against_nginx_best_per_transport():
    res = {"h2": [_row("nginx", "tls", 10, 10, 30000), _row("nginx", "tls", 50, 10, 40000),
                  _row("portico", "tls", 10, 10, 25000), _row("portico", "tls", 50, 10, 20000),
                  _row("nginx", "h2c", 10, 10, 50000), _row("portico", "h2c", 10, 10, 20000)]}
    rows = {r["name"]: r for r in h2.h2_targets(res)}
    tls = rows["HTTP/2 throughput vs nginx (TLS, ALPN h2, best point)"]
    assert tls["met"] is True and tls["value"].startswith("0.62x")
    h2c = rows["HTTP/2 throughput vs nginx (cleartext, prior knowledge, best point)"]
    assert h2c["met"] is False and h2c["value"].startswith("0.40x")
    assert all(r["met"] is None for r in h2.h2_targets({"h2": [_row("nginx", "tls", 10, 10, 1)]}))


def test_markdown_has_the_http2_table_with_ratios_and_the_goal():
    res = {"meta": {}, "closed": [], "notes": [],
           "h2": [_row("nginx", "tls", 10, 10, 30000), _row("haproxy", "tls", 10, 10, 33000),
                  _row("portico", "tls", 10, 10, 15000)]}
    text = report.render_markdown(res)
    assert "## HTTP/2 (h2load)" in text
    assert "| portico | tls | 10 | 10 | 15,000 | 0.50x |" in text
    assert "| haproxy | tls | 10 | 10 | 33,000 | 1.10x |" in text
    assert "HTTP/2 throughput vs nginx (TLS, ALPN h2, best point) | >= 0.60x nginx | 0.50x" in text
    assert "## HTTP/2" not in report.render_markdown({"meta": {}, "closed": [], "notes": []})
