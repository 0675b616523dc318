"""The `portico` command: one typer app, one module per subcommand."""

from __future__ import annotations

import typer

from portico.cli import (
    confsync_cmd,
    kube_cmd,
    register_cmd,
    registrar_cmd,
    router_cmd,
    routes_cmd,
    status_cmd,
    up_cmd,
)

app = typer.Typer(
    name="portico",
    help="Portico: a fast, gorouter-compatible traffic entrance for container clouds.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("router", help="Run a router: a drop-in for gorouter, configured by gorouter's YAML file.")(
    router_cmd.router)
app.command("register", help="Publish a route registration on NATS (router.register).")(register_cmd.register)
app.command("unregister", help="Publish a route removal on NATS (router.unregister).")(register_cmd.unregister)
app.command("routes", help="Show a router's route table, read from its /routes endpoint.")(routes_cmd.routes)
app.command("status", help="One router's health, NATS, table size, rates and worst routes (or --json).")(
    status_cmd.status)
app.command("top", help="A live terminal view of a router's busiest routes.")(status_cmd.top)
app.command("confsync", help="A confd drop-in: confd's flags (-backend etcdv3 -watch ...) and Go templates; "
            "render from etcd, redis, zookeeper, env or files, check, write atomically, reload.")(
    confsync_cmd.confsync)
app.command("registrar", help="Keep routes registered while their health checks pass.")(registrar_cmd.registrar)
app.command("kube", help="Kubernetes controller: Ingresses and Services become routes on NATS.")(kube_cmd.kube)
app.command("up", help="Run the whole architecture on this machine: NATS, etcd, routers, confsync, HAProxy.")(
    up_cmd.up)


def main() -> None:
    import sys

    args = sys.argv[1:]
    if args and args[0] == "confsync":   # confd's single-dash flags (-backend etcdv3 -watch) work unchanged
        args = ["confsync", *confsync_cmd.confd_argv(args[1:])]
    app(args=args)
