"""Config dumps without secrets: every settings field marked secret (passwords, private keys, tokens,
route_services_secret) is shown as "***" when set, and credentials inside URLs are masked."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

MASK = "***"
_URL_CREDENTIALS = re.compile(r"//[^@/\s]*@")


def mask_url(url: str) -> str:
    """`nats://user:pass@host:4222` -> `nats://***@host:4222`."""
    return _URL_CREDENTIALS.sub("//" + MASK + "@", url)


def config_dump(value: Any) -> Any:
    """Plain data (dicts, lists, scalars) for a settings dataclass, secrets masked; safe to print or log."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {}
        for f in dataclasses.fields(value):
            item = getattr(value, f.name)
            if f.metadata.get("secret"):
                out[f.name] = MASK if item else ""
            else:
                out[f.name] = config_dump(item)
        return out
    if isinstance(value, (list, tuple)):
        return [config_dump(v) for v in value]
    if isinstance(value, dict):
        return {k: config_dump(v) for k, v in value.items()}
    if isinstance(value, str):
        return mask_url(value) if "://" in value else value
    return value
