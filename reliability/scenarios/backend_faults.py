"""A backend killed under steady load (max_attempts 1 and 3), and backends that reset part-way through a body."""

from __future__ import annotations

import time

from reliability.core import Result, scenario
from reliability.cutting_backend import FULL, CuttingBackend
from reliability.load import SteadyLoad
from reliability.parts import Stack, get, unique_host

GOAL = ("max_attempts 3: 0 failed requests when one of two backends is killed under load; max_attempts 1: "
        "failures only while the dead backend is still tried; a backend reset mid-body never yields a 200 "
        "that looks whole (0 truncated 200s)")


def _kill_under_load(stack: Stack, nats_port: int, attempts: int, seconds: float, rate: float) -> dict[str, object]:
    router = stack.router(nats_port, backends={"max_attempts": attempts})
    host = unique_host(f"kill{attempts}")
    survivor, victim = stack.backend("survivor"), stack.backend("victim")
    router.register(host, survivor.port)
    router.register(host, victim.port)
    load = SteadyLoad(router.port, host, "/echo", rate=rate, connections=8).start()
    time.sleep(seconds / 2)
    victim.stop()          # stops listening and resets its open connections: a crashed process, as seen on the wire
    killed_at = time.monotonic()
    time.sleep(seconds / 2)
    stats = load.stop()
    last = max((f.at for f in stats.failures), default=None)
    figures = {f"max_attempts {attempts}: " + k: v for k, v in stats.figures().items()}
    figures[f"max_attempts {attempts}: last failure, s after the kill"] = (
        "none" if last is None else round(last - load.seconds_at(killed_at), 2))
    return figures


def _truncations(stack: Stack, nats_port: int, rounds: int) -> dict[str, object]:
    router = stack.router(nats_port, backends={"max_attempts": 3})
    cutter = CuttingBackend().start()
    stack.on_exit(cutter.stop)
    host = unique_host("cut")
    router.register(host, cutter.port)
    figures: dict[str, object] = {}
    for path in ("/cut-length", "/cut-chunked", "/cut-close"):
        whole_short, seen_cut, other = 0, 0, 0
        for _ in range(rounds):
            try:
                resp = get(router.port, host, path, timeout=10)
            except (ConnectionError, OSError, ValueError):
                seen_cut += 1          # the client saw the cut (reset or broken framing)
                continue
            if resp.status == 200 and resp.complete and len(resp.body) < FULL and path != "/cut-close":
                whole_short += 1
            elif resp.status == 200 and path == "/cut-close" and resp.complete and resp.header("content-length"):
                whole_short += 1       # a length that fits the cut body would hide the cut
            elif resp.status == 200 and not resp.complete:
                seen_cut += 1
            elif resp.status == 200 and path == "/cut-close" and resp.header("transfer-encoding"):
                whole_short += 1       # re-chunked and properly ended: the cut is hidden
            else:
                other += 1
        figures[f"{path}: truncated 200s that look whole"] = whole_short
        figures[f"{path}: cuts the client could see"] = seen_cut
        figures[f"{path}: other answers (5xx)"] = other
    return figures


@scenario("backend_faults", GOAL)
def run(quick: bool) -> Result:
    seconds, rate, rounds = (2.5, 60.0, 5) if quick else (30.0, 150.0, 50)
    with Stack("backend-faults") as stack:
        nats = stack.nats()
        figures = _kill_under_load(stack, nats.port, 3, seconds, rate)
        figures |= _kill_under_load(stack, nats.port, 1, seconds, rate)
        figures |= _truncations(stack, nats.port, rounds)
    met = (figures["max_attempts 3: failed"] == 0
           and all(v == 0 for k, v in figures.items() if "look whole" in k))
    return Result(figures, met)
