"""The benchmark harness's floor and its noise-free measure: the bare forwarder and instructions per request.

The forwarder (benchmarks/harness/forwarder.py) is started for real in front of the harness's built-in backend;
the callgrind run (harness/instructions.py) is slow (valgrind), so it is marked `slow`.
"""

from __future__ import annotations

import http.client
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

from harness import report
from harness.targets import BENCH_HOST, FORWARDER, start_builtin_backend, start_forwarder
from harness.tools import find_tools


def test_instructions_section_gives_each_proxy_against_nginx():
    rows = [{"target": "nginx", "requests": 5000, "instructions_per_request": 31_000.0},
            {"target": FORWARDER, "requests": 9000, "instructions_per_request": 19_000.0},
            {"target": "portico", "requests": 800, "instructions_per_request": 93_000.0},
            {"target": "haproxy", "requests": 0, "instructions_per_request": None, "error": "boom"}]
    text = "\n".join(report.instructions_section(rows))
    assert "| nginx | 5,000 | 31,000 | 1.00x |" in text
    assert "| portico | 800 | 93,000 | 3.00x |" in text
    assert f"| {FORWARDER} | 9,000 | 19,000 | 0.61x |" in text
    assert "failed: `boom`" in text
    assert report.instructions_section([]) == []


def test_the_forwarder_passes_requests_over_one_kept_alive_connection(tmp_path):
    backend = start_builtin_backend(tmp_path / "backend", None)
    forwarder = start_forwarder(backend.port, tmp_path / "forwarder", None)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", forwarder.port, timeout=10)
        for _ in range(3):
            conn.request("GET", "/", headers={"Host": BENCH_HOST})
            response = conn.getresponse()
            assert response.status == 200
            assert response.read()
        conn.close()
    finally:
        forwarder.stop()
        backend.stop()


@pytest.mark.slow
@pytest.mark.skipif(not shutil.which("valgrind"), reason="valgrind missing: apt-get install -y valgrind")
def test_callgrind_counts_the_forwarders_instructions_per_request(tmp_path):
    from harness.instructions import instructions_runs

    backend = start_builtin_backend(tmp_path / "backend", None)
    try:
        rows = instructions_runs(find_tools(), backend.port, None, ["forwarder"], tmp_path / "ir", 2.0, log=print)
    finally:
        backend.stop()
    assert len(rows) == 1 and rows[0]["target"] == FORWARDER
    assert rows[0]["requests"] > 50
    assert 3_000 < rows[0]["instructions_per_request"] < 200_000   # ~19k on uvloop + httptools, CPython 3.11
