"""`portico confsync`: confd's command line, spelled confd's way or with double dashes; see docs/confsync.md.

confd uses Go's flag package: `-backend etcdv3 -node http://127.0.0.1:2379 -watch -onetime=true`. Click (under
typer) only takes long options with two dashes, so `confd_argv` rewrites a confsync command line before typer
parses it; a systemd unit or container command that ran confd then only swaps the binary name.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import typer

from portico.confsync.resources import ConfsyncConfig, ResourceError, default_config_file

BOOL_FLAGS = {"watch", "onetime", "noop", "sync-only", "keep-stage-file", "basic-auth", "client-insecure",
              "version"}
VALUE_FLAGS = {"backend", "confdir", "config-file", "file", "filter", "interval", "log-level", "node", "prefix",
               "separator", "password", "username", "client-key", "client-cert", "client-ca-keys", "auth-token",
               "auth-type", "app-id", "user-id", "role-id", "secret-id", "path", "table", "scheme", "srv-domain",
               "srv-record", "status-port"}
# Accepted so that confd command lines parse, but meaningless for the backends Portico has.
IGNORED_FLAGS = ("auth_token", "auth_type", "app_id", "user_id", "role_id", "secret_id", "path", "table",
                 "scheme", "basic_auth", "client_insecure")


def confd_argv(args: list[str]) -> list[str]:
    """Rewrite Go-flag spellings to click's: `-flag` -> `--flag`, `-flag=v` -> `--flag=v`, `-bool=false` ->
    `--no-bool`. A value after a flag that takes one is left alone, even if it starts with a dash."""
    out: list[str] = []
    expect_value = False
    for arg in args:
        if expect_value:
            out.append(arg)
            expect_value = False
            continue
        if arg == "--":
            out.append(arg)
            expect_value = False
            continue
        if arg in ("-h", "-help"):
            out.append("--help")
            continue
        if arg.startswith("-") and len(arg) > 2:
            name, eq, value = arg.lstrip("-").partition("=")
            if name in BOOL_FLAGS:
                if eq and value.lower() in ("false", "0", "f"):
                    out.append(f"--no-{name}")
                else:
                    out.append(f"--{name}")
                continue
            if name in VALUE_FLAGS:
                out.append(f"--{name}={value}" if eq else f"--{name}")
                expect_value = not eq
                continue
        out.append(arg)
    return out


def _log_level(name: str) -> str:
    """confd's logrus levels (debug, info, warn, error, fatal, panic) as Python's."""
    level = {"warn": "WARNING", "fatal": "CRITICAL", "panic": "CRITICAL"}.get(name.lower(), name.upper())
    return level if level in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL") else "INFO"


def confsync(
    confdir: Path | None = typer.Option(None, "--confdir", help="confd conf directory (default /etc/confd)"),
    config_file: Path | None = typer.Option(None, "--config-file", help="confd.toml (default <confdir>/confd.toml)"),
    backend: str | None = typer.Option(None, "--backend", help="etcd/etcdv3, redis, zookeeper, env or file"),
    node: list[str] | None = typer.Option(None, "--node", help="backend node, repeatable"),
    prefix: str | None = typer.Option(None, "--prefix", help="key path prefix (default /)"),
    interval: float | None = typer.Option(None, "--interval", help="polling interval in seconds (default 600)"),
    watch: bool | None = typer.Option(None, "--watch/--no-watch", help="watch the backend instead of polling"),
    onetime: bool | None = typer.Option(None, "--onetime/--no-onetime", help="run once and exit"),
    noop: bool | None = typer.Option(None, "--noop/--no-noop", help="only show pending changes (a diff)"),
    sync_only: bool | None = typer.Option(None, "--sync-only/--no-sync-only",
                                             help="sync without check_cmd and reload_cmd"),
    keep_stage_file: bool | None = typer.Option(None, "--keep-stage-file/--no-keep-stage-file",
                                                   help="keep staged files"),
    log_level: str | None = typer.Option(None, "--log-level", help="debug, info, warn, error (default info)"),
    file: list[str] | None = typer.Option(None, "--file", help="YAML file or folder (file backend), repeatable"),
    filter_: str | None = typer.Option(None, "--filter", help="file names read in --file folders (default *)"),
    separator: str | None = typer.Option(None, "--separator", help="redis: replaces / in keys"),
    username: str | None = typer.Option(None, "--username", help="etcd user"),
    password: str | None = typer.Option(None, "--password", help="etcd or redis password"),
    client_key: str | None = typer.Option(None, "--client-key",
                                          help="etcd: client key file; redis: the password (as confd)"),
    client_cert: str | None = typer.Option(None, "--client-cert", help="etcd: client certificate file"),
    client_ca_keys: str | None = typer.Option(None, "--client-ca-keys",
                                              help="etcd: CA file verifying etcd's certificate"),
    srv_domain: str | None = typer.Option(None, "--srv-domain", hidden=True),
    srv_record: str | None = typer.Option(None, "--srv-record", hidden=True),
    auth_token: str | None = typer.Option(None, "--auth-token", hidden=True),
    auth_type: str | None = typer.Option(None, "--auth-type", hidden=True),
    app_id: str | None = typer.Option(None, "--app-id", hidden=True),
    user_id: str | None = typer.Option(None, "--user-id", hidden=True),
    role_id: str | None = typer.Option(None, "--role-id", hidden=True),
    secret_id: str | None = typer.Option(None, "--secret-id", hidden=True),
    path: str | None = typer.Option(None, "--path", hidden=True),
    table: str | None = typer.Option(None, "--table", hidden=True),
    scheme: str | None = typer.Option(None, "--scheme", hidden=True),
    basic_auth: bool | None = typer.Option(None, "--basic-auth/--no-basic-auth", hidden=True),
    client_insecure: bool | None = typer.Option(None, "--client-insecure/--no-client-insecure", hidden=True),
    version: bool = typer.Option(False, "--version/--no-version", help="print the version and exit"),
    status_port: int | None = typer.Option(None, "--status-port", help="serve JSON status on 127.0.0.1:PORT"),
) -> None:
    from portico.confsync.service import EXIT_CONFIG, serve

    if version:
        from importlib.metadata import version as package_version
        typer.echo(f"portico confsync {package_version('portico')} (confd-compatible)")
        raise typer.Exit(0)
    config = ConfsyncConfig()
    cfg_path = config_file or default_config_file(confdir)
    try:
        if cfg_path is not None:
            config.apply_toml(cfg_path)
    except ResourceError as exc:
        typer.echo(f"confsync: {exc}", err=True)
        raise typer.Exit(EXIT_CONFIG) from None
    overrides = {"confdir": confdir, "backend": backend, "nodes": node or None, "prefix": prefix,
                 "interval": interval, "watch": watch, "onetime": onetime, "noop": noop,
                 "sync_only": sync_only, "keep_stage_file": keep_stage_file, "log_level": log_level,
                 "files": file or None, "file_filter": filter_, "separator": separator, "username": username,
                 "password": password, "client_key": client_key, "client_cert": client_cert,
                 "client_ca_keys": client_ca_keys, "status_port": status_port}
    for name, value in overrides.items():
        if value is not None:
            setattr(config, name, value)
    logging.basicConfig(level=_log_level(config.log_level), format="%(asctime)s confsync %(levelname)s %(message)s")
    log = logging.getLogger("portico.confsync")
    refused = {"--srv-domain": srv_domain, "--srv-record": srv_record}
    for flag, value in refused.items():
        if value:
            log.error("%s is not supported by portico confsync (nodes are given with --node); see "
                      "docs/confsync.md", flag)
            raise typer.Exit(EXIT_CONFIG)
    if config.backend in ("etcd", "etcdv3") and bool(config.client_cert) != bool(config.client_key):
        log.error("etcd TLS client authentication needs both --client-cert and --client-key")
        raise typer.Exit(EXIT_CONFIG)
    ignored = {"auth_token": auth_token, "auth_type": auth_type, "app_id": app_id, "user_id": user_id,
               "role_id": role_id, "secret_id": secret_id, "path": path, "table": table, "scheme": scheme,
               "basic_auth": basic_auth, "client_insecure": client_insecure}
    for name, value in ignored.items():
        if value:
            log.warning("-%s is accepted for confd compatibility and ignored (it applies to backends Portico "
                        "does not have)", name.replace("_", "-"))
    raise typer.Exit(asyncio.run(serve(config)))
