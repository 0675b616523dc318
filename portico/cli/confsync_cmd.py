"""`portico confsync`: confd's flags and meanings, plus --status-port and --file; see docs/confsync.md."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import typer

from portico.confsync.resources import ConfsyncConfig, ResourceError, default_config_file


def confsync(
    confdir: Path | None = typer.Option(None, "--confdir", help="confd conf directory (default /etc/confd)"),
    config_file: Path | None = typer.Option(None, "--config-file", help="confd.toml (default <confdir>/confd.toml)"),
    backend: str | None = typer.Option(None, "--backend", help="etcd, env or file (default etcd)"),
    node: list[str] | None = typer.Option(None, "--node", help="backend node, repeatable"),
    prefix: str | None = typer.Option(None, "--prefix", help="key path prefix (default /)"),
    interval: float | None = typer.Option(None, "--interval", help="polling interval in seconds (default 600)"),
    watch: bool | None = typer.Option(None, "--watch", help="watch etcd instead of polling"),
    onetime: bool | None = typer.Option(None, "--onetime", help="run once and exit (exit 1 on failure)"),
    noop: bool | None = typer.Option(None, "--noop", help="only show pending changes (a diff)"),
    sync_only: bool | None = typer.Option(None, "--sync-only", help="sync without check_cmd and reload_cmd"),
    keep_stage_file: bool | None = typer.Option(None, "--keep-stage-file", help="keep staged files"),
    log_level: str | None = typer.Option(None, "--log-level", help="debug, info, warning, error (default info)"),
    file: list[str] | None = typer.Option(None, "--file", help="YAML file for the file backend, repeatable"),
    status_port: int | None = typer.Option(None, "--status-port", help="serve JSON status on 127.0.0.1:PORT"),
) -> None:
    from portico.confsync.service import EXIT_CONFIG, serve

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
                 "files": file or None, "status_port": status_port}
    for name, value in overrides.items():
        if value is not None:
            setattr(config, name, value)
    logging.basicConfig(level=config.log_level.upper() if config.log_level.upper() in
                        ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL") else "INFO",
                        format="%(asctime)s confsync %(levelname)s %(message)s")
    raise typer.Exit(asyncio.run(serve(config)))
