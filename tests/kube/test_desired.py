"""The pure desired-state function: Kubernetes objects in, registrations and problems out."""

from __future__ import annotations

from portico.kube.desired import ClusterView, Options, Registration, desired_state, tls_secrets

CTRL = "portico.io/ingress-controller"


def _class(name="portico", default=False, controller=CTRL):
    ann = {"ingressclass.kubernetes.io/is-default-class": "true"} if default else {}
    return {"metadata": {"name": name, "annotations": ann}, "spec": {"controller": controller}}


def _svc(name, ports=(("http", 80),), ip="10.0.0.7", ns="default", annotations=None):
    return {"metadata": {"name": name, "namespace": ns, "uid": f"uid-{name}", "annotations": annotations or {}},
            "spec": {"clusterIP": ip, "ports": [{"name": n, "port": p} for n, p in ports]}}


def _slice(name, svc, endpoints, port=8080, port_name="http", ns="default"):
    return {"metadata": {"name": name, "namespace": ns, "labels": {"kubernetes.io/service-name": svc}},
            "addressType": "IPv4", "ports": [{"name": port_name, "port": port}],
            "endpoints": [{"addresses": [ip], "conditions": {} if ready is None else {"ready": ready},
                           "targetRef": {"kind": "Pod", "name": f"pod-{ip}", "uid": f"pod-uid-{ip}"}}
                          for ip, ready in endpoints]}


def _ing(name, rules, cls="portico", default_backend=None, tls=None, annotations=None, ns="default"):
    spec: dict = {"rules": [{"host": h, "http": {"paths": [
        {"path": p, "pathType": t, "backend": {"service": {"name": s, "port": port}}} for p, t, s, port in paths]}}
        for h, paths in rules]}
    if cls:
        spec["ingressClassName"] = cls
    if default_backend:
        spec["defaultBackend"] = {"service": {"name": default_backend, "port": {"number": 80}}}
    if tls:
        spec["tls"] = tls
    return {"metadata": {"name": name, "namespace": ns, "uid": f"uid-{name}", "annotations": annotations or {}},
            "spec": spec}


def _view(**kw) -> ClusterView:
    view = ClusterView(ingress_classes={"portico": _class()})
    for kind, objs in kw.items():
        getattr(view, kind).update({(o["metadata"].get("namespace", ""), o["metadata"]["name"]): o for o in objs})
    return view


def test_prefix_exact_and_root_paths_map_onto_context_paths():
    view = _view(services=[_svc("web")], endpoint_slices=[_slice("web-1", "web", [("10.1.0.1", True)])],
                 ingresses=[_ing("i", [("A.Example.com", [("/", "Prefix", "web", {"number": 80}),
                                                         ("/api/", "Exact", "web", {"name": "http"}),
                                                         ("/x", "ImplementationSpecific", "web", {"number": 80})])])])
    regs = desired_state(view).registrations
    assert {r.uri for r in regs} == {"a.example.com", "a.example.com/api", "a.example.com/x"}
    assert {(r.host, r.port, r.private_instance_id, r.app) for r in regs} == {
        ("10.1.0.1", 8080, "pod-uid-10.1.0.1", "uid-web")}


def test_only_ready_endpoints_and_cluster_ip_mode():
    view = _view(services=[_svc("web")], endpoint_slices=[_slice("s", "web", [("10.1.0.1", True),
                                                                          ("10.1.0.2", False),
                                                                          ("10.1.0.3", None)])],
                 ingresses=[_ing("i", [("h.com", [("/", "Prefix", "web", {"number": 80})])])])
    assert {r.host for r in desired_state(view).registrations} == {"10.1.0.1", "10.1.0.3"}
    cluster_ip = desired_state(view, Options(pod_endpoints=False)).registrations
    assert cluster_ip == {Registration("h.com", "10.0.0.7", 80, "", "uid-web")}


def test_class_selection_default_class_and_legacy_annotation():
    svc, sl = _svc("web"), _slice("s", "web", [("10.1.0.1", True)])
    ings = [_ing("mine", [("a.com", [("/", "Prefix", "web", {"number": 80})])]),
            _ing("other", [("b.com", [("/", "Prefix", "web", {"number": 80})])], cls="nginx"),
            _ing("none", [("c.com", [("/", "Prefix", "web", {"number": 80})])], cls=None),
            _ing("legacy", [("d.com", [("/", "Prefix", "web", {"number": 80})])], cls=None,
                 annotations={"kubernetes.io/ingress.class": "portico"})]
    view = _view(services=[svc], endpoint_slices=[sl], ingresses=ings)
    assert {r.uri for r in desired_state(view).registrations} == {"a.com", "d.com"}
    view.ingress_classes["portico"] = _class(default=True)
    assert {r.uri for r in desired_state(view).registrations} == {"a.com", "c.com", "d.com"}
    view.ingress_classes["portico"] = _class(controller="k8s.io/ingress-nginx")
    assert desired_state(view).registrations == set()


def test_default_backend_covers_hosts_without_a_root_path():
    view = _view(services=[_svc("web"), _svc("fallback", ip="10.0.0.9")],
                 endpoint_slices=[_slice("a", "web", [("10.1.0.1", True)]),
                                  _slice("b", "fallback", [("10.1.0.9", True)])],
                 ingresses=[_ing("i", [("a.com", [("/api", "Prefix", "web", {"number": 80})]),
                                       ("b.com", [("/", "Prefix", "web", {"number": 80})])],
                                 default_backend="fallback")])
    regs = {(r.uri, r.host) for r in desired_state(view).registrations}
    assert regs == {("a.com/api", "10.1.0.1"), ("a.com", "10.1.0.9"), ("b.com", "10.1.0.1")}


def test_problems_name_the_ingress_and_why():
    view = _view(services=[_svc("web")],
                 ingresses=[_ing("i", [("", [("/", "Prefix", "web", {"number": 80})]),
                                       ("a.com", [("/", "Prefix", "missing", {"number": 80}),
                                                  ("/p", "Prefix", "web", {"number": 81}),
                                                  ("/q", "Prefix", "web", {"number": 80})])])])
    state = desired_state(view)
    assert state.registrations == set()
    reasons = [(p.name, p.reason) for p in state.problems]
    assert reasons == [("i", "HostRequired"), ("i", "BackendNotFound"), ("i", "BackendNotFound"),
                       ("i", "NoReadyEndpoints")]
    assert "Service default/missing not found" in state.problems[1].message
    assert "no port 81" in state.problems[2].message


def test_annotated_service_routes_its_domains():
    svc = _svc("api", ports=(("grpc", 9000), ("http", 80)),
               annotations={"portico.io/domains": "api.a.com, www.a.com/v1", "portico.io/port": "http"})
    view = _view(services=[svc], endpoint_slices=[_slice("s", "api", [("10.1.0.5", True)], port=8081)])
    regs = desired_state(view).registrations
    assert {(r.uri, r.host, r.port) for r in regs} == {("api.a.com", "10.1.0.5", 8081),
                                                       ("www.a.com/v1", "10.1.0.5", 8081)}
    assert {(r.uri, r.host, r.port) for r in desired_state(view, Options(pod_endpoints=False)).registrations} \
        == {("api.a.com", "10.0.0.7", 80), ("www.a.com/v1", "10.0.0.7", 80)}


def test_tls_secrets_of_our_ingresses_only():
    view = _view(ingresses=[_ing("i", [], tls=[{"hosts": ["a.com"], "secretName": "a-tls"}]),
                            _ing("j", [], cls="nginx", tls=[{"secretName": "b-tls"}])])
    assert tls_secrets(view) == {("default", "a-tls")}


def test_registration_message_is_gorouters():
    reg = Registration("a.com/api", "10.1.0.1", 8080, "pod-uid", "app-uid")
    assert reg.message({"source": "kubernetes"}) == {
        "host": "10.1.0.1", "port": 8080, "uris": ["a.com/api"], "app": "app-uid",
        "private_instance_id": "pod-uid", "tags": {"source": "kubernetes"}}
