"""Helpers for confsync tests (imported by module name: pytest puts this folder on sys.path): write confdirs,
talk to the real etcd, run `portico confsync` as a process."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from pathlib import Path

import aetcd


class Etcd:
    """Synchronous helpers over aetcd for arranging keys in the test's real etcd."""

    def __init__(self, port: int):
        self.port = port

    async def _with(self, fn):
        async with aetcd.Client(host="127.0.0.1", port=self.port, timeout=5) as client:
            return await fn(client)

    def put(self, key: str, value: str) -> None:
        asyncio.run(self._with(lambda c: c.put(key.encode(), value.encode())))

    def delete_prefix(self, prefix: str) -> None:
        asyncio.run(self._with(lambda c: c.delete_prefix(prefix.encode())))

    def get(self, key: str) -> str | None:
        got = asyncio.run(self._with(lambda c: c.get(key.encode())))
        return None if got is None else got.value.decode()


def write_confdir(root: Path, resources: dict[str, str], templates: dict[str, str],
                  confd_toml: str | None = None) -> Path:
    """Create <root>/conf.d/<name>.toml and <root>/templates/<name> from dedented strings."""
    (root / "conf.d").mkdir(parents=True, exist_ok=True)
    (root / "templates").mkdir(parents=True, exist_ok=True)
    for name, text in resources.items():
        (root / "conf.d" / f"{name}.toml").write_text(textwrap.dedent(text))
    for name, text in templates.items():
        (root / "templates" / name).write_text(textwrap.dedent(text))
    if confd_toml is not None:
        (root / "confd.toml").write_text(textwrap.dedent(confd_toml))
    return root


def run_confsync(*args: str, timeout: float = 30.0) -> subprocess.CompletedProcess:
    """Run `portico confsync ARGS` to completion as a real process."""
    return subprocess.run([sys.executable, "-m", "portico", "confsync", *args], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


