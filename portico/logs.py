"""Logging for Portico's processes: one readable line per event, to stderr or the configured file."""

from __future__ import annotations

import logging
import sys

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING, "warning": logging.WARNING,
           "error": logging.ERROR, "fatal": logging.CRITICAL, "critical": logging.CRITICAL}


def setup_logging(level: str = "info", file: str = "", prefix: str = "") -> None:
    handler: logging.Handler = logging.FileHandler(file) if file else logging.StreamHandler(sys.stderr)
    fmt = f"%(asctime)s %(levelname)-5s {prefix}%(name)s: %(message)s"
    handler.setFormatter(logging.Formatter(fmt, datefmt="%Y-%m-%dT%H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(_LEVELS.get(level.lower(), logging.INFO))
    logging.getLogger("nats").setLevel(logging.CRITICAL)  # its own reconnect chatter; the bus logs clearly
