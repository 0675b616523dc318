"""What the controller tells Kubernetes: Ingress status.loadBalancer and Events explaining what was not routed.

Both are written by the leader only, after the routes are published (never in their way). An Event is created
once per (object, reason, message) while the problem lasts, so `kubectl describe ingress NAME` shows why a rule
is not routed without an Event storm on every resync; when the problem goes away and comes back, it is told
again.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from kubernetes_asyncio import client

from portico.kube.desired import Problem

log = logging.getLogger("portico.kube")
COMPONENT = "portico-kube"


def load_balancer_entries(addresses: Iterable[str]) -> list[dict[str, str]]:
    """status.loadBalancer.ingress entries: {"ip": ...} for addresses, {"hostname": ...} for names."""
    out = []
    for address in addresses:
        try:
            ipaddress.ip_address(address)
            out.append({"ip": address})
        except ValueError:
            out.append({"hostname": address})
    return out


class Reporter:
    def __init__(self, api: client.ApiClient, publish_addresses: list[str]) -> None:
        self.networking = client.NetworkingV1Api(api)
        self.core = client.CoreV1Api(api)
        self.entries = load_balancer_entries(publish_addresses)
        self.told: set[tuple[str, str, str]] = set()
        self.events_created = 0
        self.status_writes = 0

    async def report(self, ingresses: Mapping[tuple[str, str], Mapping[str, Any]],
                     routed: list[tuple[str, str]], problems: list[Problem]) -> None:
        if self.entries:
            for key in routed:
                ing = ingresses.get(key)
                if ing is not None:
                    await self._write_status(ing)
        current = {(p.uid, p.reason, p.message) for p in problems}
        for problem in problems:
            if (problem.uid, problem.reason, problem.message) not in self.told:
                await self._event(problem)
        self.told = current

    async def _write_status(self, ing: Mapping[str, Any]) -> None:
        status = ((ing.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        have = [{k: v for k, v in entry.items() if k in ("ip", "hostname")} for entry in status]
        if have == self.entries:
            return
        meta = ing.get("metadata") or {}
        body = {"status": {"loadBalancer": {"ingress": self.entries}}}
        try:
            await self.networking.patch_namespaced_ingress_status(
                meta["name"], meta["namespace"], body,
                _content_type="application/merge-patch+json")  # type: ignore[call-arg]  # the client takes it
            self.status_writes += 1
        except Exception as exc:
            log.warning("could not write the status of Ingress %s/%s: %s", meta.get("namespace"),
                        meta.get("name"), exc)

    async def _event(self, problem: Problem) -> None:
        now = dt.datetime.now(dt.UTC)
        api_version = "networking.k8s.io/v1" if problem.kind == "Ingress" else "v1"
        event = client.CoreV1Event(
            metadata=client.V1ObjectMeta(name=f"{problem.name}.{uuid.uuid4().hex[:12]}",
                                         namespace=problem.namespace),
            involved_object=client.V1ObjectReference(kind=problem.kind, namespace=problem.namespace,
                                                     name=problem.name, uid=problem.uid,
                                                     api_version=api_version),
            reason=problem.reason, message=problem.message, type="Warning", count=1,
            first_timestamp=now, last_timestamp=now, source=client.V1EventSource(component=COMPONENT),
            reporting_component=COMPONENT, reporting_instance=COMPONENT)
        try:
            await self.core.create_namespaced_event(problem.namespace, event)
            self.events_created += 1
            log.warning("%s %s/%s not fully routed: %s: %s", problem.kind, problem.namespace, problem.name,
                        problem.reason, problem.message)
        except Exception as exc:
            log.warning("could not create an Event for %s %s/%s: %s", problem.kind, problem.namespace,
                        problem.name, exc)
