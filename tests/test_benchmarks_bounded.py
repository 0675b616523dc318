"""The benchmark harness bounds every wrk / h2load run (benchmarks/harness/bounded.py): a load tool that hangs
is killed with everything it started, and costs one point (a note in the report), not the whole run.

A stand-in for a hung h2load (a script that ignores SIGTERM, starts a child and sleeps) plays the tool; the
harness code around it is the real one.
"""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from polling import wait_for

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

from harness import bounded, h2

HUNG_TOOL = """\
import signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = subprocess.Popen(["sleep", "600"])
print(f"child {child.pid}", flush=True)
time.sleep(600)
"""


def _hung_tool(tmp_path: Path) -> Path:
    script = tmp_path / "h2load"
    script.write_text(f"#!{sys.executable}\n{HUNG_TOOL}")
    script.chmod(0o755)
    return script


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(")")[-1].split()[0] == "Z"   # killed, not yet reaped


def test_a_run_that_outlives_its_bound_is_killed_with_its_children(tmp_path) -> None:
    started = time.monotonic()
    with pytest.raises(bounded.LoadToolTimeout) as caught:
        bounded.run_bounded([str(_hung_tool(tmp_path)), "-D", "1"], timeout=1.0, what="h2load")
    assert time.monotonic() - started < 30
    message = str(caught.value)
    assert message.startswith("h2load did not finish within 1 s and was killed")
    child = int(re.search(r"child (\d+)", message).group(1))
    wait_for(lambda: _gone(child), timeout=10, message="the tool's child killed with it")


def test_a_run_that_finishes_returns_its_output() -> None:
    out = bounded.run_bounded([sys.executable, "-c", "print('done')"], timeout=60)
    assert out.returncode == 0 and out.stdout == "done\n"


def test_a_hung_h2load_costs_its_point_not_the_run(tmp_path, monkeypatch) -> None:
    """h2_runs with a hung h2load on both transports: each is noted as not measured, and h2_runs returns."""
    monkeypatch.setattr(bounded, "GRACE", 1.0)
    target = SimpleNamespace(name="portico", host_header="bench.test", extra={"h2_tls_port": 1, "h2c_port": 2},
                             pids=lambda: [os.getpid()], alive=lambda: True)
    args = SimpleNamespace(quick=True, duration=1.0, warmup=0.0, runs=1)
    res: dict = {"notes": []}
    h2.h2_runs(str(_hung_tool(tmp_path)), target, args, None, res, log=lambda *a: None)
    assert len(res["notes"]) == 2 and "h2" not in res
    for note, transport in zip(res["notes"], ("tls", "h2c"), strict=True):
        assert note.startswith(f"HTTP/2 {transport} to portico not measured: h2load did not finish within 2 s")
