"""Instructions per registration through the route feed, counted by callgrind in process (deterministic).

The route emitter's registrations (as benchmarks/harness/scale.py publishes them: a fresh host, app guid and
instance id each, one backend address, tags) are cut into NATS MSG frames, as the NATS server delivers them, and
fed 64 KiB at a time to the fast lane's `FrameParser` (portico.bus.frames) with the router's `PayloadApplier` and
`RouteTable`. Two phases, each counted on its own: `new` (every message a new route) and `again` (the same messages
once more: unchanged re-registrations, which is what a real platform sends every ~20 s). Only `FrameParser.feed` is
counted (`--toggle-collect`), so building the frames and starting Python are not.

    .venv/bin/python benchmarks/callgrind_ingest.py [--messages 20000] [--top 40]    # ~1-2 min

The compiled build only: the counted function is the compiled `FrameParser.feed` (a C symbol callgrind can toggle
on); the pure modules have no such symbol.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def frames(n: int, port: int = 8080) -> list[bytes]:
    """n MSG frames of route-emitter registrations, cut into reads of 64 KiB (as a busy socket delivers them)."""
    out = []
    for i in range(n):
        payload = (b'{"host":"127.0.0.1","port":%d,"uris":["i%d.ingest.local"],"app":"%s","private_instance_id":"%s",'
                   b'"private_instance_index":"0","tags":{"component":"route-emitter"}}'
                   % (port, i, str(uuid.uuid4()).encode(), str(uuid.uuid4()).encode()))
        out.append(b"MSG router.register 1 %d\r\n%s\r\n" % (len(payload), payload))
    blob = b"".join(out)
    return [blob[i:i + 65536] for i in range(0, len(blob), 65536)]


def child(n: int, phase: str) -> None:
    """Runs under callgrind: feed the reads; only the chosen phase's feeds are counted."""
    from portico.bus.applier import PayloadApplier
    from portico.bus.frames import FrameParser
    from portico.observe.metrics import RouterMetrics
    from portico.routes.table import RouteTable

    table = RouteTable()
    metrics = RouterMetrics()
    applier = PayloadApplier(table, metrics)
    parser = FrameParser(applier.register, applier.unregister, lambda line: None)
    reads = frames(n)

    def feed_all() -> None:
        for data in reads:
            applier.batch_time = applier.clock()
            parser.feed(data)
        applier.batch_time = None

    if phase == "new":
        feed_all()
    else:
        feed_all()      # makes the routes (counted too: the "new" run's total is subtracted)
        feed_all()
    assert table.route_count == n and metrics.registrations == n * (1 if phase == "new" else 2), "not all applied"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=20000)
    ap.add_argument("--child", choices=("new", "again"), help=argparse.SUPPRESS)
    ap.add_argument("--top", type=int, default=0, help="print the top N functions (inclusive) of each phase")
    ap.add_argument("--keep", help="keep the callgrind dumps in this directory (cg.new, cg.again)")
    a = ap.parse_args()
    if a.child:
        child(a.messages, a.child)
        return
    env = dict(os.environ, PYTHONHASHSEED="0")
    from portico._compiled import selection
    if "portico.bus.frames" not in selection().compiled:
        raise SystemExit("the compiled build is not in use (stale or missing): pip install -e . first")
    # the Python-visible entry only: the cpdef body it calls matches a wider pattern and would toggle back off
    toggle = "__pyx_pw_*FrameParser_*feed"
    totals: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        if a.keep:
            tmp = a.keep
            Path(tmp).mkdir(parents=True, exist_ok=True)
        for phase in ("new", "again"):
            out = Path(tmp, f"cg.{phase}")
            cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", f"--toggle-collect={toggle}",
                   sys.executable, __file__, "--child", phase, "--messages", str(a.messages)]
            r = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT)
            if r.returncode != 0:
                print(r.stderr[-3000:], file=sys.stderr)
                raise SystemExit(f"callgrind run failed ({phase})")
            total = 0
            for line in out.read_text().splitlines():
                if line.startswith(("summary:", "totals:")):
                    total = int(line.split()[1])
                    break
            totals[phase] = total
            if phase == "again":
                total -= totals["new"]
            print(f"{phase:5s} {a.messages:,} registrations: {total / a.messages:,.0f} instructions per message "
                  "(compiled)")
            if a.top:
                ann = subprocess.run(["callgrind_annotate", "--inclusive=yes", str(out)], capture_output=True,
                                     text=True)
                print("\n".join(ann.stdout.splitlines()[:a.top + 25]))


if __name__ == "__main__":
    main()
