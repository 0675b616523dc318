"""The harness's publish-to-routable step: the twin NATS subscriber that splits the chain at delivery, the host's
share (steal, idle, run-queue wait), and the whole step against a real nats-server and a real router."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

from bench_router import bench_router
from harness import report
from harness.hostshare import idle_share, parse_idle_ticks, pids_listening_as, sched_ns
from harness.natspub import NatsPublisher, register_payload
from harness.natssub import NatsSubscriber
from harness.scale import REGISTER, HostFloor, IngestResult, publish_to_routable

from portico.stack.servers import start_nats


@pytest.fixture
def nats(tmp_path):
    server = start_nats(workdir=tmp_path / "nats")
    yield server
    server.stop()


def test_the_twin_subscriber_waits_for_the_message_it_names(nats) -> None:
    twin = NatsSubscriber("127.0.0.1", nats.port, REGISTER)
    pub = NatsPublisher("127.0.0.1", nats.port)
    try:
        pub.publish(REGISTER, register_payload("127.0.0.1", 9, ["other.example"]))
        pub.publish("router.unregister", register_payload("127.0.0.1", 9, ["wanted.example"]))  # not subscribed
        pub.publish(REGISTER, register_payload("127.0.0.1", 9, ["wanted.example"]))
        twin.wait_for(b"wanted.example", timeout=10)   # returns only once that registration has arrived
        with pytest.raises(TimeoutError):
            twin.wait_for(b"wanted.example", timeout=0.3)   # already consumed: nothing more carries it
    finally:
        pub.close()
        twin.close()


def test_idle_share_comes_from_proc_stat_deltas() -> None:
    before = parse_idle_ticks("cpu  100 0 100 700 0 0 0 100 0 0\ncpu0 50 0 50 350 0 0 0 50 0 0\n")
    after = parse_idle_ticks("cpu  200 0 100 800 100 0 0 300 7 0\n"      # guest (9th) is inside user already
                             "cpu0 100 0 50 400 50 0 0 100 7 0\n")
    assert after["cpu0"] == (450, 700)
    assert idle_share(before, after) == 200 / 500   # idle counts iowait too
    assert idle_share(None, after) is None


def test_nats_server_is_found_by_its_port(nats) -> None:
    assert pids_listening_as("nats-server", nats.port) == [nats.process.pid]
    assert pids_listening_as("nats-server", 1) == []


def test_run_queue_counters_grow_while_a_process_runs() -> None:
    run0, wait0 = sched_ns([os.getpid()])
    sum(i * i for i in range(200_000))
    run1, wait1 = sched_ns([os.getpid()])
    assert run1 > run0 and wait1 >= wait0
    assert sched_ns([2 ** 22 + 12345]) == (0, 0)   # a pid that is not there counts nothing


def test_the_goal_row_splits_at_delivery_and_gives_the_hosts_share() -> None:
    ing = {"messages": 1000, "msgs_per_s": 1e5, "latency_samples": 1000, "routable_p99_ms": 2.5,
           "request_p99_ms": 1.5, "applied_p99_ms": 1.0, "delivered_p99_ms": 0.8, "after_delivery_p99_ms": 1.9,
           "steal_router_cpus": 0.123, "router_runq_wait_us_per_sample": 456.0}
    row = {r["name"]: r for r in report.evaluate_targets({"ingest": ing, "closed": [], "open": []})}
    assert row["Publish-to-routable p99"]["value"] == (
        "2.500 ms (1,000 samples; publish -> delivered by NATS p99 0.800 ms, delivered -> routable p99 1.900 ms; "
        "a proxied request alone: p99 1.500 ms; steal 12.3% on the router's CPU, the router waited 456 us a "
        "sample for a CPU)")


def test_the_goal_row_and_the_table_give_the_hosts_floor_without_portico() -> None:
    ing = {"messages": 1000, "msgs_per_s": 1e5, "latency_samples": 1000, "routable_p99_ms": 2.5,
           "request_p50_ms": 0.2, "request_p99_ms": 1.5, "floor_name": "nginx", "floor_p50_ms": 0.15,
           "floor_p99_ms": 1.25, "publisher_msgs_per_s": 1e6, "publish_s": 0.001, "applied_s": 0.01}
    res = {"ingest": ing, "closed": [], "open": []}
    row = {r["name"]: r for r in report.evaluate_targets(res)}["Publish-to-routable p99"]
    assert row["value"] == ("2.500 ms (1,000 samples; a proxied request alone: p99 1.500 ms; nginx at the same "
                            "pace: p99 1.250 ms)")
    assert row["met"] is False                     # the floor explains the p99; it does not change the goal
    assert ("| the host's floor at the same pace, without Portico: a request to nginx after each pause, p50 / p99 "
            "| 0.150 / 1.250 ms |") in report.render_markdown(res)


def test_the_step_times_real_publishes_to_a_real_router(nats, tmp_path) -> None:
    with bench_router(tmp_path, nats) as bench:
        res = IngestResult(messages=0, publish_s=0, applied_s=0, msgs_per_s=0, publisher_msgs_per_s=0,
                           routes_seen=None, varz_registrations=None)
        publish_to_routable(bench.router, bench.pub, bench.backend.port, 5, res, log=lambda _line: None,
                            floor=HostFloor("the backend directly", bench.backend.port, "floor.local"))
        assert res.latency_samples == 5 and res.routable_timeouts == 0
        for low, high in ((res.delivered_p99_ms, res.routable_p99_ms), (res.applied_p99_ms, res.routable_p99_ms)):
            assert low is not None and high is not None and 0 < low <= high
        assert res.after_delivery_p99_ms is not None and res.after_delivery_p99_ms > 0
        assert res.request_p99_ms is not None and res.not_found_p99_ms is not None
        assert res.router_cpu_us_per_sample is not None and res.router_cpu_us_per_sample > 0
        assert res.nats_cpu_us_per_sample is not None and res.nats_cpu_us_per_sample > 0
        assert res.idle_all is not None and res.steal_all is not None
        assert res.floor_name == "the backend directly"      # the host's floor: the same pace, no Portico
        assert res.floor_p50_ms is not None and res.floor_p99_ms is not None and res.floor_p50_ms > 0
