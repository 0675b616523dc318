"""`portico up`: run the whole architecture on this machine (see portico/stack/up.py and docs/walkthrough.md).

    portico up                      # nats-server, etcd, 2 routers, confsync, HAProxy on 127.0.0.1:8080
    portico up --demo               # ... plus two demo apps behind demo.portico.local
    portico up --nats nats://10.0.0.2:4222 --etcd http://10.0.0.3:2379   # use existing servers
    portico up --ports auto         # free ports everywhere (tests, or when the defaults are taken)

Exit status: 0 after Ctrl-C / SIGTERM, 1 when a part fails to start or a vital part dies.
"""

from __future__ import annotations

from pathlib import Path

import typer


def up(
    routers: int = typer.Option(2, "--routers", "-n", min=1, max=50, help="Number of routers."),
    front_port: int | None = typer.Option(
        None, "--front-port", min=1, max=65535,
        help="HAProxy's front port on 127.0.0.1 (default 8080; 80 needs privileges)."),
    nats: str | None = typer.Option(
        None, "--nats", help="Use this NATS (nats://host:port or nats://user:pass@host:port, comma-separated) "
                             "instead of starting one."),
    etcd: str | None = typer.Option(
        None, "--etcd", help="Use this etcd (http://host:port, comma-separated) instead of starting one."),
    demo: bool = typer.Option(False, "--demo", help="Also run two demo apps behind demo.portico.local."),
    workdir: Path | None = typer.Option(
        None, "--workdir", help="Where configs, logs and state.json go (default: a new temp dir)."),
    base_port: int = typer.Option(
        8100, "--base-port", min=3, max=64000,
        help="Router i uses base+10(i-1) (proxy), +1 (status), +2 (routes); confsync status base-1, "
             "HAProxy stats base-2, demo apps base+901, base+902."),
    ports: str = typer.Option("fixed", "--ports", help="'fixed' (documented defaults) or 'auto' (free ports "
                                                       "for everything not given)."),
    restart: bool = typer.Option(False, "--restart", help="Restart parts that exit (routers, apps, registrar, "
                                                           "confsync, the embedded nats-server and etcd)."),
    prefix: str = typer.Option("/portico", "--prefix", help="etcd prefix where routers announce themselves."),
    lease_ttl: float = typer.Option(5.0, "--lease-ttl", min=1.0,
                                    help="Seconds a dead router's etcd key outlives it."),
) -> None:
    from portico.stack.plan import UpOptions
    from portico.stack.up import run_up

    if ports not in ("fixed", "auto"):
        typer.echo("portico up: --ports must be 'fixed' or 'auto'", err=True)
        raise typer.Exit(2)
    opts = UpOptions(routers=routers, front_port=front_port, nats_url=nats, etcd_url=etcd, demo=demo,
                     workdir=workdir, base_port=base_port, auto_ports=ports == "auto", restart=restart,
                     prefix=prefix.rstrip("/") or "/portico", lease_ttl=lease_ttl)
    raise typer.Exit(run_up(opts))
