"""Logging for Portico's processes: gorouter's JSON lines for pipelines, readable text on a terminal.

A JSON line has gorouter's shape: `{"log_level":1,"timestamp":...,"message":"...","source":"...","data":{}}`,
log_level numbered as gorouter numbers it (0 debug, 1 info, 2 warn, 3 error, 5 fatal), the timestamp as
`logging.format.timestamp` says (`rfc3339`: `2026-01-02T15:04:05.123456000Z` in UTC; anything else, as
gorouter: seconds since the epoch, a number). `source` is `logging.syslog` (default `portico`) followed by the
component (`portico.bus` logs as `<syslog>.bus`). Anything passed as `extra={"data": {...}}` lands in `data`.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import IO, Any

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING, "warning": logging.WARNING,
           "error": logging.ERROR, "fatal": logging.CRITICAL, "critical": logging.CRITICAL}
# gorouter's numbers: zap's level plus one.
_LEVEL_NUMBERS = {logging.DEBUG: 0, logging.INFO: 1, logging.WARNING: 2, logging.ERROR: 3, logging.CRITICAL: 5}
_TEXT_NAMES = {logging.DEBUG: "debug", logging.INFO: "info", logging.WARNING: "warn", logging.ERROR: "error",
               logging.CRITICAL: "fatal"}
FORMATS = ("auto", "json", "text")


def rfc3339(seconds: float) -> str:
    """gorouter's rfc3339 layout: UTC, nine fraction digits, Z."""
    whole = int(seconds)
    micros = round((seconds - whole) * 1_000_000)
    if micros == 1_000_000:
        whole, micros = whole + 1, 0
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{micros:06d}000Z"


class JsonLineFormatter(logging.Formatter):
    """One gorouter-shaped JSON object per record."""

    def __init__(self, timestamp: str = "rfc3339", source: str = "portico", data: dict[str, Any] | None = None
                 ) -> None:
        super().__init__()
        self.rfc3339 = timestamp == "rfc3339"
        self.source = source
        self.data = data or {}

    def format(self, record: logging.LogRecord) -> str:
        data = dict(self.data)
        extra = getattr(record, "data", None)
        if isinstance(extra, dict):
            data.update(extra)
        if record.exc_info:
            data["error"] = self.formatException(record.exc_info)
        line = {
            "log_level": _LEVEL_NUMBERS.get(record.levelno, 1),
            "timestamp": rfc3339(record.created) if self.rfc3339 else record.created,
            "message": record.getMessage(),
            "source": source_name(self.source, record.name),
            "data": data,
        }
        return json.dumps(line, default=str, separators=(",", ":"))


class TextFormatter(logging.Formatter):
    """For people: `2026-01-02T15:04:05.123Z info  portico.router: message key=value`."""

    def __init__(self, prefix: str = "") -> None:
        super().__init__()
        self.prefix = prefix

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(record.created))
        level = _TEXT_NAMES.get(record.levelno, record.levelname.lower())
        text = f"{stamp}.{int(record.msecs):03d} {level:<5} {self.prefix}{record.name}: {record.getMessage()}"
        extra = getattr(record, "data", None)
        if isinstance(extra, dict) and extra:
            text += " " + " ".join(f"{k}={v}" for k, v in extra.items())
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def source_name(prefix: str, logger_name: str) -> str:
    component = logger_name.split(".", 1)[1] if logger_name.startswith("portico.") else logger_name
    return f"{prefix}.{component}" if component and component != "portico" else prefix


def choose_format(fmt: str, stream: IO[str] | None) -> str:
    """`auto`: text when writing to a terminal, JSON otherwise (a file, a pipe, a log collector)."""
    if fmt in ("json", "text"):
        return fmt
    isatty = getattr(stream, "isatty", None)
    return "text" if stream is not None and isatty is not None and isatty() else "json"


def setup_logging(level: str = "info", file: str = "", prefix: str = "", *, fmt: str = "auto",
                  timestamp: str = "rfc3339", source: str = "", worker: int | None = None) -> None:
    """Send every record to `file` (or stderr), as JSON lines or text (see choose_format)."""
    stream: IO[str] | None = None
    if file:
        handler: logging.Handler = logging.FileHandler(file)
    else:
        stream = sys.stderr
        handler = logging.StreamHandler(stream)
    if choose_format(fmt, stream) == "json":
        handler.setFormatter(JsonLineFormatter(timestamp, source or "portico",
                                               {"worker": worker} if worker is not None else None))
    else:
        handler.setFormatter(TextFormatter(prefix))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(_LEVELS.get(level.lower(), logging.INFO))
    logging.getLogger("nats").setLevel(logging.CRITICAL)  # its own reconnect chatter; the bus logs clearly
