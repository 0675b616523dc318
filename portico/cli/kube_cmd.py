"""`portico kube`: the Kubernetes controller (Ingresses, annotated Services, EndpointSlices -> NATS routes)."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from pathlib import Path

import typer

log = logging.getLogger("portico.kube")


def kube(
    nats: list[str] = typer.Option(["nats://127.0.0.1:4222"], "--nats", help="NATS URL (repeat for several)."),
    kubeconfig: str = typer.Option("", "--kubeconfig", envvar="KUBECONFIG",
                                   help="kubeconfig file; default: in-cluster in a Pod, else ~/.kube/config."),
    controller_name: str = typer.Option("portico.io/ingress-controller", "--controller-name",
                                        help="spec.controller of the IngressClasses this controller serves."),
    endpoints: str = typer.Option("pods", "--endpoints",
                                  help="pods: route to ready pod addresses from EndpointSlices; "
                                       "cluster-ip: route to the Service's cluster IP and port."),
    publish_address: list[str] = typer.Option([], "--publish-address",
                                              help="IP or hostname written to Ingress status.loadBalancer "
                                                   "(repeat for several; none: status is not written)."),
    tls_dir: Path | None = typer.Option(None, "--tls-dir",
                                        help="write the certificates of Ingress spec.tls Secrets here "
                                             "(the router's tls_cert_dir)."),
    routes: bool = typer.Option(True, "--routes/--no-routes",
                                help="--no-routes: publish nothing, only keep --tls-dir up to date."),
    leader_election: bool = typer.Option(True, "--leader-election/--no-leader-election",
                                         help="only the holder of a coordination.k8s.io Lease publishes."),
    lease_namespace: str = typer.Option("default", "--lease-namespace", envvar="POD_NAMESPACE"),
    lease_name: str = typer.Option("portico-kube", "--lease-name"),
    identity: str = typer.Option("", "--identity", envvar="POD_NAME",
                                 help="this replica's name in the Lease (default: host name and pid)."),
    lease_duration: float = typer.Option(15.0, "--lease-duration", help="seconds; failover happens within it."),
    renew_deadline: float = typer.Option(10.0, "--renew-deadline"),
    retry_period: float = typer.Option(2.0, "--retry-period"),
    register_interval: float = typer.Option(20.0, "--register-interval",
                                            help="seconds between re-registrations (routers may ask for more)."),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    try:
        from portico.kube.controller import Controller, Settings
    except ImportError as exc:
        print(f"portico kube needs the kube extra: pip install 'portico[kube]' ({exc})", file=sys.stderr)
        raise typer.Exit(2) from None
    if endpoints not in ("pods", "cluster-ip"):
        print(f"portico kube: --endpoints: expected pods or cluster-ip, got {endpoints!r}", file=sys.stderr)
        raise typer.Exit(2)
    if not routes and tls_dir is None:
        print("portico kube: --no-routes without --tls-dir would do nothing", file=sys.stderr)
        raise typer.Exit(2)
    settings = Settings(nats=list(nats), kubeconfig=kubeconfig or None, controller_name=controller_name,
                        pod_endpoints=endpoints == "pods", publish_routes=routes,
                        publish_addresses=list(publish_address), tls_dir=tls_dir,
                        leader_election=leader_election, lease_namespace=lease_namespace,
                        lease_name=lease_name, lease_duration=lease_duration, renew_deadline=renew_deadline,
                        retry_period=retry_period, register_interval=register_interval)
    if identity:
        settings.identity = identity
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    for noisy in ("nats", "kubernetes_asyncio", "aiohttp"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    asyncio.run(_main(Controller(settings)))


async def _main(controller) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await controller.run(stop)
    log.info("stopped")
