"""`portico router -c gorouter.yml`: run a router (or N worker processes sharing the port)."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import typer


def router(
    config: Path = typer.Option(..., "-c", "--config", help="gorouter YAML config file."),
    workers: int = typer.Option(0, "--workers", help="Processes sharing the proxy port (SO_REUSEPORT); "
                                "0 takes `workers` from the file (default 1)."),
    worker_index: int = typer.Option(-1, "--worker-index", hidden=True),
    ready_fd: int = typer.Option(-1, "--ready-fd", hidden=True),
    stats_dir: Path = typer.Option(None, "--stats-dir", hidden=True),
    log_level: str = typer.Option("", "--log-level", help="Override logging.level from the file."),
    log_format: str = typer.Option("auto", "--log-format",
                                   help="json (gorouter's JSON lines), text, or auto: text on a terminal, "
                                   "JSON otherwise."),
    print_config: bool = typer.Option(False, "--print-config",
                                      help="Print the settings read from the file (secrets as ***) and exit."),
) -> None:
    from portico.config.loader import ConfigError, load_config
    from portico.logs import setup_logging

    try:
        settings = load_config(config)
    except ConfigError as exc:
        typer.echo(f"portico router: {exc}", err=True)
        raise typer.Exit(2) from None
    if workers:
        settings = dataclasses.replace(settings, workers=workers)
    if print_config:
        import yaml

        from portico.config.redact import config_dump

        typer.echo(yaml.safe_dump(config_dump(settings), sort_keys=False), nl=False)
        raise typer.Exit(0)
    from portico.logs import FORMATS

    if log_format not in FORMATS:
        typer.echo(f"portico router: --log-format must be one of {', '.join(FORMATS)}", err=True)
        raise typer.Exit(2)
    prefix = f"[w{worker_index}] " if worker_index >= 0 else ""
    logging_settings = settings.logging
    setup_logging(log_level or logging_settings.level, logging_settings.file, prefix, fmt=log_format,
                  timestamp=logging_settings.timestamp_format, source=logging_settings.syslog,
                  worker=worker_index if worker_index >= 0 else None)
    _log_settings(settings)

    if worker_index < 0 and settings.pid_file:
        _write_pid_file(settings.pid_file)
    if settings.workers > 1 and worker_index < 0:
        from portico.workers import supervise_workers

        raise typer.Exit(supervise_workers(config, settings, log_level, log_format))

    import uvloop

    from portico.router_app import RouterApp

    index = max(worker_index, 0)
    app = RouterApp(settings, serve_status=index == 0, reuse_port=settings.workers > 1, worker_index=index,
                    ready_fd=ready_fd, stats_dir=stats_dir)
    try:
        code = uvloop.run(app.run())
    except OSError as exc:
        typer.echo(f"portico router: {exc}", err=True)
        code = 1
    sys.exit(code)


def _write_pid_file(path: str) -> None:
    """pid_file: this process's id, removed again at exit (if it is still ours)."""
    import atexit
    import os

    pid = str(os.getpid())
    try:
        Path(path).write_text(pid + "\n")
    except OSError as exc:
        typer.echo(f"portico router: pid_file: cannot write {path}: {exc.strerror or exc}", err=True)
        raise typer.Exit(2) from None

    def remove() -> None:
        try:
            if Path(path).read_text().strip() == pid:
                Path(path).unlink()
        except OSError:
            pass

    atexit.register(remove)


def _log_settings(settings) -> None:
    """The effective settings at debug level, secrets masked: what the router really read from the file."""
    import logging

    log = logging.getLogger("portico.router")
    if log.isEnabledFor(logging.DEBUG):
        import json

        from portico.config.redact import config_dump

        log.debug("settings: %s", json.dumps(config_dump(settings), separators=(",", ":")))
