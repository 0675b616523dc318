"""Kubernetes objects for the e2e tests, and `portico kube` as a real process."""

from __future__ import annotations

import time
from pathlib import Path

from polling import wait_for
from support import PYTHON

from portico.stack.processes import ManagedProcess

CLASS = "portico"
CONTROLLER = "portico.io/ingress-controller"


def ingress_class(name: str = CLASS, default: bool = False) -> dict:
    meta: dict = {"name": name}
    if default:
        meta["annotations"] = {"ingressclass.kubernetes.io/is-default-class": "true"}
    return {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass", "metadata": meta,
            "spec": {"controller": CONTROLLER}}


def service(name: str, port: int = 80, port_name: str = "http", annotations: dict | None = None,
            ns: str = "default") -> dict:
    meta: dict = {"name": name, "namespace": ns}
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta,
            "spec": {"ports": [{"name": port_name, "port": port, "targetPort": 8080}]}}


def endpoint_slice(name: str, service_name: str, backends: list[tuple[int, bool]], port_name: str = "http",
                   ns: str = "default") -> dict:
    """One slice whose endpoints are backends on this machine, all on the first backend's port.

    The API server refuses loopback IPs in IPv4 EndpointSlices, so these slices are of addressType FQDN with
    the name "127.0.0.1" (a valid DNS subdomain; the router dials it as given); a test gives each backend its
    own slice."""
    port = backends[0][0]
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "FQDN",
            "metadata": {"name": name, "namespace": ns, "labels": {"kubernetes.io/service-name": service_name}},
            "ports": [{"name": port_name, "port": port, "protocol": "TCP"}],
            "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": ready},
                           "targetRef": {"kind": "Pod", "namespace": ns, "name": f"{name}-pod-{i}",
                                         "uid": f"uid-{name}-{i}"}}
                          for i, (_p, ready) in enumerate(backends)]}


def ingress(name: str, host: str, service_name: str, port: int | str = 80, path: str = "/",
            path_type: str = "Prefix", class_name: str | None = CLASS, tls_secret: str = "",
            ns: str = "default") -> dict:
    port_ref = {"number": port} if isinstance(port, int) else {"name": port}
    spec: dict = {"rules": [{"host": host, "http": {"paths": [
        {"path": path, "pathType": path_type, "backend": {"service": {"name": service_name, "port": port_ref}}}]}}]}
    if class_name:
        spec["ingressClassName"] = class_name
    if tls_secret:
        spec["tls"] = [{"hosts": [host], "secretName": tls_secret}]
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": name, "namespace": ns}, "spec": spec}


class KubeController:
    """`python -m portico kube` against the test API server; stopped with SIGTERM (or killed) by the test."""

    def __init__(self, workdir: Path, kubeconfig: Path, nats_url: str, identity: str, *extra: str) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = workdir / f"kube-{identity}.log"
        argv = [PYTHON, "-m", "portico", "kube", "--kubeconfig", str(kubeconfig), "--nats", nats_url,
                "--identity", identity, "--lease-duration", "3", "--renew-deadline", "2", "--retry-period",
                "0.3", "--publish-address", "192.0.2.10", *extra]
        self.identity = identity
        self.process = ManagedProcess(f"kube-{identity}", argv, self.log_path)

    def start(self) -> KubeController:
        self.process.start()
        return self

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def wait_log(self, text: str, timeout: float = 30.0, after: int = 0) -> None:
        wait_for(lambda: text in self.log()[after:], timeout=timeout,
                 message=f"{text!r} in the log of {self.identity}:\n{self.log()[-3000:]}")

    def alive(self) -> bool:
        return self.process.popen is not None and self.process.popen.poll() is None

    def stop(self) -> None:
        self.process.stop()

    def kill(self) -> None:
        assert self.process.popen is not None
        self.process.popen.kill()
        self.process.popen.wait(10)


def lease_holder(kube_api, name: str = "portico-kube", ns: str = "default") -> str:
    lease = kube_api.request("GET", f"/apis/coordination.k8s.io/v1/namespaces/{ns}/leases/{name}",
                             ok_missing=True)
    return (lease.get("spec") or {}).get("holderIdentity") or ""


def elapsed_since(start: float) -> float:
    return time.monotonic() - start
