"""The 1,000,000-route case: time to apply, resident memory, throughput against 1 route, and /routes answering.

One router, in this order: 1 route and its closed-loop throughput (before loading, kept for reference), then
the other 999,999 registrations published and timed until the last one answers 200, then closed-loop runs that
alternate between one host (r0) and a random one of the million per request (harness/paired.py: the ratio is
taken between neighbouring runs on the same router, so a swing of the host's speed cannot fake it), then a whole
GET /routes read while the router's RSS is sampled (it is streamed, so it must answer without holding the body).

Publishing is paced so NATS never drops the router as a slow consumer (its default limit is 64 MB pending per
subscriber, about 200k of these registrations): a chunk is sent only once the chunk two before it is routable.
The router stays busy all the while, so the time measured is the router's, not the publisher's.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from dataclasses import dataclass, field

from .heap import huge_page_passes, wait_for_heap_pass
from .httpprobe import Probe, wait_for_status
from .load import closed_loop, fmt
from .natspub import NatsPublisher, pub_frame
from .paired import paired_runs
from .procs import rss_kb
from .scale import REGISTER, _with_host, check_sample, scale_host

CHUNK = 50_000            # registrations per paced chunk
BLOB = 2_000              # registrations per socket write


@dataclass
class MillionResult:
    routes: int
    baseline_rps: float | None = None       # 1 route, same router, before loading (reference only)
    baseline_cpu_us: float | None = None
    applied_s: float | None = None          # first publish -> last route answers 200
    applied_msgs_per_s: float | None = None
    rss_kb_one_route: int | None = None
    rss_kb_applied: int | None = None
    bytes_per_route: float | None = None    # (RSS applied - RSS with 1 route) / routes
    sample_failures: int = 0
    rps: float | None = None
    p99_ms: float | None = None
    cpu_us_per_req: float | None = None
    ratio_to_1: float | None = None         # the goal's ratio: n routes / 1 route, alternating, after loading
    one_route_rps: float | None = None      # Host r0 alone, in the runs alternating with the n-route ones
    one_route_cpu_us: float | None = None
    ratio_to_baseline: float | None = None  # n routes / the 1-route figure from before loading (drifts with the host)
    pair_ratios: list[float] = field(default_factory=list)
    rss_kb_after_load: int | None = None
    routes_status: int | None = None
    routes_first_byte_s: float | None = None
    routes_s: float | None = None
    routes_bytes: int = 0
    routes_listed: int = 0
    routes_rss_peak_kb: int | None = None
    notes: list[str] = field(default_factory=list)


def _payload(host: str, backend_port: int) -> bytes:
    """The same shape as scale.route_frames (app guid, instance id and index, tags), made faster in bulk."""
    return (b'{"host":"127.0.0.1","port":%d,"uris":["%s"],"app":"%s","private_instance_id":"%s",'
            b'"private_instance_index":"0","tags":{"component":"route-emitter"}}'
            % (backend_port, host.encode(), str(uuid.uuid4()).encode(), str(uuid.uuid4()).encode()))


def _blobs(backend_port: int, first: int, last: int) -> list[bytes]:
    out = []
    for start in range(first, last, BLOB):
        out.append(b"".join(pub_frame(REGISTER, _payload(scale_host(i), backend_port))
                            for i in range(start, min(start + BLOB, last))))
    return out


def publish_paced(pub: NatsPublisher, proxy_port: int, backend_port: int, n: int, log=print,
                  timeout: float = 300.0) -> float:
    """Register routes 1..n-1 (route 0 is there already); seconds from the first write to the last route
    answering 200."""
    log(f"    building {n - 1:,} registrations ...")
    blobs = _blobs(backend_port, 1, n)
    per_chunk = CHUNK // BLOB
    probe = Probe(proxy_port)
    deadline = time.monotonic() + timeout
    t0 = time.monotonic()
    try:
        for k in range(0, len(blobs), per_chunk):
            behind = k // per_chunk - 2        # the chunk two before this one must be routable first
            if behind >= 0:
                host = scale_host(min(n - 1, (behind + 1) * CHUNK))
                while probe.get(host) != 200:
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"{host} not routable within {timeout:.0f}s")
                    time.sleep(0.002)
            for blob in blobs[k:k + per_chunk]:
                pub.sock.sendall(blob)
        pub.flush(timeout)
        wait_for_status(proxy_port, scale_host(n - 1), 200, timeout=max(1.0, deadline - time.monotonic()),
                        interval=0.002)
    finally:
        probe.close()
    return time.monotonic() - t0


def read_routes(routes_port: int, target_pids, user: str = "admin", password: str = "admin") -> dict:
    """GET /routes whole over a raw socket, counting bytes and route keys, sampling the router's RSS meanwhile."""
    import base64

    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    out: dict = {"status": None, "first_byte_s": None, "s": None, "bytes": 0, "listed": 0, "peak_kb": 0}
    done = threading.Event()

    def reader() -> None:
        t0 = time.monotonic()
        try:
            with socket.create_connection(("127.0.0.1", routes_port), timeout=120) as sock:
                sock.sendall(f"GET /routes HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {token}\r\n"
                             f"Connection: close\r\n\r\n".encode())
                tail = b""
                head_done = False
                while True:
                    data = sock.recv(1 << 20)
                    if not data:
                        break
                    if out["first_byte_s"] is None:
                        out["first_byte_s"] = time.monotonic() - t0
                    if not head_done:
                        tail += data
                        if b"\r\n\r\n" not in tail:
                            continue
                        head, _, data = tail.partition(b"\r\n\r\n")
                        out["status"] = int(head.split()[1])
                        head_done, tail = True, b""
                    out["bytes"] += len(data)
                    # every route key is followed by `":[` (an endpoint list); count across read boundaries
                    joined = tail + data
                    out["listed"] += joined.count(b'":[') - tail.count(b'":[')
                    tail = joined[-2:]
            out["s"] = time.monotonic() - t0
        except OSError as err:
            out["error"] = str(err)
        finally:
            done.set()

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    while not done.wait(0.05):
        out["peak_kb"] = max(out["peak_kb"], rss_kb(target_pids()))
    thread.join()
    return out


def million_routes(wrk: str, target, pub: NatsPublisher, backend_port: int, n: int, connections: int,
                   duration: float, warmup: float, runs: int, load_cpus, script, log=print) -> MillionResult:
    res = MillionResult(routes=n)
    # 1 route: the baseline, on this very router
    pub.publish(REGISTER, _payload(scale_host(0), backend_port))
    pub.flush()
    wait_for_status(target.port, scale_host(0), 200, timeout=30)
    base = closed_loop(wrk, _with_host(target, None), connections, duration, warmup, runs, load_cpus,
                       script=script, script_args=["1"], log=log)
    res.baseline_rps, res.baseline_cpu_us = base.rps, base.cpu_us_per_req
    res.rss_kb_one_route = rss_kb(target.pids())
    log(f"  1 route: {fmt(base.rps, 0)} req/s, RSS {res.rss_kb_one_route / 1024:.1f} MiB")

    log(f"  registering {n - 1:,} more routes (paced: {CHUNK:,} per chunk) ...")
    passes = huge_page_passes(target)
    res.applied_s = publish_paced(pub, target.port, backend_port, n, log=log)
    res.applied_msgs_per_s = (n - 1) / res.applied_s
    res.rss_kb_applied = rss_kb(target.pids())
    res.bytes_per_route = (res.rss_kb_applied - res.rss_kb_one_route) * 1024 / (n - 1)
    res.sample_failures = check_sample(target.port, [scale_host(i) for i in range(0, n, max(1, n // 1000))])
    log(f"    applied in {res.applied_s:.2f}s ({fmt(res.applied_msgs_per_s, 0)} routes/s), RSS "
        f"{res.rss_kb_applied / 1024:.1f} MiB, {res.bytes_per_route:.0f} B/route")
    wait_for_heap_pass(target, passes, n - 1, log)

    big = paired_runs(wrk, _with_host(target, None), n, connections, duration, warmup, runs, load_cpus, script,
                      log=log)
    res.rps, res.p99_ms, res.cpu_us_per_req = big.n_rps, big.n_p99_ms, big.n_cpu_us
    res.one_route_rps, res.one_route_cpu_us, res.ratio_to_1 = big.one_rps, big.one_cpu_us, big.ratio
    res.pair_ratios = [b / a for a, b in big.pairs]
    if base.rps and big.n_rps:
        res.ratio_to_baseline = big.n_rps / base.rps
    res.rss_kb_after_load = rss_kb(target.pids())
    log(f"  {n:,} routes: {fmt(res.rps, 0)} req/s (x{fmt(res.ratio_to_1)} of 1 route alongside, "
        f"x{fmt(res.ratio_to_baseline)} of the 1 route before loading), RSS {res.rss_kb_after_load / 1024:.1f} MiB")

    listing = read_routes(target.extra["routes_port"], target.pids)
    res.routes_status, res.routes_s = listing["status"], listing["s"]
    res.routes_first_byte_s, res.routes_bytes = listing["first_byte_s"], listing["bytes"]
    res.routes_listed, res.routes_rss_peak_kb = listing["listed"], listing["peak_kb"]
    if listing.get("error"):
        res.notes.append(f"/routes read failed: {listing['error']}")
    log(f"  /routes: {res.routes_status}, {res.routes_listed:,} routes, {res.routes_bytes / 1e6:.0f} MB in "
        f"{fmt(res.routes_s)}s (first byte {fmt(res.routes_first_byte_s, 3)}s), router RSS peak "
        f"{res.routes_rss_peak_kb / 1024:.1f} MiB")
    return res
