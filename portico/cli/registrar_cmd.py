"""`portico registrar -c registrar.yml`: keep routes registered on NATS while their health checks pass."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from pathlib import Path

import typer

from portico.registrar.config import ConfigError, load_config

log = logging.getLogger("portico.registrar")


def registrar(
    config: Path = typer.Option(..., "--config", "-c", help="Registrar YAML file (route-registrar's format "
                                "is accepted; see docs/registrar.md).", show_default=False),
    check: bool = typer.Option(False, "--check", help="Only check the config file, then exit."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Also log every registration."),
) -> None:
    try:
        cfg = load_config(config)
    except ConfigError as exc:
        print(f"portico registrar: {exc}", file=sys.stderr)  # file:line:col: key: reason
        raise typer.Exit(2) from None
    if check:
        print(f"{config}: ok ({len(cfg.routes)} route(s), {len(cfg.nats)} NATS server(s))")
        return
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if not verbose:
        logging.getLogger("nats").setLevel(logging.WARNING)
    asyncio.run(_main(cfg))


async def _main(cfg) -> None:
    from portico.registrar.service import run

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal(signum: int) -> None:
        if not stop.is_set():
            log.info("received %s: unregistering every route and exiting", signal.Signals(signum).name)
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal, signum)
    await run(cfg, stop)
