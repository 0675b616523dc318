"""Scale runs against Portico: route-table size, registration ingest, publish-to-routable latency, workers."""

from __future__ import annotations

import os
import random
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .heap import huge_page_passes, wait_for_heap_pass
from .hostshare import idle_share, idle_ticks, pids_listening_as, sched_ns
from .httpprobe import Probe, get_json, wait_for_status
from .load import closed_loop, fmt
from .natspub import NatsPublisher, pub_frame, register_payload
from .natssub import NatsSubscriber
from .paired import paired_runs
from .parse import median, parse_varz_registrations, percentile
from .procs import cpu_seconds, rss_kb
from .reregister import SENTINEL_HOST, reregister
from .steal import sample as steal_sample
from .steal import steal_fraction

REGISTER = "router.register"


def route_frames(backend_port: int, hosts: list[str]) -> list[bytes]:
    """Registrations shaped like a real route emitter's (app guid, instance id and index, tags)."""
    frames = []
    for host in hosts:
        payload = register_payload("127.0.0.1", backend_port, [host], app=str(uuid.uuid4()),
                                   private_instance_id=str(uuid.uuid4()), private_instance_index="0",
                                   tags={"component": "route-emitter"})
        frames.append(pub_frame(REGISTER, payload))
    return frames


def scale_host(i: int) -> str:
    return f"r{i}.bench.local"


def register_and_wait(pub: NatsPublisher, proxy_port: int, backend_port: int, hosts: list[str],
                      timeout: float = 120.0) -> float:
    """Publish registrations for `hosts`, wait until the last answers 200; returns seconds taken."""
    frames = route_frames(backend_port, hosts)
    t0 = time.monotonic()
    pub.publish_many(frames)
    pub.flush(timeout)
    wait_for_status(proxy_port, hosts[-1], 200, timeout=timeout, interval=0.002)
    return time.monotonic() - t0


def check_sample(proxy_port: int, hosts: list[str], sample: int = 30) -> int:
    """How many of a random sample of hosts do not answer 200."""
    probe = Probe(proxy_port)
    bad = 0
    try:
        for host in random.sample(hosts, min(sample, len(hosts))):
            if probe.get(host) != 200:
                bad += 1
    finally:
        probe.close()
    return bad


@dataclass
class RouteScaleStep:
    routes: int
    rps: float | None
    p99_ms: float | None
    cpu_us_per_req: float | None
    rss_kb: int
    register_s: float | None
    sample_failures: int
    ratio_to_1: float | None = None
    bytes_per_route: float | None = None        # RSS growth per route, after traffic to the routes
    rss_kb_applied: int | None = None           # RSS right after applying, before any request
    bytes_per_route_table: float | None = None  # the table alone: growth per route added by this step, before load
    one_route_rps: float | None = None          # Host r0 alone, in runs alternating with this step's (paired.py)
    pair_ratios: list[float] = field(default_factory=list)   # ratio_to_1: their median


def route_scale(wrk: str, target, pub: NatsPublisher, backend_port: int, steps: list[int], connections: int,
                duration: float, warmup: float, runs: int, load_cpus, script: Path, log=print
                ) -> list[RouteScaleStep]:
    results: list[RouteScaleStep] = []
    registered = 0
    base_rss = None
    base_rps = None
    prev_rss, prev_n = 0, 0
    for n in steps:
        hosts = [scale_host(i) for i in range(registered, n)]
        took = None
        passes = huge_page_passes(target)
        if hosts:
            log(f"  registering {len(hosts):,} routes (total {n:,}) ...")
            took = register_and_wait(pub, target.port, backend_port, hosts)
            registered = n
            log(f"    applied in {took:.2f}s ({len(hosts) / took:,.0f} routes/s incl. publish and poll)")
        rss_applied = rss_kb(target.pids())
        wait_for_heap_pass(target, passes, len(hosts), log)
        all_hosts = [scale_host(i) for i in range(n)]
        bad = check_sample(target.port, all_hosts)
        one_rps = None
        pair_ratios: list[float] = []
        if n == 1:
            res = closed_loop(wrk, _with_host(target, None), connections, duration, warmup, runs, load_cpus,
                              script=script, script_args=[str(n)], log=log)
            rps, p99, cpu = res.rps, res.p99_ms, res.cpu_us_per_req
        else:   # n routes and 1 route alternately on this router (harness/paired.py): the ratio is theirs
            paired = paired_runs(wrk, _with_host(target, None), n, connections, duration, warmup, runs, load_cpus,
                                 script, log=log)
            rps, p99, cpu, one_rps = paired.n_rps, paired.n_p99_ms, paired.n_cpu_us, paired.one_rps
            pair_ratios = [b / a for a, b in paired.pairs]
        rss = rss_kb(target.pids())
        step = RouteScaleStep(routes=n, rps=rps, p99_ms=p99, cpu_us_per_req=cpu, rss_kb=rss, register_s=took,
                              sample_failures=bad, rss_kb_applied=rss_applied, one_route_rps=one_rps,
                              pair_ratios=pair_ratios)
        if base_rss is None:
            base_rss, base_rps = rss, rps
        else:
            step.bytes_per_route = (rss - base_rss) * 1024 / max(1, n - steps[0])
            # the table alone: what applying this step's new routes added, from the RSS after the previous
            # step's load (that load's buffers and the earlier routes' traffic are not the table's)
            step.bytes_per_route_table = (rss_applied - prev_rss) * 1024 / max(1, n - prev_n)
        prev_rss, prev_n = rss, n
        if n == 1 or one_rps is None:
            step.ratio_to_1 = (rps or 0) / base_rps if base_rps else None
        else:
            step.ratio_to_1 = median(pair_ratios) if pair_ratios else None
        log(f"  {n:,} routes: {fmt(step.rps, 0)} req/s (x{fmt(step.ratio_to_1)} of 1 route), RSS {rss / 1024:.1f} MiB"
            + (f", {step.bytes_per_route:.0f} B/route" if step.bytes_per_route is not None else "")
            + (f", {bad} of sample not 200" if bad else ""))
        results.append(step)
    return results


class _HostOverride:
    """A view of a target with another Host header (None: the wrk script sets it)."""

    def __init__(self, target, host):
        self._t, self.host_header = target, host

    def __getattr__(self, name):
        return getattr(self._t, name)


def _with_host(target, host):
    return _HostOverride(target, host)


@dataclass
class IngestResult:
    messages: int
    publish_s: float
    applied_s: float
    msgs_per_s: float
    publisher_msgs_per_s: float
    routes_seen: int | None
    varz_registrations: int | None
    latency_samples: int = 0
    routable_p50_ms: float | None = None
    routable_p99_ms: float | None = None
    routable_max_ms: float | None = None
    routable_timeouts: int = 0
    routable_polls_p99: int | None = None     # requests a sample needed (the first ones answer 404)
    delivered_p50_ms: float | None = None     # publish -> nats-server delivered it (a twin subscriber read it)
    delivered_p99_ms: float | None = None
    after_delivery_p50_ms: float | None = None  # delivered -> the first 200: the router's apply + that request
    after_delivery_p99_ms: float | None = None
    steal_all: float | None = None            # CPU steal during the samples, all CPUs (share of their ticks)
    steal_router_cpus: float | None = None    # ... and on the CPUs the router is pinned to
    idle_all: float | None = None             # idle share of all CPUs then (low: something else was running)
    router_cpu_us_per_sample: float | None = None        # the router on a CPU, per sample (schedstat) ...
    router_runq_wait_us_per_sample: float | None = None  # ... and ready but waiting for one
    nats_cpu_us_per_sample: float | None = None          # the same for nats-server (found by its port)
    nats_runq_wait_us_per_sample: float | None = None
    routable_window_s: float | None = None
    applied_p50_ms: float | None = None       # publish -> applied: until the request that found the route was sent
    applied_p99_ms: float | None = None       # (an upper bound, within one 404 round trip of the apply)
    first_request_p50_ms: float | None = None  # applied -> routable: that first successful request's own time
    first_request_p99_ms: float | None = None
    request_p50_ms: float | None = None       # the same loop: a proxied request to a host already routable
    request_p99_ms: float | None = None
    not_found_p50_ms: float | None = None     # ... and the router's 404 for an unknown host
    not_found_p99_ms: float | None = None
    floor_name: str | None = None             # the host's floor at the same pace, without Portico (HostFloor)
    floor_p50_ms: float | None = None
    floor_p99_ms: float | None = None
    gc_pauses_in_window: int | None = None    # router GC pauses >= 0.5 ms during the samples (/varz)
    gc_pause_max_ms: float | None = None
    slow_samples_with_gc: int | None = None   # of the slowest 1% of samples, how many overlap a GC pause
    rss_kb_after: int | None = None
    router_cpu_s: float | None = None       # the router's CPU time from the first publish to the last route
    msgs_per_cpu_s: float | None = None     # registrations per router CPU-second: holds on a busy machine too
    reregister_msgs_per_s: float | None = None     # the same messages again, unchanged (reregister.py)
    reregister_applied_s: float | None = None
    reregister_cpu_s: float | None = None
    reregister_msgs_per_cpu_s: float | None = None
    reregister_varz_registrations: int | None = None   # /varz counter delta: the re-registrations and one new host
    reregister_error: str | None = None
    notes: list[str] = field(default_factory=list)


def ingest(target, pub: NatsPublisher, backend_port: int, n: int, log=print) -> IngestResult:
    """Publish n registrations as fast as possible to a router with no routes; time until all are applied."""
    hosts = [f"i{i}.ingest.local" for i in range(n)]
    frames = route_frames(backend_port, hosts)
    status_port, routes_port = target.extra["status_port"], target.extra["routes_port"]
    varz0 = _varz_count(status_port, routes_port)
    passes = huge_page_passes(target)
    probe = Probe(target.port)
    cpu0 = cpu_seconds(target.pids())
    t0 = time.monotonic()
    pub.publish_many(frames)
    pub.flush(60)
    t_pub = time.monotonic()
    deadline = t0 + 120
    done = None
    polls = 0
    while time.monotonic() < deadline and polls < 2_000_000:
        polls += 1
        if probe.get(hosts[-1]) == 200:
            done = time.monotonic()
            break
        time.sleep(0.002)
    probe.close()
    if done is None:
        raise TimeoutError(f"router did not apply {n} registrations within 120s")
    router_cpu = cpu_seconds(target.pids()) - cpu0
    varz1 = _varz_count(status_port, routes_port)
    seen = _routes_count(routes_port, suffix=".ingest.local")
    res = IngestResult(messages=n, publish_s=t_pub - t0, applied_s=done - t0, msgs_per_s=n / (done - t0),
                       publisher_msgs_per_s=n / max(t_pub - t0, 1e-9), routes_seen=seen,
                       varz_registrations=(varz1 - varz0) if varz0 is not None and varz1 is not None else None,
                       router_cpu_s=router_cpu, msgs_per_cpu_s=n / router_cpu if router_cpu > 0 else None)
    if seen is not None and seen != n:
        res.notes.append(f"/routes lists {seen} of {n} ingested routes")
    log(f"  ingest {n:,} registrations: applied in {res.applied_s:.3f}s = {res.msgs_per_s:,.0f} msg/s "
        f"(publisher alone {res.publisher_msgs_per_s:,.0f} msg/s; router CPU {router_cpu:.2f}s = "
        f"{fmt(res.msgs_per_cpu_s, 0)} msg per CPU-second); /routes has {seen}")
    wait_for_heap_pass(target, passes, n, log)
    _reregistrations(target, pub, frames, backend_port, res, log)
    return res


def _reregistrations(target, pub: NatsPublisher, frames: list[bytes], backend_port: int, res: IngestResult,
                     log=print) -> None:
    """The same messages again, unchanged (reregister.py): beside the goal, which is about new routes."""
    status_port, routes_port = target.extra["status_port"], target.extra["routes_port"]
    varz0 = _varz_count(status_port, routes_port)
    try:
        again = reregister(target, pub, frames, route_frames(backend_port, [SENTINEL_HOST])[0])
    except TimeoutError as err:
        res.reregister_error = str(err)
        log(f"  re-registrations: {err}")
        return
    varz1 = _varz_count(status_port, routes_port)
    res.reregister_msgs_per_s, res.reregister_applied_s = again.msgs_per_s, again.applied_s
    res.reregister_cpu_s, res.reregister_msgs_per_cpu_s = again.router_cpu_s, again.msgs_per_cpu_s
    if varz0 is not None and varz1 is not None:
        res.reregister_varz_registrations = varz1 - varz0
    log(f"  the same {again.messages:,} registrations again (unchanged): applied in {again.applied_s:.3f}s = "
        f"{again.msgs_per_s:,.0f} msg/s (router CPU {again.router_cpu_s:.2f}s = {fmt(again.msgs_per_cpu_s, 0)} "
        f"msg per CPU-second); /varz counted {res.reregister_varz_registrations}")


@dataclass
class HostFloor:
    """Where publish_to_routable sends its host-floor requests: a proxy that is not Portico (nginx, pinned to
    the router's CPU) or the backend itself, named in the report."""

    name: str
    port: int
    host: str


ROUTABLE_SAMPLES = 1000          # full run; p99 of 1,000 is the 10th slowest sample, not one outlier
ROUTABLE_SAMPLES_QUICK = 300


def publish_to_routable(target, pub: NatsPublisher, backend_port: int, samples: int, res: IngestResult,
                        log=print, floor: HostFloor | None = None) -> None:
    """Publish one registration for a fresh host and time it until the proxy answers that Host with 200.

    The chain is split where nats-server delivers: a second subscriber to the router's subject (natssub.py)
    gets each message in the same fan-out as the router, so publish -> delivered is the NATS hop. Only then
    does the probe ask the router (again on a 404 until 200): delivered -> routable is the router's apply
    plus that request's own time. Asking only after delivery keeps the probe from hammering the router with
    404s while NATS is still moving the message (earlier runs sent up to 133 requests a sample).
    So that the figure explains itself, each sample is followed by two requests on the same connection: one
    to the host just made routable (a proxied request's own latency, through the backend: the floor under any
    publish-to-routable sample) and one to an unknown host (the router's 404, no backend). The router's
    garbage-collector pauses during the samples are read from /varz (gc_pauses.recent, monotonic clock
    readings comparable with this process's) and lined up with the slowest 1% of the samples. The host's
    share: CPU steal (steal.py) and idle over the step, and the router's time on a CPU and waiting for one
    (run-queue wait, hostshare.py) per sample, and the same for nats-server. This process keeps off the
    router's CPUs while it measures, as wrk does.
    With a `floor`, the host's floor is measured the same way without Portico: after each sample's pause, one
    request through that proxy, timed, and another pause before the next publish. Each publish and each floor
    request follows the same 5 ms pause (the vCPUs halt in it and wake for what comes next), so the two tails
    are comparable; the publishes themselves are timed as before.
    """
    nats_host, nats_port = pub.sock.getpeername()[:2]
    twin = NatsSubscriber(nats_host, nats_port, REGISTER)
    probe = Probe(target.port)
    lat: list[float] = []
    spans: list[tuple[float, float]] = []
    floor_200: list[float] = []
    floor_404: list[float] = []
    floor_other: list[float] = []  # the host's floor: a request through `floor` after the same pause
    other = Probe(floor.port) if floor is not None else None
    polls: list[int] = []
    delivered: list[float] = []    # publish -> the twin subscriber read the message (nats-server delivered it)
    applied: list[float] = []      # publish -> the send of the request that found the route (the router's apply
    first: list[float] = []        # lies between the previous 404 and it) and that request's own time
    timeouts = 0
    router_cpus, own_cpus = _keep_off_router_cpus(target)
    nats_pids = pids_listening_as("nats-server", nats_port)
    steal0, idle0, sched0, nats0 = steal_sample(), idle_ticks(), sched_ns(target.pids()), sched_ns(nats_pids)
    window_start = time.monotonic()
    try:
        probe.get("warmup.latency.local")
        for i in range(samples):
            host = f"l{i}-{uuid.uuid4().hex[:8]}.latency.local"
            frame = route_frames(backend_port, [host])[0]
            t0 = time.monotonic()
            pub.sock.sendall(frame)
            try:
                twin.wait_for(host.encode(), timeout=2.0)
            except TimeoutError:
                timeouts += 1
                continue
            t_delivered = time.monotonic()
            ok = False
            tries = 0
            sent = t0
            while tries < 100_000:
                tries += 1
                sent = time.monotonic()
                if probe.get(host) == 200:
                    ok = True
                    break
                if time.monotonic() - t0 > 2.0:
                    break
            t1 = time.monotonic()
            if ok:
                lat.append(t1 - t0)
                delivered.append(t_delivered - t0)
                applied.append(sent - t0)
                first.append(t1 - sent)
                spans.append((t0, t1))
                polls.append(tries)
                if probe.get(host) == 200:
                    floor_200.append(time.monotonic() - t1)
                t2 = time.monotonic()
                probe.get(f"unknown-{i}.latency.local")
                floor_404.append(time.monotonic() - t2)
            else:
                timeouts += 1
            time.sleep(0.005)
            if other is not None and floor is not None:
                t3 = time.monotonic()
                if other.get(floor.host) == 200:
                    floor_other.append(time.monotonic() - t3)
                time.sleep(0.005)
    finally:
        probe.close()
        if other is not None:
            other.close()
        twin.close()
        if own_cpus is not None:
            os.sched_setaffinity(0, own_cpus)
    window_end = time.monotonic()
    steal1, idle1, sched1, nats1 = steal_sample(), idle_ticks(), sched_ns(target.pids()), sched_ns(nats_pids)
    res.routable_window_s = window_end - window_start
    res.steal_all, res.idle_all = steal_fraction(steal0, steal1), idle_share(idle0, idle1)
    res.steal_router_cpus = steal_fraction(steal0, steal1, router_cpus)
    per_sample = max(1, len(lat) + timeouts)
    res.router_cpu_us_per_sample = (sched1[0] - sched0[0]) / per_sample / 1e3
    res.router_runq_wait_us_per_sample = (sched1[1] - sched0[1]) / per_sample / 1e3
    if nats_pids:
        res.nats_cpu_us_per_sample = (nats1[0] - nats0[0]) / per_sample / 1e3
        res.nats_runq_wait_us_per_sample = (nats1[1] - nats0[1]) / per_sample / 1e3
    res.latency_samples = len(lat)
    res.routable_timeouts = timeouts
    def ms(values: list[float], p: float) -> float | None:
        return (percentile(values, p) or 0) * 1e3 if values else None

    res.routable_p50_ms, res.routable_p99_ms = ms(lat, 50), ms(lat, 99)
    res.routable_max_ms = max(lat) * 1e3 if lat else None
    res.request_p50_ms, res.request_p99_ms = ms(floor_200, 50), ms(floor_200, 99)
    res.delivered_p50_ms, res.delivered_p99_ms = ms(delivered, 50), ms(delivered, 99)
    after_delivery = [a - b for a, b in zip(lat, delivered, strict=True)]
    res.after_delivery_p50_ms, res.after_delivery_p99_ms = ms(after_delivery, 50), ms(after_delivery, 99)
    res.applied_p50_ms, res.applied_p99_ms = ms(applied, 50), ms(applied, 99)
    res.first_request_p50_ms, res.first_request_p99_ms = ms(first, 50), ms(first, 99)
    res.not_found_p50_ms, res.not_found_p99_ms = ms(floor_404, 50), ms(floor_404, 99)
    if floor is not None:
        res.floor_name = floor.name
        res.floor_p50_ms, res.floor_p99_ms = ms(floor_other, 50), ms(floor_other, 99)
    res.routable_polls_p99 = int(percentile(polls, 99) or 0) if polls else None
    pauses = _gc_pauses(target, window_start, window_end)
    if pauses is not None:
        res.gc_pauses_in_window = len(pauses)
        res.gc_pause_max_ms = max((p["ms"] for p in pauses), default=0.0)
        slow = sorted(spans, key=lambda span: span[1] - span[0])[-max(1, len(spans) // 100):] if spans else []
        res.slow_samples_with_gc = sum(
            1 for t0, t1 in slow
            if any(p["monotonic"] < t1 and p["monotonic"] + p["ms"] / 1e3 > t0 for p in pauses))
    log(f"  publish-to-routable ({len(lat)} samples): p50 {fmt(res.routable_p50_ms, 3)} ms, "
        f"p99 {fmt(res.routable_p99_ms, 3)} ms, max {fmt(res.routable_max_ms, 3)} ms, timeouts {timeouts} "
        f"(publish -> delivered by NATS p50 {fmt(res.delivered_p50_ms, 3)} / p99 {fmt(res.delivered_p99_ms, 3)} ms, "
        f"delivered -> routable p50 {fmt(res.after_delivery_p50_ms, 3)} / p99 {fmt(res.after_delivery_p99_ms, 3)} ms; "
        f"requests per sample p99 {res.routable_polls_p99}); "
        f"a proxied request to a routable host p50 {fmt(res.request_p50_ms, 3)} / p99 {fmt(res.request_p99_ms, 3)} ms, "
        f"a 404 p99 {fmt(res.not_found_p99_ms, 3)} ms; "
        + (f"{floor.name} at the same pace p50 {fmt(res.floor_p50_ms, 3)} / p99 {fmt(res.floor_p99_ms, 3)} ms; "
           if floor else "")
        + f"in {res.routable_window_s:.1f} s: steal "
        f"{_pct(res.steal_all)} of all CPUs ({_pct(res.steal_router_cpus)} of the router's), "
        f"idle {_pct(res.idle_all)}; "
        f"the router per sample {res.router_cpu_us_per_sample:.0f} us on a CPU, "
        f"{res.router_runq_wait_us_per_sample:.0f} us waiting for one; "
        f"nats-server {fmt(res.nats_cpu_us_per_sample, 0)} us on a CPU, "
        f"{fmt(res.nats_runq_wait_us_per_sample, 0)} us waiting; router GC pauses >= 0.5 ms in the window: "
        f"{res.gc_pauses_in_window if pauses is not None else 'unknown'}"
        + (f" (longest {res.gc_pause_max_ms:.2f} ms, {res.slow_samples_with_gc} of the slowest 1% overlap one)"
           if pauses else ""))


def _keep_off_router_cpus(target) -> tuple[set[int] | None, set[int] | None]:
    """Move this process off the router's CPUs when the router is pinned to some of them (as wrk is kept off):
    the probe must not take the router's CPU while it waits. Returns (router's CPUs, this process's before)."""
    try:
        router = set(os.sched_getaffinity(target.pids()[0]))
        mine = set(os.sched_getaffinity(0))
    except (OSError, IndexError, AttributeError):
        return None, None
    rest = mine - router
    if not rest or router >= set(range(os.cpu_count() or 1)):
        return router, None
    os.sched_setaffinity(0, rest)
    return router, mine


def _pct(share: float | None) -> str:
    return "?" if share is None else f"{share * 100:.1f}%"


def _gc_pauses(target, start: float, end: float) -> list[dict] | None:
    """The router's GC pauses (/varz gc_pauses.recent) that began between `start` and `end`; None if not shown."""
    try:
        varz = get_json(f"http://127.0.0.1:{target.extra['status_port']}/varz", "admin", "admin", 10)
        recent = varz["gc_pauses"]["recent"]
    except Exception:  # an older router without the field
        return None
    return [p for p in recent if start <= p["monotonic"] <= end]


def _varz_count(status_port: int, routes_port: int) -> int | None:
    for port in (status_port, routes_port):
        try:
            return parse_varz_registrations(get_json(f"http://127.0.0.1:{port}/varz", "admin", "admin", 10))
        except Exception:  # /varz shape or location unknown: optional cross-check
            continue
    return None


def _routes_count(routes_port: int, suffix: str) -> int | None:
    try:
        table = get_json(f"http://127.0.0.1:{routes_port}/routes", "admin", "admin", 60)
    except Exception:
        return None
    return sum(1 for key in table if key.endswith(suffix))


@dataclass
class WorkerStep:
    workers: int
    rps: float | None
    p99_ms: float | None
    cpu_us_per_req: float | None
    proxy_cpu_util: float | None
    errors: int
    processes: int
    connection_check_failures: int
    routes_endpoint_ok: bool
    scaling: float | None = None


def workers_check(target, host: str, tries: int = 40) -> int:
    """New connections land on any worker (SO_REUSEPORT): every one of them must know the route."""
    bad = 0
    for _ in range(tries):
        probe = Probe(target.port)
        if probe.get(host) != 200:
            bad += 1
        probe.close()
    return bad


def worker_step_summary(step: WorkerStep) -> dict:
    return asdict(step)
