"""The harness's CPU-steal accounting (benchmarks/harness/steal.py) and how the report shows it.

Recorded /proc/stat text and result dicts only; nothing here starts a process or measures time.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

from harness import goals, report
from harness.steal import parse_steal, steal_fraction

BEFORE = ("cpu  1000 10 500 8000 20 0 30 100 0 0\n"
          "cpu0 600 5 200 4000 10 0 20 90 0 0\n"
          "cpu1 400 5 300 4000 10 0 10 10 0 0\n"
          "intr 123 4 5\n")
AFTER = ("cpu  1400 10 700 8500 20 0 40 430 0 0\n"      # +1440 ticks, 330 of them stolen
         "cpu0 700 5 250 4400 10 0 25 110 0 0\n"          # +575 ticks, 20 stolen
         "cpu1 700 5 450 4100 10 0 15 320 0 0\n")         # +865 ticks, 310 stolen


def test_steal_is_the_eighth_column_per_cpu_line():
    s = parse_steal(BEFORE)
    assert s == {"cpu": (100, 9660), "cpu0": (90, 4925), "cpu1": (10, 4735)}


def test_steal_fraction_over_the_proxys_cpus_or_all():
    before, after = parse_steal(BEFORE), parse_steal(AFTER)
    assert steal_fraction(before, after, {1}) == pytest.approx(310 / 865)
    assert steal_fraction(before, after, {0}) == pytest.approx(20 / 575)
    assert steal_fraction(before, after, None) == pytest.approx(330 / 1440)
    assert steal_fraction(before, after, {0, 1}) == pytest.approx(330 / 1440)
    assert steal_fraction(before, after, {7}) is None          # a CPU the machine does not have
    assert steal_fraction(None, after, {1}) is None


def test_a_proc_stat_without_steal_is_an_error():
    with pytest.raises(ValueError):
        parse_steal("cpu  1 2 3 4\n")
    with pytest.raises(ValueError):
        parse_steal("intr 1 2\n")


def _open(target: str, p99: float, steal: float, tries: list, foreign: float = 0.02) -> dict:
    return {"target": target, "rate": 20000.0, "fraction": 0.5, "connections": 24, "duration_s": 8,
            "achieved_rps": 20000.0, "count": 160000, "errors": 0, "p50_ms": 0.5, "p90_ms": 0.8,
            "p99_ms": p99, "p999_ms": p99 * 2, "max_ms": 40.0, "sustained": True,
            "steal": steal, "foreign_cpu_util": foreign, "tries": tries}


def _results(portico_p99: float, steal: float) -> dict:
    return {"meta": {"method": []}, "closed": [], "open_basis": {"name": "nginx", "peak_rps": 40000.0},
            "open": [_open("nginx", 9.5, 0.31, [(0.40, 0.0, 12.0), (0.35, 0.01, 10.0), (0.31, 0.02, 9.5)]),
                     _open("portico", portico_p99, steal, [(0.45, 0.5, 30.0), (steal, 0.02, portico_p99)])],
            "errors": {}, "notes": []}


def _open_goal(res: dict) -> dict:
    return next(r for r in goals.hot_path_targets(res) if r["name"].startswith("Open loop"))


def test_a_tail_under_steal_is_not_met_and_says_whose_it_is():
    row = _open_goal(_results(8.0, 0.30))
    assert row["met"] is False
    assert "steal on the proxy's CPU 30%, foreign 0.02 cores in the least disturbed of 2 tries" in row["value"]
    assert "nginx at the same rate: p99 9.50 ms, steal 31%" in row["value"]


def test_a_quiet_run_within_the_goal_is_met_without_a_warning():
    row = _open_goal(_results(1.4, 0.02))
    assert row["met"] is True
    assert "steal on the proxy's CPU 2%, foreign 0.02 cores;" in row["value"]
    assert "least disturbed" not in row["value"]


def test_open_loop_table_shows_steal_and_every_try():
    md = report.render_markdown(_results(1.4, 0.02))
    assert "| steal | foreign cores | tries: steal, foreign, p99 ms |" in md
    assert "| yes | 31% | 0.02 | 40%, 0.00, 12.00; 35%, 0.01, 10.00; 31%, 0.02, 9.50 |" in md
    assert "| yes | 2% | 0.02 | 45%, 0.50, 30.00; 2%, 0.02, 1.40 |" in md


def test_other_processes_on_the_machine_also_mark_the_tail_as_the_hosts():
    res = _results(8.0, 0.01)
    res["open"][1]["foreign_cpu_util"] = 0.6
    row = _open_goal(res)
    assert row["met"] is False and "foreign 0.60 cores in the least disturbed of 2 tries" in row["value"]


def test_ingest_table_shows_the_nats_hop_and_the_hosts_share():
    res = _results(1.4, 0.02)
    res["ingest"] = {"messages": 1000, "publisher_msgs_per_s": 5e5, "publish_s": 0.002, "applied_s": 0.004,
                     "msgs_per_s": 250000.0, "latency_samples": 10, "routable_p50_ms": 0.9, "routable_p99_ms": 3.0,
                     "routable_max_ms": 6.0, "delivered_p50_ms": 0.2, "delivered_p99_ms": 0.333,
                     "after_delivery_p50_ms": 0.7, "after_delivery_p99_ms": 2.708, "steal_router_cpus": 0.015,
                     "steal_all": 0.012, "idle_all": 0.87, "router_cpu_us_per_sample": 784.6,
                     "router_runq_wait_us_per_sample": 3.5, "nats_cpu_us_per_sample": 175.0,
                     "nats_runq_wait_us_per_sample": 279.6}
    md = report.render_markdown(res)
    assert ("| of which publish -> delivered by NATS (a second subscriber's receipt), p50 / p99 | "
            "0.200 / 0.333 ms |") in md
    assert "| of which delivered -> routable, p50 / p99 | 0.700 / 2.708 ms |" in md
    assert "| the host meanwhile: steal on the router's CPU / all CPUs, idle | 2% / 1%, 87% |" in md
    assert "| per sample, on a CPU / waiting for one: router, nats-server | 785 / 4 us, 175 / 280 us |" in md
