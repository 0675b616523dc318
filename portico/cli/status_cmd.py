"""`portico status` and `portico top`: one router's state, read from its /dashboard/state, for a terminal.

`status` prints health, NATS, the table's size, rates and latencies over the last 10 s and the worst routes,
as rich tables or `--json`; it exits 2 when the router is not healthy or not connected to NATS, so scripts can
use it. `top` redraws the busiest routes in place (rich Live) until Ctrl-C. Where to ask and with which
credentials is found as for `portico routes`: --url, else -c (the router's gorouter.yml), else
http://127.0.0.1:8082.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from typing import Any

import typer
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from portico.cli.routes_cmd import DEFAULT_URL, _from_config, _split_url, fetch_routes

UrlOption = typer.Option(None, "--url", help="The router's routes/status address, e.g. "
                         "http://admin:pass@127.0.0.1:8082 (default: from -c, else http://127.0.0.1:8082).")
UserOption = typer.Option(None, "--user", help="Basic auth user (default: from the URL or -c).")
PasswordOption = typer.Option(None, "--password", help="Basic auth password (default: from the URL or -c).")
ConfigOption = typer.Option(None, "-c", "--config", help="The router's gorouter.yml: port and credentials.")


def _source(url: str | None, user: str | None, password: str | None, config: str | None) -> tuple[str, str, str]:
    """(base URL with /dashboard/state as its path, user, password)."""
    conf_url, conf_user, conf_password = _from_config(config) if config else (DEFAULT_URL, "", "")
    full, url_user, url_password = _split_url(url or conf_url)
    parts = urllib.parse.urlsplit(full)
    state_url = urllib.parse.urlunsplit((parts.scheme, parts.netloc, "/dashboard/state", "", ""))
    return (state_url, user if user is not None else (url_user or conf_user),
            password if password is not None else (url_password or conf_password))


def fetch_state(state_url: str, user: str, password: str, route_filter: str = "") -> dict[str, Any]:
    url = state_url + ("?" + urllib.parse.urlencode({"q": route_filter}) if route_filter else "")
    return dict(json.loads(fetch_routes(url, user, password, timeout=5.0)))


def ms(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds * 1000:.2f} ms" if seconds < 1 else f"{seconds:.2f} s"


def ago(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    return f"{seconds:.0f} s ago" if seconds < 120 else f"{seconds / 60:.0f} min ago"


def worst_routes(state: dict[str, Any], count: int) -> list[dict[str, Any]]:
    """The busiest routes ordered worst first: by 5xx rate, then p99."""
    routes = [r for r in state["routes"] if r["requests_per_sec"] > 0 or r["error_rate"] > 0]
    return sorted(routes, key=lambda r: (-r["error_rate"], -r["p99"], r["route"]))[:count]


def _routes_table(title: str, routes: list[dict[str, Any]]) -> Table:
    table = Table(title=title, title_justify="left", header_style="bold", expand=False)
    for name, justify in (("route", "left"), ("req/s", "right"), ("5xx", "right"), ("p50", "right"),
                          ("p99", "right"), ("total", "right")):
        table.add_column(name, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for r in routes:
        table.add_row(r["route"], f"{r['requests_per_sec']:.1f}",
                      Text(f"{r['error_rate'] * 100:.1f} %", style="red" if r["error_rate"] > 0.01 else ""),
                      ms(r["p50"]), ms(r["p99"]), str(r["requests"]))
    if not routes:
        table.add_row(Text("no traffic in the last 10 s", style="dim"), "", "", "", "", "")
    return table


def _summary(state: dict[str, Any]) -> Table:
    router, now = state["router"], state["now"]
    healthy = router["phase"] == "healthy"
    table = Table(show_header=False, box=None, padding=(0, 2))
    table.add_column(style="dim")
    table.add_column()
    table.add_column(style="dim")
    table.add_column()
    table.add_row("health", Text(router["phase"], style="green" if healthy else "red"),
                  "requests/s", f"{now['requests_per_sec']:.1f}")
    table.add_row("NATS", Text("connected" if router["nats_connected"] else "disconnected",
                               style="green" if router["nats_connected"] else "red"),
                  "5xx rate", Text(f"{now['error_rate'] * 100:.2f} %", style="red" if now["error_rate"] > 0.01 else ""))
    table.add_row("last registration", ago(router["since_registry_update"]), "p50 / p99",
                  f"{ms(now['p50'])} / {ms(now['p99'])}")
    table.add_row("routes / endpoints", f"{router['routes']} / {router['endpoints']}", "backend p99",
                  ms(now["backend_p99"]))
    table.add_row("workers", str(router["workers"]), "open connections", str(router["open_connections"]))
    return table


def status(
    url: str = UrlOption, user: str = UserOption, password: str = PasswordOption, config: str = ConfigOption,
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
    worst: int = typer.Option(5, "--worst", help="How many of the worst routes to show."),
) -> None:
    state_url, u, p = _source(url, user, password, config)
    state = fetch_state(state_url, u, p)
    router = state["router"]
    ok = router["phase"] == "healthy" and router["nats_connected"]
    if as_json:
        out = {"router": router, "now": state["now"], "worst_routes": worst_routes(state, worst)}
        typer.echo(json.dumps(out, indent=2))
    else:
        console = Console(highlight=False)
        console.print(Text(f"router {router['id']}", style="bold"))
        console.print(_summary(state))
        console.print(_routes_table("Worst routes (last 10 s)", worst_routes(state, worst)))
    if not ok:
        raise typer.Exit(2)


def top(
    url: str = UrlOption, user: str = UserOption, password: str = PasswordOption, config: str = ConfigOption,
    interval: float = typer.Option(1.0, "--interval", help="Seconds between redraws."),
    route_filter: str = typer.Option("", "--filter", help="Only routes whose key contains this text."),
    count: int = typer.Option(20, "--count", help="How many routes to list."),
) -> None:
    from rich.live import Live

    state_url, u, p = _source(url, user, password, config)

    def frame() -> Group:
        try:
            state = fetch_state(state_url, u, p, route_filter)
        except typer.Exit:
            return Group(Text(f"cannot read {state_url}; retrying", style="red"))
        title = "Busiest routes (last 10 s)" + (f" matching '{route_filter}'" if route_filter else "")
        header = Text(f"router {state['router']['id']}   {time.strftime('%H:%M:%S')}   Ctrl-C to quit",
                      style="bold")
        return Group(header, _summary(state), _routes_table(title, state["routes"][:count]))

    try:
        with Live(frame(), refresh_per_second=4, screen=False) as live:
            while True:
                time.sleep(max(interval, 0.2))
                live.update(frame())
    except KeyboardInterrupt:
        pass
