"""`portico kube`: watch the cluster, publish routes on NATS, report back to Kubernetes. The I/O around
`portico.kube.desired.desired_state`, which decides everything.

Order at start (so a restarted controller causes no gap): list every watched kind first; only with a complete
view is the desired state computed and published. Nothing is unregistered at start: routes the previous
instance registered that are no longer wanted expire after their TTL (`stale_threshold_in_seconds`), and what
disappears while this instance runs is unregistered at once. Changes are coalesced: after a watch event the
desired state is recomputed once for everything that arrived meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes_asyncio import client, config

from portico.kube.desired import DEFAULT_CONTROLLER, ClusterView, DesiredState, Options, desired_state, tls_secrets
from portico.kube.leader import LeaderElector
from portico.kube.publisher import Publisher
from portico.kube.reflector import Reflector
from portico.kube.reporting import Reporter
from portico.kube.tlsdir import TlsDirectory

log = logging.getLogger("portico.kube")


@dataclass
class Settings:
    nats: list[str] = field(default_factory=lambda: ["nats://127.0.0.1:4222"])
    kubeconfig: str | None = None          # None: in-cluster when run in a Pod, else ~/.kube/config
    controller_name: str = DEFAULT_CONTROLLER
    pod_endpoints: bool = True
    publish_routes: bool = True            # False: only write TLS files (the traffic-node sidecar)
    publish_addresses: list[str] = field(default_factory=list)  # written to Ingress status.loadBalancer
    tls_dir: Path | None = None
    leader_election: bool = True
    lease_namespace: str = "default"
    lease_name: str = "portico-kube"
    identity: str = field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    register_interval: float = 20.0
    route_ttl: float = 120.0


async def api_client(kubeconfig: str | None) -> client.ApiClient:
    configuration = client.Configuration()
    if kubeconfig is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
        config.load_incluster_config(client_configuration=configuration)
    else:
        await config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    return client.ApiClient(configuration=configuration)


class Controller:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.options = Options(settings.controller_name, settings.pod_endpoints)
        self.dirty = asyncio.Event()
        self.publisher: Publisher | None = None
        self.reporter: Reporter | None = None
        self.elector: LeaderElector | None = None
        self.tls = TlsDirectory(settings.tls_dir) if settings.tls_dir else None
        self.reflectors: dict[str, Reflector] = {}
        self.syncs = 0
        self.ready = asyncio.Event()  # the first complete view was computed (and published when leading)
        self.report_due = asyncio.Event()
        self._latest: tuple[ClusterView, DesiredState] | None = None

    @property
    def leading(self) -> bool:
        return self.elector.is_leader if self.elector else self.settings.publish_routes

    def _reflectors(self, api: client.ApiClient) -> dict[str, Reflector]:
        networking, core = client.NetworkingV1Api(api), client.CoreV1Api(api)
        mark = self.dirty.set
        out = {
            "ingressclasses": Reflector("IngressClass", networking.list_ingress_class, mark),
            "ingresses": Reflector("Ingress", networking.list_ingress_for_all_namespaces, mark),
        }
        if self.settings.publish_routes:  # --no-routes (TLS files only) needs neither Services nor endpoints
            out["services"] = Reflector("Service", core.list_service_for_all_namespaces, mark)
        if self.settings.publish_routes and self.settings.pod_endpoints:
            out["endpointslices"] = Reflector(
                "EndpointSlice", client.DiscoveryV1Api(api).list_endpoint_slice_for_all_namespaces, mark)
        if self.tls is not None:
            out["secrets"] = Reflector("Secret", core.list_secret_for_all_namespaces, mark,
                                       field_selector="type=kubernetes.io/tls")
        return out

    def view(self) -> ClusterView:
        r = self.reflectors
        return ClusterView(
            ingress_classes={name: obj for (_ns, name), obj in r["ingressclasses"].store.items()},
            ingresses=r["ingresses"].store, services=r["services"].store if "services" in r else {},
            endpoint_slices=r["endpointslices"].store if "endpointslices" in r else {})

    async def run(self, stop: asyncio.Event) -> None:
        s = self.settings
        api = await api_client(s.kubeconfig)
        tasks: list[asyncio.Task[None]] = []
        loop = asyncio.get_running_loop()
        try:
            self.reflectors = self._reflectors(api)
            tasks += [loop.create_task(r.run(), name=f"kube:{name}") for name, r in self.reflectors.items()]
            synced = asyncio.gather(*(r.synced.wait() for r in self.reflectors.values()))
            stopped = loop.create_task(stop.wait())
            first: set[asyncio.Future[Any]] = {synced, stopped}
            await asyncio.wait(first, return_when=asyncio.FIRST_COMPLETED)
            if stop.is_set():
                synced.cancel()
                return
            log.info("listed %s", ", ".join(f"{len(r.store)} {r.kind}(s)" for r in self.reflectors.values()))
            if s.publish_routes:
                self.publisher = Publisher(s.nats, interval=s.register_interval, ttl=s.route_ttl)
                await self.publisher.start()
                self.reporter = Reporter(api, s.publish_addresses)
            await self._sync()  # a complete view before anything is published
            if s.publish_routes and s.leader_election:
                self.elector = LeaderElector(
                    api, s.lease_namespace, s.lease_name, s.identity, lease_duration=s.lease_duration,
                    renew_deadline=s.renew_deadline, retry_period=s.retry_period,
                    on_started=self._started_leading, on_stopped=self._stopped_leading)
                tasks.append(loop.create_task(self.elector.run(), name="kube:leader"))
            elif self.publisher is not None:
                await self._started_leading()
            self.ready.set()
            tasks.append(loop.create_task(self._sync_loop(), name="kube:sync"))
            tasks.append(loop.create_task(self._report_loop(), name="kube:report"))
            await stopped
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self.elector is not None and self.elector.is_leader:
                await self.elector.release()
            if self.publisher is not None:
                await self.publisher.stop()
            await api.close()

    async def _started_leading(self) -> None:
        assert self.publisher is not None
        await self.publisher.activate()
        self.dirty.set()  # report status and events now that this replica leads

    def _stopped_leading(self) -> None:
        if self.publisher is not None:
            self.publisher.deactivate()

    async def _sync_loop(self) -> None:
        while True:
            await self.dirty.wait()
            await asyncio.sleep(0)  # let events that arrived together land before computing once
            try:
                await self._sync()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("sync failed (NATS down?); trying again in 1s")
                await asyncio.sleep(1)
                self.dirty.set()

    async def _sync(self) -> None:
        self.dirty.clear()
        view = self.view()
        self.syncs += 1
        if self.tls is not None:
            self.tls.sync(tls_secrets(view, self.options), self.reflectors["secrets"].store)
        if self.publisher is not None:
            state = desired_state(view, self.options)
            await self.publisher.update(state.registrations)
            self._latest = (view, state)
            self.report_due.set()

    async def _report_loop(self) -> None:
        """Status and Events, off the publishing path: 1,000 status writes must not delay a route."""
        while True:
            await self.report_due.wait()
            self.report_due.clear()
            if self.reporter is None or self.publisher is None or not self.publisher.active or not self._latest:
                continue
            view, state = self._latest
            try:
                await self.reporter.report(dict(view.ingresses), state.routed_ingresses, state.problems)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("reporting status and events failed; trying again at the next change")
