"""`portico routes`: fetch a router's /routes and show it as a table (or raw JSON with --json).

urllib is enough here: one request from a CLI, nowhere near the hot path. Where to ask comes from, first to
last: --url, then -c (the router's own gorouter.yml), then http://127.0.0.1:8082. Credentials: --user/--password,
else the URL's user:pass@, else the config file's status.user/status.pass.
"""

from __future__ import annotations

import base64
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import BinaryIO

import typer

DEFAULT_URL = "http://127.0.0.1:8082"


def _fail(message: str) -> typer.Exit:
    print(f"portico routes: {message}", file=sys.stderr)
    return typer.Exit(1)


def _from_config(path: str) -> tuple[str, str, str]:
    """URL and credentials of the router configured by `path`."""
    from portico.config.loader import ConfigError, load_config  # only needed with -c

    try:
        config = load_config(path)
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    except OSError as exc:
        raise _fail(f"cannot read {path}: {exc.strerror or exc}") from None
    status = config.status
    if status.routes_port is not None:
        url = f"http://127.0.0.1:{status.routes_port}"
    else:
        host = "127.0.0.1" if status.host in ("", "0.0.0.0", "::") else status.host
        url = f"http://{host}:{status.port}"
    return url, status.user, status.password


def _split_url(url: str) -> tuple[str, str, str]:
    """(URL without credentials and with /routes as its path, user, password)."""
    if "://" not in url:
        url = "http://" + url
    parts = urllib.parse.urlsplit(url)
    user = urllib.parse.unquote(parts.username or "")
    password = urllib.parse.unquote(parts.password or "")
    netloc = parts.hostname or ""
    if ":" in netloc:
        netloc = f"[{netloc}]"
    if parts.port:
        netloc += f":{parts.port}"
    path = parts.path if parts.path not in ("", "/") else "/routes"
    return urllib.parse.urlunsplit((parts.scheme, netloc, path, parts.query, "")), user, password


def fetch_routes(url: str, user: str, password: str, timeout: float = 10.0, copy_to: BinaryIO | None = None
                 ) -> bytes:
    """GET the /routes body, or raise typer.Exit(1) after one line on stderr.

    With `copy_to` the body is copied there as it arrives (a 1M-route table is hundreds of MB) and only its
    last byte is returned.
    """
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    if user or password:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            if copy_to is None:
                return response.read()
            last = b""
            while chunk := response.read(1 << 16):
                copy_to.write(chunk)
                last = chunk[-1:]
            return last
    except urllib.error.HTTPError as exc:
        hint = " (check --user/--password)" if exc.code == 401 else ""
        raise _fail(f"{url} answered {exc.code} {exc.reason}{hint}") from None
    except urllib.error.URLError as exc:
        reason = getattr(exc.reason, "strerror", None) or exc.reason
        raise _fail(f"cannot reach {url}: {reason}") from None
    except (OSError, ValueError) as exc:
        raise _fail(f"cannot reach {url}: {exc}") from None


def _tags_text(tags) -> str:
    if not tags:
        return ""
    return " ".join(f"{k}={v}" for k, v in sorted(tags.items()))


def print_table(routes: dict) -> None:
    """One row per endpoint, routes sorted; a route's name is shown on its first row only."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(show_lines=False, header_style="bold")
    for column in ("route", "address", "tls", "ttl", "instance", "tags"):
        table.add_column(column, overflow="fold")
    endpoints = 0
    for route in sorted(routes):
        for i, ep in enumerate(routes[route] or []):
            endpoints += 1
            extra = []
            for key in ("route_service_url", "isolation_segment", "server_cert_domain_san"):
                if ep.get(key):
                    extra.append(f"{key}={ep[key]}")
            cells = (
                route if i == 0 else "",
                str(ep.get("address", "")),
                "yes" if ep.get("tls") else "no",
                str(ep.get("ttl", "")),
                str(ep.get("private_instance_id", "")),
                " ".join(filter(None, [_tags_text(ep.get("tags")), *extra])),
            )
            table.add_row(*(Text(cell) for cell in cells))  # Text: route names are data, not rich markup
    console = Console()
    console.print(table)
    console.print(f"{len(routes)} routes, {endpoints} endpoints")


def routes(
    url: str | None = typer.Option(None, "--url", help=f"Router's routes endpoint (default {DEFAULT_URL})."),
    user: str | None = typer.Option(None, "--user", "-u", help="Basic auth user (status.user)."),
    password: str | None = typer.Option(None, "--password", "-p", help="Basic auth password (status.pass)."),
    config: str | None = typer.Option(None, "--config", "-c", help="Read URL and credentials from gorouter.yml."),
    as_json: bool = typer.Option(False, "--json", help="Print the raw /routes JSON."),
) -> None:
    conf_user = conf_password = ""
    if config:
        conf_url, conf_user, conf_password = _from_config(config)
        url = url or conf_url
    target, url_user, url_password = _split_url(url or DEFAULT_URL)
    if user is None and password is None:
        user, password = (url_user, url_password) if (url_user or url_password) else (conf_user, conf_password)
    if as_json:
        out = sys.stdout.buffer
        if fetch_routes(target, user or "", password or "", copy_to=out) != b"\n":
            out.write(b"\n")
        out.flush()
        return
    body = fetch_routes(target, user or "", password or "")
    try:
        data = json.loads(body)
    except ValueError:
        raise _fail(f"{target} did not answer JSON") from None
    if not isinstance(data, dict):
        raise _fail(f"{target} did not answer a route table")
    print_table(data)
