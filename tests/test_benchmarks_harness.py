"""Unit tests of the benchmark harness's pure parts (benchmarks/harness): parsers and the report.

Recorded tool outputs only; nothing here starts a process or measures time.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

from harness import goals, parse, report, workers
from harness.natspub import pub_frame, register_payload

WRK_OUT = """Running 2s test @ http://127.0.0.1:18080/
  1 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   540.31us  220.52us   2.14ms   64.40%
    Req/Sec    70.79k     5.07k   81.57k    70.00%
  Latency Distribution
     50%  519.00us
     75%  727.00us
     90%  834.00us
     99%    0.99ms
  140655 requests in 2.00s, 20.12MB read
Requests/sec:  70248.15
Transfer/sec:     10.05MB
"""

WRK_ERRORS = """Running 10s test @ http://127.0.0.1:9999/
  1 threads and 200 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    12.10ms    3.20ms   1.20s    90.00%
    Req/Sec     8.10k   500.00     9.00k    70.00%
  Latency Distribution
     50%   11.50ms
     75%   13.00ms
     90%   15.00ms
     99%    1.02s
  81234 requests in 10.01s, 11.00MB read
  Socket errors: connect 0, read 12, write 0, timeout 3
  Non-2xx or 3xx responses: 40
Requests/sec:   8115.50
Transfer/sec:      1.10MB
"""

H2LOAD_OUT = """starting benchmark...
spawning thread #0: 20 total client(s). Timing-based test with 1s of warm-up time and 3s of main duration for \
measurements.
Warm-up started for thread #0.
progress: 100% of clients started
Application protocol: http/1.1
Main benchmark duration is over for thread #0. Stopping all clients.
Stopped all clients for thread #0

finished in 4.00s, 2000.00 req/s, 292.97KB/s
requests: 6000 total, 6000 started, 6000 done, 5990 succeeded, 10 failed, 0 errored, 0 timeout
status codes: 5990 2xx, 0 3xx, 10 4xx, 0 5xx
traffic: 878.91KB (900000) total, 843.75KB (864000) headers (space savings 0.00%), 23.44KB (24000) data
                     min         max         mean         sd        +/- sd
time for request:      398us      2.23ms       824us       160us    78.25%
"""

H2LOAD_LOG = "1795627774485479\t200\t1042\n1795627774486479\t200\t500\n1795627774487479\t404\t300\n" \
             "1795627774488479\t200\t2000\n"

PROC_STAT = ("4242 (python -m (x)) S 4200 4242 4242 0 -1 4194560 20000 0 0 0 1234 567 0 0 20 0 3 0 "
             "98765 300000000 12345 18446744073709551615 1 1 0 0 0 0 0 16781312 16386 0 0 0 17 1 0 0 0 0 0")


def test_parse_wrk_latency_and_rate():
    res = parse.parse_wrk(WRK_OUT)
    assert res.requests == 140655
    assert res.rps == pytest.approx(70248.15)
    assert res.duration_s == pytest.approx(2.0)
    assert res.latency_p50_s == pytest.approx(519e-6)
    assert res.latency_p99_s == pytest.approx(0.99e-3)
    assert res.latency_max_s == pytest.approx(2.14e-3)
    assert res.errors == 0


def test_parse_wrk_errors_and_seconds():
    res = parse.parse_wrk(WRK_ERRORS)
    assert res.non_2xx == 40
    assert res.socket_errors == {"connect": 0, "read": 12, "write": 0, "timeout": 3}
    assert res.errors == 55
    assert res.latency_p99_s == pytest.approx(1.02)
    assert res.latency_max_s == pytest.approx(1.2)


def test_parse_wrk_rejects_garbage():
    with pytest.raises(ValueError):
        parse.parse_wrk("unable to connect to 127.0.0.1:1 Connection refused")


def test_durations_and_si():
    assert parse.duration_to_seconds("1.5ms") == pytest.approx(0.0015)
    assert parse.duration_to_seconds("2.00m") == 120
    assert parse.si_number("70.79k") == pytest.approx(70790)


def test_parse_h2load_summary():
    s = parse.parse_h2load(H2LOAD_OUT)
    assert (s.total, s.succeeded, s.failed, s.status_2xx, s.status_4xx) == (6000, 5990, 10, 5990, 10)
    assert s.rps == pytest.approx(2000.0)
    assert s.finished_s == pytest.approx(4.0)
    with pytest.raises(ValueError):
        parse.parse_h2load("starting benchmark...\n")


def test_parse_h2load_log_and_percentiles():
    log = parse.parse_h2load_log(H2LOAD_LOG + "garbage line\n")
    assert log.count == 4
    assert log.errors == 1
    assert log.ok_latencies_s() == pytest.approx([0.001042, 0.0005, 0.002])
    assert log.span_s == pytest.approx(0.003)
    assert parse.percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 50) == 5
    assert parse.percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 99) == 10
    assert parse.percentile([], 99) is None
    assert parse.median([3, 1, 2]) == 2
    assert parse.median([4, 1, 2, 3]) == 2.5


def test_parse_proc_stat_with_odd_comm():
    st = parse.parse_proc_stat(PROC_STAT)
    assert st.pid == 4242
    assert st.comm == "python -m (x)"
    assert st.state == "S"
    assert st.ppid == 4200
    assert (st.utime_ticks, st.stime_ticks, st.cpu_ticks) == (1234, 567, 1801)
    assert st.num_threads == 3
    assert st.rss_pages == 12345


def test_parse_vmrss_and_cpu_busy():
    assert parse.parse_vmrss_kb("Name:\tpython\nVmPeak:\t 9 kB\nVmRSS:\t  51234 kB\n") == 51234
    assert parse.parse_vmrss_kb("Name:\tzombie\n") == 0
    stat = "cpu  100 5 50 1000 7 3 2 1 0 0\ncpu0 50 2 25 500 3 1 1 0 0 0\n"
    assert parse.parse_cpu_busy_ticks(stat) == 155


def test_varz_registration_counter_found_anywhere():
    assert parse.parse_varz_registrations({"registry_message_count": 12}) == 12
    assert parse.parse_varz_registrations({"metrics": {"registrations": {"router.register": 7}}}) == 7
    assert parse.parse_varz_registrations({"uptime": 3}) is None


def test_nats_frames():
    payload = register_payload("127.0.0.1", 8080, ["a.com"])
    assert payload == b'{"host":"127.0.0.1","port":8080,"uris":["a.com"]}'
    assert pub_frame("router.register", payload) == b"PUB router.register %d\r\n%s\r\n" % (len(payload), payload)


def _results() -> dict:
    closed = [
        {"target": "nginx", "connections": 50, "rps": 30000.0, "p50_ms": 1.2, "p99_ms": 3.0, "cpu_us_per_req": 30.0,
         "proxy_cpu_util": 0.9, "foreign_cpu_util": 0.0, "errors": 0, "rss_kb": 4096},
        {"target": "haproxy", "connections": 50, "rps": 35000.0, "p50_ms": 1.1, "p99_ms": 2.5,
         "cpu_us_per_req": 28.0, "proxy_cpu_util": 0.99, "foreign_cpu_util": 0.0, "errors": 0, "rss_kb": 8192},
        {"target": "portico", "connections": 50, "rps": 12000.0, "p50_ms": 4.0, "p99_ms": 8.0,
         "cpu_us_per_req": 80.0, "proxy_cpu_util": 1.0, "foreign_cpu_util": 0.05, "errors": 0, "rss_kb": 40960},
    ]
    return {
        "meta": {"started": "2026-01-01 00:00 UTC", "mode": "full", "elapsed_s": 600, "machine": {"cores": "2"},
                 "versions": {"wrk": "4.1.0"}, "missing": ["h2load not found; install it with: apt-get install -y "
                                                           "nghttp2-client"], "method": ["closed loop"]},
        "closed": closed,
        "open": [{"target": "portico", "rate": 15000.0, "fraction": 0.5, "connections": 19, "duration_s": 8,
                  "achieved_rps": 11000.0, "count": 88000, "errors": 0, "p50_ms": 40.0, "p90_ms": 80.0,
                  "p99_ms": 120.0, "p999_ms": 150.0, "max_ms": 200.0, "sustained": False}],
        "open_basis": {"name": "nginx", "peak_rps": 30000.0},
        "route_scale": [
            {"routes": 1, "rps": 10000.0, "p99_ms": 9.0, "cpu_us_per_req": 90.0, "rss_kb": 40000,
             "register_s": None, "sample_failures": 0, "ratio_to_1": 1.0, "bytes_per_route": None},
            {"routes": 100000, "rps": 9700.0, "p99_ms": 9.5, "cpu_us_per_req": 92.0, "rss_kb": 90000,
             "register_s": 2.5, "sample_failures": 0, "ratio_to_1": 0.97, "bytes_per_route": 512.0},
        ],
        "ingest": {"messages": 100000, "publish_s": 0.2, "applied_s": 0.8, "msgs_per_s": 125000.0,
                   "publisher_msgs_per_s": 500000.0, "routes_seen": 100000, "varz_registrations": None,
                   "latency_samples": 200, "routable_p50_ms": 0.5, "routable_p99_ms": 1.7, "routable_max_ms": 3.0,
                   "routable_timeouts": 0, "notes": []},
        "workers": [{"workers": 1, "processes": 1, "rps": 10000.0, "scaling": 1.0, "p99_ms": 9.0,
                     "cpu_us_per_req": 90.0, "proxy_cpu_util": 1.0, "errors": 0, "connection_check_failures": 0,
                     "routes_endpoint_ok": True}],
        "errors": {}, "notes": ["a note"],
    }


def test_targets_evaluated():
    rows = {r["name"]: r for r in report.evaluate_targets(_results())}
    thr = rows["Throughput vs nginx (50 connections, 1 worker, access log on)"]
    assert thr["met"] is False and thr["value"].startswith("0.40x")
    cpu = rows["CPU per request vs nginx (50 connections)"]
    assert cpu["met"] is False and cpu["value"].startswith("2.67x (80.0 vs 30.0 us)")
    half = rows["Open loop at half of nginx's peak: sustained, p99"]
    assert half["met"] is False and "not sustained" in half["value"]
    assert rows["Throughput with 100,000 routes vs 1 route"]["met"] is True
    assert rows["Resident memory per route (100,000 routes)"]["met"] is True          # 512 B <= 600 B
    assert rows["Registration ingest"]["met"] is False                                 # 125k < 300k msg/s
    assert rows["Publish-to-routable p99"]["met"] is False
    assert rows["1,000,000 routes: applied"]["met"] is None                           # not in this run


MILLION = {"routes": 1_000_000, "baseline_rps": 10_000.0, "baseline_cpu_us": 90.0, "applied_s": 8.5,
           "applied_msgs_per_s": 117_647.0, "rss_kb_one_route": 70_000, "rss_kb_applied": 700_000,
           "bytes_per_route": 645.0, "sample_failures": 0, "rps": 9_300.0, "p99_ms": 9.0, "cpu_us_per_req": 95.0,
           "ratio_to_1": 0.93, "rss_kb_after_load": 900_000, "routes_status": 200, "routes_first_byte_s": 0.05,
           "routes_s": 6.0, "routes_bytes": 260_000_000, "routes_listed": 1_000_000,
           "routes_rss_peak_kb": 1_100_000, "notes": []}


def test_million_route_goals_and_section():
    res = {**_results(), "million": MILLION}
    rows = {r["name"]: r for r in report.evaluate_targets(res)}
    assert rows["1,000,000 routes: applied"]["met"] is True
    assert rows["1,000,000 routes: router RSS"]["met"] is False           # the peak while /routes streamed
    assert "1074 MiB at most" in rows["1,000,000 routes: router RSS"]["value"]
    assert rows["1,000,000 routes: throughput vs 1 route"]["met"] is True
    assert rows["1,000,000 routes: /routes answers (streamed)"]["met"] is True
    short = {**MILLION, "routes_listed": 999_000}
    rows = {r["name"]: r for r in report.evaluate_targets({**res, "million": short})}
    assert rows["1,000,000 routes: /routes answers (streamed)"]["met"] is False
    md = report.render_markdown(res)
    assert "## 1,000,000 routes (Portico" in md and "| GET /routes | 200: 1,000,000 routes, 260 MB" in md


def test_targets_not_measured_without_data():
    rows = report.evaluate_targets({"closed": []})
    assert all(r["met"] is None for r in rows)


def test_markdown_has_tables_ratios_and_missing_tools():
    md = report.render_markdown(_results())
    assert md.startswith("# Portico benchmarks")
    assert "apt-get install -y nghttp2-client" in md
    assert "| target | goal | measured | result |" in md
    assert "| 50 | 0.40x | 0.34x | 2.67x | 2.86x |" in md
    assert "| peak | 0.40x | 0.34x | | |" in md
    assert "| 100,000 | 9,700 | - | 0.97 |" in md
    assert "**ingest rate** | **125,000 msg/s**" in md
    assert "**no**" in md  # the open-loop run that did not hold its rate
    assert "- a note" in md


RENDERED_CFG = """global
    server-state-file /tmp/x/haproxy.cfg.state
    hard-stop-after 30s
    nbthread 1
    log fd@3 format raw local0

defaults
    mode http
    log global
    option httplog
    load-server-state-from-file global
    default-server init-addr last,libc,none observe layer4 error-limit 3 on-error mark-down

frontend portico_http
    bind 127.0.0.1:8080
    default_backend portico_routers

backend portico_routers
    balance roundrobin
    option httpchk GET /health
    server 1-abc 127.0.0.1:8100 check port 8101 inter 1s fall 2 rise 1
    server 2-def 127.0.0.1:8110 check port 8111 inter 1s fall 2 rise 1

listen portico_stats
    bind 127.0.0.1:8098
    stats enable
    stats uri /
"""


def test_whole_stack_direct_haproxy_is_portico_ups_config_in_front_of_the_app():
    from harness.stack import haproxy_in_front_of

    cfg, front = haproxy_in_front_of(RENDERED_CFG, 9999)
    assert f"    bind 127.0.0.1:{front}\n" in cfg and ":8080" not in cfg
    assert "    server app 127.0.0.1:9999\n" in cfg
    assert "8100" not in cfg and "8110" not in cfg and "portico_stats" not in cfg and "server-state" not in cfg
    for kept in ("    nbthread 1\n", "    log fd@3 format raw local0\n", "    option httplog\n",
                 "    default-server init-addr last,libc,none observe layer4"):
        assert kept in cfg


def test_whole_stack_rows_are_rendered_in_their_own_section():
    rows = [{"target": "HAProxy -> app", "connections": 50, "rps": 20000.0, "p50_ms": 2.0, "p99_ms": 4.0,
             "cpu_us_per_req": 40.0, "proxy_cpu_util": 0.8, "foreign_cpu_util": 0.0, "errors": 0},
            {"target": "HAProxy -> 2 routers -> app", "connections": 50, "rps": 9000.0, "p50_ms": 5.0,
             "p99_ms": 9.0, "cpu_us_per_req": 180.0, "proxy_cpu_util": 1.6, "foreign_cpu_util": 0.12, "errors": 0}]
    text = "\n".join(report.whole_stack_section(rows))
    assert "## Whole stack" in text
    assert "| HAProxy -> 2 routers -> app | 50 | 9,000 | 5.00 | 9.00 | 180.0 | 1.60 | 0.12 | 0 |" in text
    assert report.whole_stack_section([]) == []


async def test_dashboard_viewers_hold_real_event_streams():
    """--dashboard-cost's open dashboards: real SSE streams on a real status server, events counted."""
    import asyncio

    from harness.dashboard import DashboardViewers

    from portico.config.settings import RouterConfig, StatusSettings
    from portico.routes import RouteTable
    from portico.stack.processes import free_port
    from portico.state import RouterState
    from portico.status import StatusServer

    routes_port = free_port()
    config = RouterConfig(status=StatusSettings(host="127.0.0.1", port=free_port(), user="admin", password="admin",
                                                routes_port=routes_port))
    server = StatusServer(config, RouteTable(), RouterState())
    await server.start()
    try:
        viewers = DashboardViewers(routes_port, count=2)
        with viewers:
            deadline = asyncio.get_running_loop().time() + 15
            while viewers.events < 4 and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.1)
        assert viewers.events >= 4  # two streams, the first event at once and one a second after
    finally:
        await server.stop()


def _with_pure(res: dict) -> dict:
    res["closed"].append({"target": "portico (pure)", "connections": 50, "rps": 8000.0, "p50_ms": 6.0,
                          "p99_ms": 12.0, "cpu_us_per_req": 120.0, "proxy_cpu_util": 1.0, "foreign_cpu_util": 0.0,
                          "errors": 0, "rss_kb": 40960})
    res["implementations"] = {
        "portico": {"implementation": "compiled", "compiled_modules": ["portico.proxy.headers"], "reason": ""},
        "portico (pure)": {"implementation": "pure", "compiled_modules": [],
                           "reason": "PORTICO_PURE_PYTHON=1 forces the pure modules"}}
    return res


def test_hot_path_goals_met_when_portico_is_close_to_nginx():
    res = _with_pure(_results())
    res["closed"][2].update(rps=25000.0, cpu_us_per_req=36.0)        # 0.83x nginx, 1.2x its CPU
    res["open"][0].update(sustained=True, p99_ms=1.5, achieved_rps=15000.0)
    rows = {r["name"]: r for r in goals.hot_path_targets(res)}
    assert [r["met"] for r in rows.values()] == [True, True, True]
    assert rows["CPU per request vs nginx (50 connections)"]["value"].startswith("1.20x")


def test_a_compiled_target_that_ran_pure_says_so():
    res = _with_pure(_results())
    res["implementations"]["portico"] = {"implementation": "pure", "reason": "no compiled modules built"}
    row = goals.hot_path_targets(res)[0]
    assert "portico (pure: nothing compiled - no compiled modules built)" in row["value"]


def test_hot_path_section_puts_nginx_compiled_and_pure_side_by_side():
    md = report.render_markdown(_with_pure(_results()))
    assert "## Compiled hot path (issue 13)" in md
    assert "| nginx | - | 30,000 | 1.00x | 30.0 | 1.00x |" in md
    assert "| portico | compiled (1 modules) | 12,000 | 0.40x | 80.0 | 2.67x | 8.00 | 120.00 ms (not sustained) |" in md
    assert "| portico (pure) | pure Python | 8,000 | 0.27x | 120.0 | 4.00x |" in md
    assert "Compiled against pure: 1.50x the requests/s, 0.67x the CPU per request." in md


def test_worker_pinning_follows_the_cores():
    router, load, how = workers.worker_cpus(4, True)
    assert router == {2, 3} and load == {0, 1} and "a core per worker" in how
    assert workers.worker_cpus(2, True)[:2] == (None, None)
    assert "2 cores" in workers.worker_cpus(2, True)[2]
    assert "pinning disabled" in workers.worker_cpus(8, False)[2]


def test_workers_table_and_note():
    res = _results()
    step = dict(res["workers"][0])
    res["workers"] = {"pinning": "unpinned (2 cores): shared", "pinned": False,
                      "steps": [step, {**step, "workers": 2, "processes": 2, "rps": 15000.0, "scaling": 1.5}]}
    md = report.render_markdown(res)
    assert "| 2 | 2 | 15,000 | 1.50 |" in md
    assert "Pinning: unpinned (2 cores): shared. 2 workers gave 1.50x the requests/s of 1 on a shared machine." in md


def test_the_hand_written_profile_notes_follow_the_figures():
    md = report.render_markdown(_results())
    notes = (Path(report.__file__).resolve().parent.parent / "where-the-time-goes.md").read_text().strip()
    assert "## Where the time goes (profiles)" in md
    assert md.index("## Where the time goes (profiles)") > md.index("## Targets")
    assert notes in md


def test_publish_to_routable_explains_itself_with_the_floor_and_gc_pauses():
    res = _results()
    res["ingest"] = {**res["ingest"], "latency_samples": 1000, "routable_p99_ms": 5.7, "request_p50_ms": 0.17,
                     "request_p99_ms": 2.56, "not_found_p50_ms": 0.1, "not_found_p99_ms": 0.24,
                     "routable_polls_p99": 3, "gc_pauses_in_window": 2, "gc_pause_max_ms": 1.25,
                     "slow_samples_with_gc": 1}
    md = report.render_markdown(res)
    assert "| same loop: a proxied request to a routable host, p50 / p99 | 0.170 / 2.560 ms |" in md
    assert "| router GC pauses >= 0.5 ms during the samples | 2 (longest 1.25 ms; 1 of the slowest 1%" in md
    row = {r["name"]: r for r in report.evaluate_targets(res)}["Publish-to-routable p99"]
    assert row["met"] is False and row["value"] == "5.700 ms (1,000 samples; a proxied request alone: p99 2.560 ms)"


def test_publish_to_routable_is_split_into_publish_to_applied_and_the_first_answer():
    res = _results()
    res["ingest"] = {**res["ingest"], "latency_samples": 1000, "routable_p99_ms": 3.1, "request_p99_ms": 1.5,
                     "applied_p50_ms": 0.31, "applied_p99_ms": 0.62, "first_request_p50_ms": 0.2,
                     "first_request_p99_ms": 2.4}
    md = report.render_markdown(res)
    assert ("| of which publish -> applied, p50 / p99 (until the request that found the route was sent) | "
            "0.310 / 0.620 ms |") in md
    assert "| of which applied -> first proxied answer, p50 / p99 (that request's own time) | 0.200 / 2.400 ms |" in md
    row = {r["name"]: r for r in report.evaluate_targets(res)}["Publish-to-routable p99"]
    assert row["value"] == ("3.100 ms (1,000 samples; publish -> applied p99 0.620 ms, applied -> first answer p99 "
                            "2.400 ms; a proxied request alone: p99 1.500 ms)")


def test_big_table_ratios_come_from_alternating_runs_on_one_router():
    pairs = [(10_000.0, 9_000.0), (6_000.0, 5_700.0), (12_000.0, 11_000.0)]
    m = {**MILLION, "baseline_rps": 4_670.0, "one_route_rps": 10_000.0, "rps": 9_000.0, "ratio_to_1": 0.917,
         "pair_ratios": [b / a for a, b in pairs], "ratio_to_baseline": 9_000.0 / 4_670.0}
    rows = {r["name"]: r for r in report.evaluate_targets({**_results(), "million": m})}
    row = rows["1,000,000 routes: throughput vs 1 route"]
    assert row["met"] is True and row["value"].startswith("0.92x (9,000 vs 10,000 req/s, alternating on one router")
    assert "before loading: 4,670 req/s" in row["value"]
    md = report.render_markdown({**_results(), "million": m})
    assert ("| 1 route, alternating with those runs: req/s, CPU us/req; ratio of each pair | "
            "10,000, -; 0.90, 0.95, 0.92 |") in md


def test_paired_runs_take_the_median_of_neighbouring_ratios(monkeypatch):
    from harness import paired
    from harness.load import ClosedResult, ClosedRun

    figures = iter([10_000.0, 9_000.0, 6_000.0, 5_700.0, 12_000.0, 11_000.0])
    seen = []

    def fake_closed_loop(wrk, target, connections, duration, warmup, runs, cpus, script=None, script_args=None,
                         log=print):
        seen.append((script_args, warmup))
        res = ClosedResult("portico", connections)
        res.runs = [ClosedRun(next(figures), 1000, 0, 1.0, 2.0, 50.0, 1.0, 0.0)]
        return res

    monkeypatch.setattr(paired, "closed_loop", fake_closed_loop)
    out = paired.paired_runs("wrk", object(), 1_000_000, 50, 8, 2, 3, None, "x.lua", log=lambda *_: None)
    assert [a for a, _ in seen] == [["1"], ["1000000"]] * 3
    assert [w for _, w in seen] == [2, 1.0, 1.0, 1.0, 1.0, 1.0]
    assert out.one_rps == 10_000.0 and out.n_rps == 9_000.0
    assert round(out.ratio, 3) == 0.917    # the pairs give 0.90, 0.95, 0.917: their median, not 9,000 / 10,000
