"""`workers: 2`: two processes share the proxy port, and /health is 200 only when both can route."""

from __future__ import annotations

import json
import os

from support import get, unique_host


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except FileNotFoundError:
        return []


def test_two_workers_route_every_new_connection(router_factory, backend):
    router = router_factory(workers=2)
    assert len(_children(router.pid)) == 2  # the supervisor and its two workers
    # Worker 0 serves /health, and is started only once worker 1 can route: otherwise a route registered
    # right after /health said 200 could miss worker 1 (the benchmark harness hit exactly that).
    # router.log holds gorouter-shaped JSON lines; each worker's carry data.worker
    lines = [json.loads(line) for line in (router.workdir / "router.log").read_text().splitlines()]
    w1_healthy = next(i for i, line in enumerate(lines)
                      if line["data"].get("worker") == 1 and "healthy" in line["message"])
    w0_first = next(i for i, line in enumerate(lines) if line["data"].get("worker") == 0)
    assert w1_healthy < w0_first
    host = unique_host()
    router.register(host, backend.port)  # registered once, right after /health said 200
    statuses = [get(router.port, host).status for _ in range(40)]  # each a new connection
    assert statuses == [200] * 40


def test_workers_stop_together_on_sigterm(router_factory):
    router = router_factory(workers=2)
    workers = _children(router.pid)
    assert router.stop() == 0
    assert not any(os.path.exists(f"/proc/{pid}") for pid in workers)
