"""Running a load generator (wrk, h2load) with a hard time bound.

h2load over TLS was once seen not to exit after its -D duration when runs came back to back. A load tool that
hangs must cost one point, not the whole benchmark run: each run gets its own process group, and when the bound
passes the whole group is killed (SIGKILL), the caller records the point as failed and goes on.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Sequence

GRACE = 30.0   # seconds a run may take beyond its own duration (start-up, the last responses, the report)


class LoadToolTimeout(RuntimeError):
    """A wrk or h2load run outlived its bound and was killed; str() names the tool, the bound and its last output."""


def run_bounded(argv: Sequence[str], timeout: float, what: str = "") -> subprocess.CompletedProcess[str]:
    """subprocess.run(argv, capture_output=True, text=True), killed with its process group after `timeout` s."""
    name = what or os.path.basename(argv[0])
    proc = subprocess.Popen(list(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:   # the group is gone, so the pipes close; bounded all the same
            out, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = "", ""
        tail = " ".join(((out or "") + (err or "")).split())[-300:]
        raise LoadToolTimeout(f"{name} did not finish within {timeout:.0f} s and was killed"
                              + (f"; its last output: {tail}" if tail else "")) from None
    return subprocess.CompletedProcess(list(argv), proc.returncode, out, err)


__all__ = ["GRACE", "LoadToolTimeout", "run_bounded"]
