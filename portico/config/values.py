"""The config toolkit's value side: the one ConfigError, the duration parser, scalar converters, NATS addresses.

Shared by the router's gorouter config (portico.config.loader), the registrar's config and the command line,
so a duration, a port or a NATS URL means the same thing, and is refused with the same words, everywhere.
The located YAML reader that feeds these values is portico.config.yaml_reader.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from yaml.nodes import Node

__all__ = ["ConfigError", "NatsServer", "parse_duration", "parse_nats_url", "secret", "show", "to_bool", "to_int",
           "to_str"]

_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
DURATION_HINT = 'a duration like "30s", "5m", "1h30m", "250ms" or a number of seconds'
NATS_SCHEMES = ("nats", "tls")


class ConfigError(Exception):
    """A config problem as one actionable line: `file:line:col: key: reason`.

    The parts are kept as attributes so callers (and tests) need not parse the message.
    """

    def __init__(
        self,
        reason: str,
        *,
        path: str | None = None,
        key: str | None = None,
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        self.reason = " ".join(str(reason).split("\n"))
        self.path, self.key, self.line, self.column = path, key, line, column
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.path or ""
        if where and self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return ": ".join(part for part in (where, self.key, self.reason) if part)

    def located(self, path: str, node: Node | None) -> ConfigError:
        """The same error with the file and the node's position (1-based) filled in."""
        mark = node.start_mark if node is not None else None
        return ConfigError(
            self.reason,
            path=path,
            key=self.key,
            line=mark.line + 1 if mark else self.line,
            column=mark.column + 1 if mark else self.column,
        )


def parse_duration(value: Any, key: str, *, positive: bool = False) -> float:
    """Seconds from a Go duration string ("1h30m", "250ms", "0") or a bare number of seconds.

    Older gorouter configs write plain integers meaning seconds; newer ones write Go durations. Config
    durations are never negative, so a negative value is an error here rather than in every caller;
    `positive` also refuses zero (an interval or a timeout of nothing).
    """
    seconds: float | None = None
    if isinstance(value, bool) or value is None:
        seconds = None
    elif isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        seconds = _parse_duration_text(value.strip())
    if seconds is None or not math.isfinite(seconds):
        raise ConfigError(f"expected {DURATION_HINT}, got {show(value)}", key=key)
    if seconds < 0:
        raise ConfigError(f"must not be negative, got {show(value)}", key=key)
    if positive and seconds == 0:
        raise ConfigError(f"must be greater than zero, got {show(value)}", key=key)
    return seconds


def _parse_duration_text(text: str) -> float | None:
    """Go's time.ParseDuration grammar, plus a plain number meaning seconds; None when it does not parse."""
    try:
        return float(text)
    except ValueError:
        pass
    sign = 1.0
    if text and text[0] in "+-":
        sign, text = (-1.0 if text[0] == "-" else 1.0), text[1:]
    total, pos = 0.0, 0
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            return None
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        pos = match.end()
    if pos == 0 or pos != len(text):
        return None
    return sign * total


def show(value: Any) -> str:
    """A short, quoted rendering of a bad value for an error message."""
    if value is None:
        return "an empty value"
    if isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
        return text if len(text) <= 60 else text[:56] + '..."'
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def to_int(value: Any) -> int | None:
    """An integer, also from quoted digits (common in templated configs); None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value.strip()):
        return int(value)
    return None


def to_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


def to_str(value: Any) -> str | None:
    """Any scalar as text, as gorouter's YAML decoder does for string fields (`zone: 1` is "1")."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return None


# Secrets (passwords, private keys, tokens): left out of repr() and shown as "***" by config dumps
# (portico.config.redact), so neither a log line nor an error report can carry one.
_SECRET = {"secret": True}


def secret(default: Any = "") -> Any:
    return field(default=default, repr=False, metadata=_SECRET)


@dataclass(frozen=True, slots=True)
class NatsServer:
    """One NATS server: where it is and, when it has its own, the credentials to give it."""

    hostname: str = "127.0.0.1"
    port: int = 4222
    user: str = ""
    password: str = secret()
    scheme: str = "nats"  # "tls" asks the client for TLS

    @property
    def url(self) -> str:
        """`scheme://host:port`, without credentials (fit for logs)."""
        host = f"[{self.hostname}]" if ":" in self.hostname else self.hostname
        return f"{self.scheme}://{host}:{self.port}"

    def url_with_credentials(self, user: str = "", password: str = "", scheme: str = "") -> str:
        """The URL a NATS client dials: this server's credentials, else the given shared ones, in it."""
        user, password = (self.user or user), (self.password or password)
        auth = f"{user}:{password}@" if user else ""  # as given: nats-py reads them without unquoting
        host = f"[{self.hostname}]" if ":" in self.hostname else self.hostname
        return f"{scheme or self.scheme}://{auth}{host}:{self.port}"


def parse_nats_url(text: str, key: str = "nats") -> NatsServer:
    """`nats://user:pass@host:port` (scheme, credentials and port optional) -> NatsServer; ConfigError if not."""
    text = text.strip()
    parts = urlsplit(text if "://" in text else f"nats://{text}")
    try:
        port = parts.port
    except ValueError:
        raise ConfigError(f"has a bad port in {show(text)}", key=key) from None
    if parts.scheme not in NATS_SCHEMES or not parts.hostname:
        raise ConfigError(f"must be a URL like nats://127.0.0.1:4222, got {show(text)}", key=key)
    return NatsServer(hostname=parts.hostname, port=port or 4222, user=unquote(parts.username or ""),
                      password=unquote(parts.password or ""), scheme=parts.scheme)
