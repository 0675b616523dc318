"""The router's huge-page pass seen from outside, as the harness waits for it (benchmarks/harness/heap.py):
a real router, 50,000 routes through a real nats-server, /varz `huge_pages` before and after."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import pytest
from bench_router import bench_router
from harness.heap import GROW_STEP, huge_page_passes, wait_for_heap_pass
from harness.scale import register_and_wait, scale_host

from portico import huge_pages


def test_the_harness_step_is_the_routers():
    assert GROW_STEP == huge_pages.GROW_STEP


def test_a_table_grown_by_a_step_is_moved_to_huge_pages_and_the_harness_sees_the_pass(tmp_path) -> None:
    with bench_router(tmp_path) as bench:
        before = huge_page_passes(bench.router)
        if before is None:
            pytest.skip("this kernel has no MADV_COLLAPSE (Linux 6.1+): the router makes no passes")
        assert before == 0
        assert wait_for_heap_pass(bench.router, before, GROW_STEP - 1, log=lambda _l: None) is None   # none due
        register_and_wait(bench.pub, bench.router.port, bench.backend.port, [scale_host(i) for i in range(GROW_STEP)])
        assert wait_for_heap_pass(bench.router, before, GROW_STEP, log=lambda _l: None) is not None
        assert huge_page_passes(bench.router) == 1
        log = (tmp_path / "portico" / "portico.log").read_text()
        assert "huge pages: " in log and f"at {GROW_STEP} routes" in log
