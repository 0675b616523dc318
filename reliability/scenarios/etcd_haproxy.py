"""confsync over a 3-node etcd cluster whose node it uses is killed, then HAProxy reloaded 20 times under load.

The whole `portico up` stack (HAProxy, confsync, two routers, demo apps) runs against an external nats-server
and a real 3-node etcd cluster. Each reload is a real config change: a key announcing one of the routers once
more under another name is written or deleted in etcd, confsync renders haproxy.cfg and reloads HAProxy.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from reliability.core import Result, scenario
from reliability.load import SteadyLoad
from reliability.parts import EtcdNode, Stack, loop_thread, wait_for

GOAL = ("confsync's etcd node killed: confsync carries on through another node and haproxy.cfg keeps matching "
        "the routers in etcd; 20 HAProxy reloads under load: 0 failed requests")
PREFIX = "/portico"
DEMO_HOST = "demo.portico.local"


def _etcd(node: EtcdNode, op: str, key: str, value: str = "") -> Any:
    import aetcd

    async def call() -> Any:
        async with aetcd.Client(host="127.0.0.1", port=node.port, timeout=5) as client:
            if op == "put":
                await client.put(key.encode(), value.encode())
                return None
            if op == "delete":
                await client.delete(key.encode())
                return None
            return {kv.key.decode(): kv.value.decode() for kv in await client.get_prefix(key.encode())}

    deadline = time.monotonic() + 60
    while True:   # right after a kill the cluster may be electing a leader: writes time out for a moment
        try:
            return loop_thread().run(call(), timeout=20)
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _cfg_servers(cfg: Path) -> set[str]:
    try:
        text = cfg.read_text()
    except OSError:
        return set()
    return set(re.findall(r"^\s+server (\S+) ", text, re.M))


def _etcd_servers(node: EtcdNode) -> set[str]:
    return {json.loads(v)["id"] for v in _etcd(node, "get", f"{PREFIX}/routers/").values()}


def _reloads(status_port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{status_port}/status", timeout=5) as resp:
        body = json.load(resp)
    resources = body.get("resources", body) if isinstance(body, dict) else body
    items = resources.values() if isinstance(resources, dict) else resources
    return sum(int(r.get("reloads", 0)) for r in items if isinstance(r, dict))


def _start_up(stack: Stack, nats_url: str, etcd: list[EtcdNode]) -> tuple[subprocess.Popen, dict[str, Any]]:
    workdir = stack.folder("up")
    out = stack.workdir / "up.out"
    argv = [sys.executable, "-m", "portico", "up", "--demo", "--ports", "auto", "--routers", "2",
            "--nats", nats_url, "--etcd", ",".join(n.url for n in etcd), "--lease-ttl", "3",
            "--workdir", str(workdir)]
    env = dict(os.environ, PYTHONUNBUFFERED="1", COLUMNS="200")
    with open(out, "wb") as f:
        up = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT, env=env, start_new_session=True)

    def stop() -> None:
        if up.poll() is None:
            up.send_signal(signal.SIGINT)
            try:
                up.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(up.pid, signal.SIGKILL)

    stack.on_exit(stop)
    wait_for(lambda: "ready" in out.read_text(errors="replace") or up.poll() is not None, timeout=120,
             interval=0.2, message="portico up ready")
    if up.poll() is not None:
        raise RuntimeError(f"portico up exited:\n{out.read_text()[-3000:]}")
    return up, json.loads((workdir / "state.json").read_text())


# its quick version runs under the slow marker: portico up over etcd is covered by confsync_kill and etcd_restart
@scenario("etcd_haproxy", GOAL, in_default_suite=False)
def run(quick: bool) -> Result:
    reload_count = 5 if quick else 20
    with Stack("etcd-haproxy") as stack:
        etcd = stack.etcd_cluster(3)
        nats = stack.nats()
        _, state = _start_up(stack, nats.url, etcd)
        cfg = Path(state["workdir"]) / "haproxy" / "haproxy.cfg"
        status_port = state["parts"]["confsync"]["ports"]["status"]
        router1 = state["parts"]["router-1"]["ports"]
        alias_value = json.dumps({"address": f"127.0.0.1:{router1['proxy']}", "health_port": router1["status"],
                                  "id": "alias"})
        load = SteadyLoad(state["front_port"], DEMO_HOST, "/", rate=100, connections=4).start()
        time.sleep(2.0)

        def change(op: str, name: str) -> None:
            """One change in etcd (through the surviving node): wait until haproxy.cfg shows it and HAProxy
            has been reloaded for it."""
            before = _reloads(status_port)
            key = f"{PREFIX}/routers/{name}"
            _etcd(survivor, op, key, alias_value.replace('"alias"', f'"{name}"'))
            try:
                wait_for(lambda: (name in _cfg_servers(cfg)) == (op == "put"), timeout=60, interval=0.05,
                         message=f"haproxy.cfg after {op} {name}")
                wait_for(lambda: _reloads(status_port) > before, timeout=30, interval=0.05,
                         message=f"HAProxy reload after {op} {name}")
            except AssertionError as exc:
                raise AssertionError(f"{exc}: etcd has {sorted(_etcd_servers(survivor))}, haproxy.cfg "
                                     f"{sorted(_cfg_servers(cfg))}") from None

        # confsync reads etcd-0 first (its first endpoint): kill it, then change the routers through etcd-1
        survivor = etcd[1]
        etcd[0].process.stop(signum=signal.SIGKILL)
        killed = time.monotonic()
        change("put", "alias-after-kill")
        followed_in = time.monotonic() - killed
        change("delete", "alias-after-kill")
        matches_after_kill = _cfg_servers(cfg) == _etcd_servers(survivor)

        # reloads under load, each a real change rendered by confsync
        first = _reloads(status_port)
        started = time.monotonic()
        for i in range(reload_count):
            change("put" if i % 2 == 0 else "delete", "alias")
        reload_seconds = time.monotonic() - started
        time.sleep(2.0)
        stats = load.stop()
        reloads = _reloads(status_port) - first
        matches_at_end = _cfg_servers(cfg) == _etcd_servers(survivor)
    figures: dict[str, object] = {
        "confsync followed a change after its node was killed in (s)": round(followed_in, 2),
        "haproxy.cfg matched etcd after the kill": matches_after_kill,
        "HAProxy reloads under load": reloads,
        "reloads took (s)": round(reload_seconds, 1),
        "haproxy.cfg matched etcd at the end": matches_at_end,
    } | stats.figures()
    met = stats.failed == 0 and matches_after_kill and matches_at_end and reloads >= reload_count
    return Result(figures, met, notes="Load: 100 req/s through HAProxy's front port to the demo apps. etcd-0 "
                                      "is killed with SIGKILL; every later change goes through etcd-1.")
