"""The desired state: Kubernetes objects in, the set of gorouter registrations out. Pure: no I/O, no clock.

Everything the controller publishes is `desired_state(view, options).registrations`; everything it cannot route
is a `Problem` naming the object and why (the controller turns those into Events on the Ingress).

Ingress paths onto the router's context paths (the router matches the longest context path on `/` boundaries):
- `Prefix` "/a/b" -> context path "/a/b": the same semantics (matches /a/b and /a/b/c, not /a/bc).
- `ImplementationSpecific`: treated as Prefix.
- `Exact` "/a": registered as context path "/a", so it also matches /a/... (the router has no exact match).
- "/" (any type) -> the bare host.
Rules without a host cannot be routed (gorouter routes by host) and are reported; wildcard hosts
("*.example.com") map onto the router's wildcard routes. An Ingress's default backend is registered on every
host of that Ingress that has no "/" path of its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

DOMAINS_ANNOTATION = "portico.io/domains"
PORT_ANNOTATION = "portico.io/port"
DEFAULT_CLASS_ANNOTATION = "ingressclass.kubernetes.io/is-default-class"
LEGACY_CLASS_ANNOTATION = "kubernetes.io/ingress.class"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
DEFAULT_CONTROLLER = "portico.io/ingress-controller"

Obj = Mapping[str, Any]


@dataclass(frozen=True, order=True)
class Registration:
    """One (uri, endpoint) pair, as published on router.register."""

    uri: str
    host: str
    port: int
    private_instance_id: str = ""
    app: str = ""

    def message(self, tags: Mapping[str, str] | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"host": self.host, "port": self.port, "uris": [self.uri]}
        if self.app:
            body["app"] = self.app
        if self.private_instance_id:
            body["private_instance_id"] = self.private_instance_id
        if tags:
            body["tags"] = dict(tags)
        return body


@dataclass(frozen=True)
class Problem:
    """Why something of an object was not routed (kind, namespace, name, uid, reason, message)."""

    kind: str
    namespace: str
    name: str
    uid: str
    reason: str
    message: str


@dataclass(frozen=True)
class Options:
    controller: str = DEFAULT_CONTROLLER
    pod_endpoints: bool = True  # False: the Service's cluster IP and port, as many platforms register


@dataclass
class ClusterView:
    """The objects the controller watches, keyed by (namespace, name) (IngressClasses by name)."""

    ingress_classes: dict[str, Obj] = field(default_factory=dict)
    ingresses: Mapping[tuple[str, str], Obj] = field(default_factory=dict)
    services: Mapping[tuple[str, str], Obj] = field(default_factory=dict)
    endpoint_slices: Mapping[tuple[str, str], Obj] = field(default_factory=dict)


@dataclass
class DesiredState:
    registrations: set[Registration]
    problems: list[Problem]
    routed_ingresses: list[tuple[str, str]]  # ours and valid: their status gets the entrance's address


def _meta(obj: Obj) -> Obj:
    return obj.get("metadata") or {}


def our_classes(view: ClusterView, controller: str) -> tuple[set[str], bool]:
    """Names of the IngressClasses whose controller is ours, and whether one of them is the default."""
    names, default = set(), False
    for name, cls in view.ingress_classes.items():
        if (cls.get("spec") or {}).get("controller") == controller:
            names.add(name)
            if (_meta(cls).get("annotations") or {}).get(DEFAULT_CLASS_ANNOTATION) == "true":
                default = True
    return names, default


def is_ours(ingress: Obj, classes: set[str], default: bool) -> bool:
    class_name = (ingress.get("spec") or {}).get("ingressClassName")
    if class_name:
        return class_name in classes
    legacy = (_meta(ingress).get("annotations") or {}).get(LEGACY_CLASS_ANNOTATION)
    if legacy:
        return legacy in classes
    return default


def context_uri(host: str, path: str | None) -> str:
    """host + path as the router keys it: lower-case host, no trailing '/', '/' alone is the bare host."""
    path = (path or "/").rstrip("/")
    return host.lower() + path


class _Resolver:
    """Endpoints of a Service port, from EndpointSlices (pod mode) or the cluster IP."""

    def __init__(self, view: ClusterView, options: Options) -> None:
        self.view, self.options = view, options
        self.slices: dict[tuple[str, str], list[Obj]] = {}
        self.memo: dict[tuple[str, str, str, Any], list[tuple[str, int, str]]] = {}
        for (ns, _name), es in view.endpoint_slices.items():
            svc = (_meta(es).get("labels") or {}).get(SERVICE_NAME_LABEL)
            if svc:
                self.slices.setdefault((ns, svc), []).append(es)

    def service_port(self, ns: str, name: str, port: Obj) -> tuple[Obj | None, Obj | None, str]:
        """(service, its port entry, why not) for a backend's port given by number or name."""
        svc = self.view.services.get((ns, name))
        if svc is None:
            return None, None, f"Service {ns}/{name} not found"
        for entry in (svc.get("spec") or {}).get("ports") or []:
            if ("number" in port and entry.get("port") == port["number"]) or \
                    ("name" in port and entry.get("name") == port["name"]):
                return svc, entry, ""
        wanted = port.get("number", port.get("name"))
        return svc, None, f"Service {ns}/{name} has no port {wanted}"

    def endpoints(self, ns: str, svc: Obj, entry: Obj) -> list[tuple[str, int, str]]:
        """(address, port, private_instance_id) for each ready endpoint behind this Service port (memoized:
        many Ingress paths share a Service)."""
        key = (ns, _meta(svc).get("name", ""), entry.get("name") or "", entry.get("port"))
        found = self.memo.get(key)
        if found is None:
            found = self.memo[key] = self._endpoints(ns, svc, entry)
        return found

    def _endpoints(self, ns: str, svc: Obj, entry: Obj) -> list[tuple[str, int, str]]:
        if not self.options.pod_endpoints:
            ip = (svc.get("spec") or {}).get("clusterIP")
            if not ip or ip == "None":
                return []
            return [(ip, int(entry["port"]), "")]
        name = _meta(svc).get("name", "")
        port_name = entry.get("name") or ""
        out: list[tuple[str, int, str]] = []
        for es in self.slices.get((ns, name), ()):
            if es.get("addressType", "IPv4") not in ("IPv4", "IPv6", "FQDN"):
                continue  # FQDN endpoints are host names the router resolves when it connects
            number = next((p.get("port") for p in es.get("ports") or []
                           if (p.get("name") or "") == port_name and p.get("port")), None)
            if number is None:
                continue
            for ep in es.get("endpoints") or []:
                if (ep.get("conditions") or {}).get("ready") is False:
                    continue  # unset means ready (the API's rule)
                addresses = ep.get("addresses") or []
                if not addresses:
                    continue
                ref = ep.get("targetRef") or {}
                instance = ref.get("uid") or ref.get("name") or f"{addresses[0]}:{number}"
                out.append((addresses[0], int(number), instance))
        return out


def _ingress_problem(ing: Obj, reason: str, message: str) -> Problem:
    meta = _meta(ing)
    return Problem("Ingress", meta.get("namespace", ""), meta.get("name", ""), meta.get("uid", ""), reason, message)


def _ingress_routes(ing: Obj, resolver: _Resolver, out: set[Registration], problems: list[Problem]) -> None:
    meta, spec = _meta(ing), ing.get("spec") or {}
    ns = meta.get("namespace", "default")

    def add(uri: str, backend: Obj | None, where: str) -> None:
        service = (backend or {}).get("service")
        if not service:
            problems.append(_ingress_problem(ing, "UnsupportedBackend",
                                             f"{where}: only Service backends are routed (resource backends are not)"))
            return
        svc, entry, why = resolver.service_port(ns, service.get("name", ""), service.get("port") or {})
        if svc is None or entry is None:
            problems.append(_ingress_problem(ing, "BackendNotFound", f"{where}: {why}"))
            return
        endpoints = resolver.endpoints(ns, svc, entry)
        if not endpoints:
            problems.append(_ingress_problem(ing, "NoReadyEndpoints",
                                             f"{where}: Service {ns}/{service.get('name')} has no ready endpoints"))
        app = _meta(svc).get("uid", "")
        for address, port, instance in endpoints:
            out.add(Registration(uri, address, port, instance, app))

    hosts: list[str] = []
    has_root: set[str] = set()
    for rule in spec.get("rules") or []:
        host = (rule.get("host") or "").lower()
        if not host:
            problems.append(_ingress_problem(ing, "HostRequired",
                                             "a rule without a host is not routed: the router routes by host name"))
            continue
        hosts.append(host)
        for path in (rule.get("http") or {}).get("paths") or []:
            value = path.get("path") or "/"
            if not value.startswith("/"):
                problems.append(_ingress_problem(ing, "InvalidPath", f"host {host}: path {value!r} is not absolute"))
                continue
            uri = context_uri(host, value)
            if uri == host:
                has_root.add(host)
            add(uri, path.get("backend"), f"host {host} path {value}")
    default = spec.get("defaultBackend")
    if default:
        roots = [h for h in dict.fromkeys(hosts) if h not in has_root]
        if not hosts:
            problems.append(_ingress_problem(ing, "HostRequired",
                                             "the default backend is only routed for the hosts of this Ingress's "
                                             "rules, and it has none"))
        for host in roots:
            add(host, default, f"default backend for host {host}")


def _service_routes(svc: Obj, resolver: _Resolver, out: set[Registration], problems: list[Problem]) -> None:
    meta = _meta(svc)
    annotations = meta.get("annotations") or {}
    domains = [d.strip().lower() for d in annotations.get(DOMAINS_ANNOTATION, "").replace(",", " ").split()]
    if not domains:
        return
    ports = (svc.get("spec") or {}).get("ports") or []
    wanted = annotations.get(PORT_ANNOTATION, "")
    entry = next((p for p in ports if wanted in (str(p.get("port")), p.get("name"))), None) if wanted else \
        (ports[0] if ports else None)
    if entry is None:
        problems.append(Problem("Service", meta.get("namespace", ""), meta.get("name", ""), meta.get("uid", ""),
                                "BackendNotFound", f"no port {wanted or '(none defined)'} to route {domains} to"))
        return
    for address, port, instance in resolver.endpoints(meta.get("namespace", "default"), svc, entry):
        for domain in domains:
            host, _, path = domain.partition("/")
            out.add(Registration(context_uri(host, "/" + path), address, port, instance, meta.get("uid", "")))


def desired_state(view: ClusterView, options: Options = Options()) -> DesiredState:
    """Every registration the cluster's objects ask for, and every reason something was not routed."""
    resolver = _Resolver(view, options)
    classes, default = our_classes(view, options.controller)
    registrations: set[Registration] = set()
    problems: list[Problem] = []
    routed: list[tuple[str, str]] = []
    for key, ing in sorted(view.ingresses.items()):
        if not is_ours(ing, classes, default):
            continue
        _ingress_routes(ing, resolver, registrations, problems)
        routed.append(key)
    for _key, svc in sorted(view.services.items()):
        _service_routes(svc, resolver, registrations, problems)
    return DesiredState(registrations, problems, routed)


def tls_secrets(view: ClusterView, options: Options = Options()) -> set[tuple[str, str]]:
    """(namespace, name) of every Secret named in spec.tls of an Ingress of our class."""
    classes, default = our_classes(view, options.controller)
    out: set[tuple[str, str]] = set()
    for (ns, _name), ing in view.ingresses.items():
        if is_ours(ing, classes, default):
            for tls in (ing.get("spec") or {}).get("tls") or []:
                if tls.get("secretName"):
                    out.add((ns, tls["secretName"]))
    return out
