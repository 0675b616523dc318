"""The ingest step's re-registration figure: the same messages published again, unchanged, timed until a new host
published after them answers (benchmarks/harness/reregister.py); against a real nats-server and router."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

from bench_router import bench_router
from harness import report
from harness.httpprobe import get_json
from harness.scale import ingest


def test_the_same_messages_again_are_applied_as_unchanged_reregistrations(tmp_path) -> None:
    with bench_router(tmp_path) as bench:
        res = ingest(bench.router, bench.pub, bench.backend.port, 300, log=lambda _line: None)
        assert res.routes_seen == 300 and res.reregister_error is None
        assert res.reregister_varz_registrations == 301       # every re-registration and the one host after them
        assert res.reregister_msgs_per_s is not None and res.reregister_msgs_per_s > 0
        assert res.reregister_cpu_s is not None                 # /proc ticks: 0.0 for so few messages
        table = get_json(f"http://127.0.0.1:{bench.router.extra['routes_port']}/routes", "admin", "admin", 10)
        hosts = [key for key in table if key.endswith(".ingest.local")]
        assert len(hosts) == 301                               # nothing added by the same messages again
        assert all(len(table[h]) == 1 for h in hosts)          # one endpoint each: unchanged, not a second one


def test_the_ingest_table_shows_reregistrations_beside_the_goal() -> None:
    ing = {"messages": 100_000, "publish_s": 0.2, "applied_s": 0.4, "msgs_per_s": 250_000.0,
           "publisher_msgs_per_s": 1e6, "reregister_msgs_per_s": 410_000.0, "reregister_applied_s": 0.244,
           "reregister_cpu_s": 0.2, "reregister_msgs_per_cpu_s": 500_000.0,
           "reregister_varz_registrations": 100_001}
    res = {"ingest": ing, "closed": [], "open": []}
    assert ("| the same messages again, unchanged re-registrations (not a goal) | 410,000 msg/s (0.244 s; router "
            "CPU 0.20 s = 500,000 msg per CPU-second; /varz counted 100,001 with the one new host after them) |"
            ) in report.render_markdown(res)
    row = {r["name"]: r for r in report.evaluate_targets(res)}["Registration ingest"]
    assert row["met"] is False and row["value"].startswith("250,000 msg/s")   # the goal stays new routes
