"""Assemble confsync from a ConfsyncConfig: load resources, pick the backend, run the chosen mode.

Exit codes: 0 every resource ok; 1 a resource or the backend failed (--onetime); 2 bad configuration.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from portico.confsync.backends import check_backend_name, make_backend
from portico.confsync.render import Renderer
from portico.confsync.resources import ConfsyncConfig, ResourceError, load_resources
from portico.confsync.runner import Runner
from portico.confsync.status import serve_status
from portico.etcd_client import EtcdTls, read_pem_files

log = logging.getLogger("portico.confsync")

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2


def build_runner(config: ConfsyncConfig) -> Runner:
    check_backend_name(config.backend)
    resources = load_resources(config.confdir, config.prefix)
    if not resources:
        raise ResourceError(f"no template resources in {config.confdir / 'conf.d'}")
    prefixes = sorted({w for r in resources for w in r.watched})
    backend = make_backend(config.backend, nodes=config.nodes, prefixes=prefixes, files=config.files,
                           password=config.password or (config.client_key if config.backend == "redis" else ""),
                           username=config.username, separator=config.separator, file_filter=config.file_filter,
                           etcd_tls=_etcd_tls(config))
    return Runner(resources, backend, Renderer(config.confdir / "templates"), noop=config.noop,
                  sync_only=config.sync_only, keep_stage_file=config.keep_stage_file)


def _etcd_tls(config: ConfsyncConfig) -> EtcdTls | None:
    """confd's -client-ca-keys, -client-cert and -client-key (files) for an etcd backend; None without them."""
    if config.backend not in ("etcd", "etcdv3"):
        return None
    if not (config.client_ca_keys or config.client_cert):
        return None
    try:
        return read_pem_files(config.client_ca_keys, config.client_cert, config.client_key)
    except OSError as exc:
        raise ResourceError(f"cannot read an etcd TLS file: {exc}") from None


async def serve(config: ConfsyncConfig) -> int:
    """Run until done (--onetime) or until SIGTERM/SIGINT; returns the process exit code."""
    if config.backend == "etcd":
        log.info("-backend etcd: Portico speaks etcd's v3 API (confd's etcdv3 backend; confd 0.16+ does the same)")
    try:
        runner = build_runner(config)
    except ImportError as exc:
        log.error("backend %s needs a Python package that is not installed: %s (pip install 'portico[confsync]')",
                  config.backend, exc)
        return EXIT_CONFIG
    except (ResourceError, ValueError) as exc:
        log.error("%s", exc)
        return EXIT_CONFIG
    status_server = None
    if config.status_port is not None:
        status_server = await serve_status(runner.status, config.status_port)
        log.info("status on http://127.0.0.1:%d/status", config.status_port)
    try:
        if config.onetime:
            return EXIT_OK if await runner.run_once() else EXIT_FAILED
        loop = asyncio.get_running_loop()
        if config.watch and runner.backend.supports_watch:
            main = asyncio.ensure_future(runner.run_watch())
        else:
            if config.watch:
                log.warning("backend %s cannot watch; polling every %gs", runner.backend.name, config.interval)
            main = asyncio.ensure_future(runner.run_interval(config.interval))
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, main.cancel)
        try:
            await main
        except asyncio.CancelledError:
            log.info("confsync stopping")
        return EXIT_OK if runner.ok() else EXIT_FAILED
    finally:
        if status_server is not None:
            status_server.close()
        await runner.backend.close()
