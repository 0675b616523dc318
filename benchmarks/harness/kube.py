"""Kubernetes propagation: object change -> routable through a real router, with 1,000 Ingresses in the cluster.

A real kube-apiserver + etcd (tests/kubeapi.py: $KUBEBUILDER_ASSETS or ../shared/k8s), `portico kube` and a
`portico router` on the run's NATS. Measured:
- bulk: 1,000 Ingresses created one after the other; seconds from the first create to the last host answering;
- with those 1,000 in place, `samples` times each: an Ingress created -> its host answers 200; an Ingress deleted
  -> its host answers 404; an endpoint made not ready -> its address leaves the router's table.
Each time runs from just before the API request (so it includes the API server's write) to the router showing
the change. Standalone: `benchmarks/run --kube-only [--kube-ingresses N]`.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from portico.stack.processes import ManagedProcess

from .httpprobe import Probe, get_json
from .parse import percentile

REPO = Path(__file__).resolve().parents[2]
CONTROLLER = "portico.io/ingress-controller"


@dataclass
class KubeResult:
    ingresses: int = 0
    bulk_s: float | None = None
    create_ms: list[float] = field(default_factory=list)
    delete_ms: list[float] = field(default_factory=list)
    not_ready_ms: list[float] = field(default_factory=list)
    timeouts: int = 0
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict:
        def stats(values: list[float]) -> dict:
            return {"samples": len(values), "p50_ms": percentile(values, 50) if values else None,
                    "p99_ms": percentile(values, 99) if values else None, "max_ms": max(values) if values else None}

        return {"ingresses": self.ingresses, "bulk_s": self.bulk_s, "create": stats(self.create_ms),
                "delete": stats(self.delete_ms), "not_ready": stats(self.not_ready_ms), "timeouts": self.timeouts,
                "notes": self.notes}


def _objects(backend_port: int):
    def ingress(name: str, host: str) -> dict:
        return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                "metadata": {"name": name, "namespace": "default"},
                "spec": {"ingressClassName": "portico", "rules": [{"host": host, "http": {"paths": [
                    {"path": "/", "pathType": "Prefix",
                     "backend": {"service": {"name": "bench", "port": {"number": 80}}}}]}}]}}

    def endpoint_slice(ready: bool, name: str = "bench-0") -> dict:
        return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "FQDN",
                "metadata": {"name": name, "namespace": "default",
                             "labels": {"kubernetes.io/service-name": "bench"}},
                "ports": [{"name": "http", "port": backend_port}],
                "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": ready}}]}

    return ingress, endpoint_slice


def _wait(predicate, timeout: float) -> bool:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if predicate():
            return True
        time.sleep(0.002)
    return False


def propagation(router, nats_url: str, backend_port: int, workdir: Path, ingresses: int = 1000,
                samples: int = 50, log=print) -> KubeResult:
    sys.path.insert(0, str(REPO / "tests"))
    from kubeapi import kube_apiserver_binary, start_kube_apiserver  # the tests' real API server

    res = KubeResult(ingresses=ingresses)
    if kube_apiserver_binary() is None:
        res.notes.append("not run: no kube-apiserver (set KUBEBUILDER_ASSETS)")
        return res
    api = start_kube_apiserver(workdir / "apiserver")
    controller = None
    probe = Probe(router.port)
    routes_url = f"http://127.0.0.1:{router.extra['routes_port']}/routes"
    ingress, endpoint_slice = _objects(backend_port)
    try:
        api.apply({"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass", "metadata": {"name": "portico"},
                   "spec": {"controller": CONTROLLER}})
        api.apply({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "bench", "namespace": "default"},
                   "spec": {"ports": [{"name": "http", "port": 80}]}})
        api.apply(endpoint_slice(True))
        controller = ManagedProcess("portico-kube", [
            sys.executable, "-m", "portico", "kube", "--kubeconfig", str(api.kubeconfig), "--nats", nats_url,
            "--no-leader-election"], workdir / "kube.log").start()
        hosts = [f"k{i}.kube.bench" for i in range(ingresses)]
        t0 = time.perf_counter()
        for i, host in enumerate(hosts):
            api.apply(ingress(f"bulk-{i}", host))
        def all_routed() -> bool:
            return probe.get(hosts[-1]) == 200 and sum(
                h.endswith(".kube.bench") for h in get_json(routes_url, "admin", "admin", 10)) >= ingresses

        if _wait(all_routed, 120):
            res.bulk_s = time.perf_counter() - t0
        else:
            res.notes.append("bulk: not every Ingress became routable within 120 s")
        log(f"  kube: {ingresses} Ingresses created and routable in {res.bulk_s or 0:.2f} s")
        for i in range(samples):
            host, obj = f"s{i}.kube.bench", ingress(f"sample-{i}", f"s{i}.kube.bench")
            t = time.perf_counter()
            api.apply(obj)
            if _wait(lambda host=host: probe.get(host) == 200, 10):
                res.create_ms.append((time.perf_counter() - t) * 1e3)
            else:
                res.timeouts += 1
            t = time.perf_counter()
            api.delete(obj)
            if _wait(lambda host=host: probe.get(host) == 404, 10):
                res.delete_ms.append((time.perf_counter() - t) * 1e3)
            else:
                res.timeouts += 1
        address = f"127.0.0.1:{backend_port}"
        for ready in [False, True] * max(1, samples // 5):
            t = time.perf_counter()
            api.apply(endpoint_slice(ready))

            def listed() -> bool:
                table = get_json(routes_url, "admin", "admin", 10)
                return any(e["address"] == address for e in table.get(hosts[0], []))

            if _wait(lambda ready=ready: listed() is ready, 10):
                if not ready:
                    res.not_ready_ms.append((time.perf_counter() - t) * 1e3)
            else:
                res.timeouts += 1
        s = res.summary()
        log(f"  kube: create -> routable p50 {s['create']['p50_ms']:.1f} ms p99 {s['create']['p99_ms']:.1f} ms; "
            f"delete -> 404 p50 {s['delete']['p50_ms']:.1f} ms; not ready -> out p50 "
            f"{s['not_ready']['p50_ms'] or 0:.1f} ms; timeouts {res.timeouts}")
    finally:
        probe.close()
        if controller is not None:
            controller.stop()
        api.stop()
    return res


def render(kube: dict) -> list[str]:
    """The BENCHMARKS.md section."""
    def row(name: str, s: dict) -> str:
        def f(v: float | None) -> str:
            return "-" if v is None else f"{v:.1f}"
        return f"| {name} | {s['samples']} | {f(s['p50_ms'])} | {f(s['p99_ms'])} | {f(s['max_ms'])} |"

    out = ["## Kubernetes propagation (`portico kube`, real kube-apiserver)", "",
           f"{kube['ingresses']:,} Ingresses created one by one, all routable after "
           f"{'-' if kube['bulk_s'] is None else format(kube['bulk_s'], '.2f')} s. Then, with them in place:", "",
           "| change -> seen by the router | samples | p50 ms | p99 ms | max ms |", "|---|---:|---:|---:|---:|",
           row("Ingress created -> host answers 200", kube["create"]),
           row("Ingress deleted -> host answers 404", kube["delete"]),
           row("endpoint not ready -> out of /routes", kube["not_ready"])]
    if kube.get("timeouts"):
        out.append(f"\nTimeouts (no change seen within 10 s): {kube['timeouts']}")
    out += [f"\n- {n}" for n in kube.get("notes", [])] + [""]
    return out
