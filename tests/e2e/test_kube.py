"""`portico kube` against a real kube-apiserver (+ etcd), a real nats-server and a real `portico router`.

There is no kubelet: the tests create Services, EndpointSlices (pointing at backends on 127.0.0.1), Ingresses and
Leases themselves, then check what the router does. One API server for the whole run (tests/conftest.py);
every test names its objects and hosts uniquely.
"""

from __future__ import annotations

import base64
import json
import socket
import ssl
import threading
import time

import pytest
import trustme
from kube_support import KubeController, endpoint_slice, ingress, ingress_class, lease_holder, service
from support import get, loop_thread, unique_host, wait_for


@pytest.fixture(scope="module")
def cluster(kube_api):
    kube_api.apply(ingress_class())
    return kube_api


@pytest.fixture(scope="module")
def controllers(cluster, nats, tmp_path_factory):
    """Start controllers by identity; all are stopped at the end of the module."""
    workdir = tmp_path_factory.mktemp("kube-controllers")
    started: list[KubeController] = []

    def start(identity: str, *extra: str) -> KubeController:
        c = KubeController(workdir, cluster.kubeconfig, nats.url, identity, *extra).start()
        started.append(c)
        return c

    yield start
    for c in started:
        c.stop()


@pytest.fixture(scope="module")
def current(controllers):
    """The controller that leads now (tests that restart or fail over replace it)."""
    c = controllers("ctrl-a")
    c.wait_log("now leads")
    return {"leader": c}


@pytest.fixture
def leader(current):
    return current["leader"]


def _app(cluster, backend_factory, name: str, host: str, ready=(True,)):
    backends = [backend_factory(f"{name}-{i}") for i in range(len(ready))]
    cluster.apply(service(name))
    for i, (b, ok) in enumerate(zip(backends, ready, strict=False)):
        cluster.apply(endpoint_slice(f"{name}-{i}", name, [(b.port, ok)]))
    return backends


def _answer(router, host: str, path: str = "/echo"):
    return get(router.port, host, path)


def test_ingress_created_answers_within_a_second_and_gets_a_status(cluster, leader, router, backend_factory):
    host = unique_host("ing")
    (backend,) = _app(cluster, backend_factory, "web", host)
    start = time.monotonic()
    cluster.apply(ingress("web", host, "web"))
    wait_for(lambda: _answer(router, host).status == 200, timeout=5, interval=0.02, message=f"{host} answers")
    took = time.monotonic() - start
    assert _answer(router, host).json()["name"] == backend.name
    print(f"Ingress created -> routable in {took:.3f}s")
    assert took < 3.0, f"took {took:.2f}s (the aim is under a second; this machine may be loaded)"
    # the entrance's address goes into the Ingress status
    wait_for(lambda: (cluster.request("GET", "/apis/networking.k8s.io/v1/namespaces/default/ingresses/web")
                      .get("status", {}).get("loadBalancer", {}).get("ingress")) == [{"ip": "192.0.2.10"}],
             timeout=10, message="status.loadBalancer written")


def test_service_port_by_name_and_path_rules(cluster, leader, router, backend_factory):
    host = unique_host("named")
    (backend,) = _app(cluster, backend_factory, "named", host)
    cluster.apply(ingress("named", host, "named", port="http", path="/api", path_type="Exact"))
    wait_for(lambda: _answer(router, host, "/api").status == 200, timeout=5, message="/api answers")
    assert _answer(router, host, "/api").json()["name"] == backend.name
    other = _answer(router, host, "/other")
    assert other.status == 404 and other.header("X-Cf-Routererror") == "unknown_route"


def test_endpoint_not_ready_stops_traffic(cluster, leader, router, backend_factory):
    host = unique_host("ready")
    first, second = _app(cluster, backend_factory, "ready", host, ready=(True, True))
    cluster.apply(ingress("ready", host, "ready"))
    wait_for(lambda: len(router.routes_json().get(host, [])) == 2, timeout=5, message="two endpoints")
    cluster.apply(endpoint_slice("ready-0", "ready", [(first.port, False)]))
    router.wait_route(host, first.address, present=False, timeout=5)
    names = {_answer(router, host).json()["name"] for _ in range(10)}
    assert names == {second.name}


def test_ingress_deleted_gives_unknown_route(cluster, leader, router, backend_factory):
    host = unique_host("gone")
    _app(cluster, backend_factory, "gone", host)
    obj = ingress("gone", host, "gone")
    cluster.apply(obj)
    wait_for(lambda: _answer(router, host).status == 200, timeout=5, message=f"{host} answers")
    cluster.delete(obj)
    wait_for(lambda: _answer(router, host).status == 404, timeout=5, message=f"{host} gone")
    assert _answer(router, host).header("X-Cf-Routererror") == "unknown_route"


def test_annotated_service_without_ingress(cluster, leader, router, backend_factory):
    host = unique_host("svc")
    backend = backend_factory("svc-app")
    cluster.apply(service("annotated", annotations={"portico.io/domains": host}))
    cluster.apply(endpoint_slice("annotated-0", "annotated", [(backend.port, True)]))
    wait_for(lambda: _answer(router, host).status == 200, timeout=5, message=f"{host} answers")
    assert _answer(router, host).json()["name"] == backend.name


def test_ingress_of_another_class_is_ignored(cluster, leader, router, backend_factory):
    host = unique_host("other")
    _app(cluster, backend_factory, "otherclass", host)
    cluster.apply(ingress("otherclass", host, "otherclass", class_name="nginx"))
    mine = unique_host("mine")
    cluster.apply(ingress("mine", mine, "otherclass"))
    wait_for(lambda: _answer(router, mine).status == 200, timeout=5, message="our Ingress answers")
    assert _answer(router, host).status == 404  # processed after ours: by now it would have been routed


def test_unroutable_rule_is_explained_by_an_event(cluster, leader):
    cluster.apply(ingress("broken", unique_host("broken"), "no-such-service"))

    def warning():
        events = cluster.request("GET", "/api/v1/namespaces/default/events?fieldSelector="
                                        "involvedObject.name=broken,involvedObject.kind=Ingress")["items"]
        return [e for e in events if e["reason"] == "BackendNotFound" and "no-such-service" in e["message"]]

    (event,) = wait_for(warning, timeout=10, message="a BackendNotFound event on the Ingress")
    assert event["type"] == "Warning" and event["source"]["component"] == "portico-kube"


def test_controller_restart_causes_no_404(cluster, current, controllers, router, backend_factory):
    host = unique_host("restart")
    _app(cluster, backend_factory, "restart", host)
    cluster.apply(ingress("restart", host, "restart"))
    wait_for(lambda: _answer(router, host).status == 200, timeout=5, message=f"{host} answers")
    statuses: list[int] = []
    done = threading.Event()

    def hammer():
        while not done.is_set():
            statuses.append(_answer(router, host).status)
            time.sleep(0.01)

    thread = threading.Thread(target=hammer)
    thread.start()
    try:
        current["leader"].stop()  # SIGTERM: gives the Lease up, unregisters nothing
        current["leader"] = again = controllers("ctrl-a2")
        again.wait_log("now leads")
        count = len(statuses)
        wait_for(lambda: len(statuses) > count + 20, timeout=10, message="requests after the restart")
    finally:
        done.set()
        thread.join()
    assert set(statuses) == {200}, f"non-200 during the restart: {sorted(set(statuses))}"


class Unregisters:
    """Counts router.unregister messages per uri, seen on the real NATS."""

    def __init__(self, nats_url: str) -> None:
        self.nats_url, self.seen, self.nc = nats_url, [], None

    def start(self) -> Unregisters:
        import nats as nats_client

        async def go():
            self.nc = await nats_client.connect(self.nats_url)
            await self.nc.subscribe("router.unregister", cb=self._on)
            await self.nc.flush()

        loop_thread().run(go())
        return self

    async def _on(self, msg) -> None:
        self.seen.extend(json.loads(msg.data)["uris"])

    def stop(self) -> None:
        loop_thread().run(self.nc.close())


def test_two_controllers_one_leader_and_failover(cluster, current, controllers, nats, router, backend_factory):
    old = current["leader"]
    follower = controllers("ctrl-b")
    follower.wait_log("listed")
    time.sleep(1.0)  # several retry periods: a follower that wrongly took the Lease would have said so
    assert lease_holder(cluster) == old.identity and "now leads" not in follower.log()
    host, late = unique_host("failover"), unique_host("late")
    _app(cluster, backend_factory, "failover", host)
    obj = ingress("failover", host, "failover")
    cluster.apply(obj)
    wait_for(lambda: _answer(router, host).status == 200, timeout=5, message=f"{host} answers")
    unregisters = Unregisters(nats.url).start()
    try:
        old.kill()  # no goodbye: the Lease must expire
        killed = time.monotonic()
        cluster.delete(obj)  # goes away while nobody leads
        cluster.apply(ingress("late", late, "failover"))
        follower.wait_log("now leads", timeout=20)
        took = time.monotonic() - killed
        current["leader"] = follower
        assert lease_holder(cluster) == "ctrl-b"
        assert took < 3 + 3, f"failover took {took:.1f}s (lease duration 3s)"
        wait_for(lambda: _answer(router, late).status == 200, timeout=5, message="the new leader routes")
        wait_for(lambda: _answer(router, host).status == 404, timeout=5,
                 message="what went away during the failover is unregistered")
        time.sleep(0.5)
        assert unregisters.seen.count(host) == 1, unregisters.seen
    finally:
        unregisters.stop()


def _tls_secret(name: str, cert) -> dict:
    chain = b"".join(blob.bytes() for blob in cert.cert_chain_pems)
    return {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
            "metadata": {"name": name, "namespace": "default"},
            "data": {"tls.crt": base64.b64encode(chain).decode(),
                     "tls.key": base64.b64encode(cert.private_key_pem.bytes()).decode()}}


def _served_certificate(port: int, server_name: str) -> bytes:
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
            ctx.wrap_socket(raw, server_hostname=server_name) as tls:
        return tls.getpeercert(binary_form=True)


def test_tls_secret_served_by_sni_and_rotated(cluster, current, controllers, router_factory, backend_factory,
                                              tmp_path_factory):
    tls_dir = tmp_path_factory.mktemp("tls")
    # the traffic node's side: a router reading tls_cert_dir, and `portico kube --no-routes --tls-dir` beside it
    tls_router = router_factory(enable_ssl=True, tls_cert_dir=str(tls_dir))
    controllers("tls-writer", "--no-routes", "--tls-dir", str(tls_dir))
    host = unique_host("tls")
    _app(cluster, backend_factory, "secure", host)
    ca = trustme.CA()
    first = ca.issue_cert(host)
    cluster.apply(_tls_secret("secure-tls", first))
    cluster.apply(ingress("secure", host, "secure", tls_secret="secure-tls"))
    wanted = ssl.PEM_cert_to_DER_cert(first.cert_chain_pems[0].bytes().decode())
    wait_for(lambda: _safe_served(tls_router.ssl_port, host) == wanted, timeout=10,
             message="the Secret's certificate served by SNI")
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    wait_for(lambda: get(tls_router.ssl_port, host, "/echo", ssl_context=client_ctx,
                         server_hostname=host).status == 200, timeout=10, message="HTTPS through the router")
    # rotation: a new certificate in the same Secret is served without a restart
    second = ca.issue_cert(host)
    cluster.apply(_tls_secret("secure-tls", second))
    rotated = ssl.PEM_cert_to_DER_cert(second.cert_chain_pems[0].bytes().decode())
    wait_for(lambda: _safe_served(tls_router.ssl_port, host) == rotated, timeout=10,
             message="the rotated certificate served")
    # the Ingress no longer names the Secret: its file goes away
    cluster.apply(ingress("secure", host, "secure"))
    wait_for(lambda: not (tls_dir / "default__secure-tls.pem").exists(), timeout=10,
             message="the certificate file removed")


def _safe_served(port: int, name: str) -> bytes | None:
    try:
        return _served_certificate(port, name)
    except (OSError, ssl.SSLError):
        return None


def test_cluster_ip_mode_registers_the_service_address(cluster, controllers, router):
    """--endpoints cluster-ip: the Service's cluster IP and port, as platforms that register Services do (a
    controller of its own class and Lease here; only the router's table is checked: nothing is sent there)."""
    cluster.apply({"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass", "metadata": {"name": "cip"},
                   "spec": {"controller": "portico.io/cluster-ip-test"}})
    svc = cluster.apply(service("cipsvc", port=8080))
    host = unique_host("cip")
    cluster.apply(ingress("cip", host, "cipsvc", port=8080, class_name="cip"))
    controllers("cip", "--endpoints", "cluster-ip", "--controller-name", "portico.io/cluster-ip-test",
                "--lease-name", "cip")
    router.wait_route(host, f"{svc['spec']['clusterIP']}:8080", timeout=20)
    assert [e["address"] for e in router.routes_json()[host]] == [f"{svc['spec']['clusterIP']}:8080"]
