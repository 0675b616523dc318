"""deploy/kubernetes/ against a real API server: every manifest is accepted (so a typo cannot ship), and the
ServiceAccounts' RBAC is enough for `portico kube` to do its job, and no more than that."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest
import trustme
import yaml
from kube_support import KubeController, endpoint_slice, ingress, lease_holder, service
from support import REPO, unique_host, wait_for

MANIFESTS = sorted((REPO / "deploy" / "kubernetes").glob("*.yaml"))


def _objects() -> list[dict]:
    return [doc for path in MANIFESTS for doc in yaml.safe_load_all(path.read_text()) if doc]


@pytest.fixture(scope="module")
def deployed(kube_api):
    for obj in _objects():
        kube_api.apply(obj)  # a real create: the API server validates every field against its schema
    return kube_api



def _refused(log: str) -> bool:
    """A 403 or Forbidden in the controller's messages (not in a line's timestamp, whose milliseconds can be
    403)."""
    messages = "\n".join(re.sub(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ", "", line) for line in log.splitlines())
    return "403" in messages or "Forbidden" in messages

def test_every_manifest_is_accepted_by_the_api_server(deployed):
    kinds = {(o["kind"], o["metadata"]["name"]) for o in _objects()}
    assert {("DaemonSet", "portico-traffic-node"), ("Deployment", "portico-kube"), ("IngressClass", "portico"),
            ("Deployment", "nats"), ("StatefulSet", "etcd")} <= kinds
    for obj in _objects():
        assert deployed.request("GET", deployed.path_of(obj))["metadata"]["name"] == obj["metadata"]["name"]
    daemonset = next(o for o in _objects() if o["kind"] == "DaemonSet")
    ports = {p.get("hostPort") for c in daemonset["spec"]["template"]["spec"]["containers"]
             for p in c.get("ports", [])}
    assert {80, 443} <= ports


def test_a_typo_is_refused(kube_api):
    (ds,) = [o for o in _objects() if o["kind"] == "DaemonSet"]
    ds["spec"]["template"]["spec"]["containers"][0]["ports"][0]["hostPort"] = "eighty"
    with pytest.raises(AssertionError, match="hostPort"):
        kube_api.apply(ds, dry_run=True)


def test_controller_service_account_can_do_its_job(deployed, nats, router, backend_factory, tmp_path_factory):
    kubeconfig = deployed.service_account_kubeconfig("portico-system", "portico-kube")
    assert deployed.request_as(kubeconfig, "GET", "/api/v1/secrets") == 403  # least privilege: no Secrets
    assert deployed.request_as(kubeconfig, "GET", "/apis/coordination.k8s.io/v1/namespaces/default/leases") == 403
    host, broken = unique_host("rbac"), unique_host("rbac-broken")
    backend = backend_factory("rbac")
    deployed.apply(service("rbac"))
    deployed.apply(endpoint_slice("rbac-0", "rbac", [(backend.port, True)]))
    deployed.apply(ingress("rbac", host, "rbac"))
    deployed.apply(ingress("rbac-broken", broken, "missing"))
    controller = KubeController(tmp_path_factory.mktemp("rbac"), kubeconfig, nats.url, "rbac-ctrl",
                                "--lease-namespace", "portico-system").start()
    try:
        wait_for(lambda: lease_holder(deployed, ns="portico-system") == "rbac-ctrl",
                 timeout=20, message="the Lease taken with the ServiceAccount's rights")
        router.wait_route(host, backend.address, timeout=10)
        wait_for(lambda: deployed.request("GET", "/apis/networking.k8s.io/v1/namespaces/default/ingresses/rbac")
                 .get("status", {}).get("loadBalancer", {}).get("ingress"), timeout=10, message="status written")
        wait_for(lambda: deployed.request("GET", "/api/v1/namespaces/default/events?fieldSelector="
                                                 "involvedObject.name=rbac-broken")["items"],
                 timeout=10, message="an Event created")
        assert not _refused(controller.log()), controller.log()[-2000:]
    finally:
        controller.stop()


def test_traffic_node_service_account_writes_tls_files(deployed, nats, tmp_path_factory):
    kubeconfig = deployed.service_account_kubeconfig("portico-system", "portico-traffic-node")
    assert deployed.request_as(kubeconfig, "GET", "/api/v1/services") == 403  # it reads no Services
    tls_dir: Path = tmp_path_factory.mktemp("node-tls")
    host = unique_host("node-tls")
    cert = trustme.CA().issue_cert(host)
    chain = b"".join(b.bytes() for b in cert.cert_chain_pems)
    deployed.apply({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
                    "metadata": {"name": "node-tls", "namespace": "default"},
                    "data": {"tls.crt": base64.b64encode(chain).decode(),
                             "tls.key": base64.b64encode(cert.private_key_pem.bytes()).decode()}})
    deployed.apply(ingress("node-tls", host, "whatever", tls_secret="node-tls"))
    writer = KubeController(tmp_path_factory.mktemp("node"), kubeconfig, nats.url, "node-writer",
                            "--no-routes", "--tls-dir", str(tls_dir)).start()
    try:
        wait_for(lambda: (tls_dir / "default__node-tls.pem").exists(), timeout=20,
                 message=f"the certificate file written:\n{writer.log()[-2000:]}")
        assert (tls_dir / "default__node-tls.pem").read_bytes().startswith(chain)
        assert not _refused(writer.log()), writer.log()[-2000:]
    finally:
        writer.stop()
