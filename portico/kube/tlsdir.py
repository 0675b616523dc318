"""Write the certificates of Ingress spec.tls Secrets into a directory the router watches (`tls_cert_dir`).

Why a directory: private keys then never travel over NATS or sit in etcd (neither is set up in this stack to
keep secrets), the router needs no Kubernetes client and no extra credentials, and each traffic node gets its
files from a `portico kube --tls-dir` beside its router (a container in the same Pod sharing an emptyDir), so
nothing crosses nodes. Each Secret becomes `<namespace>__<name>.pem` (certificate chain, then key), written to a
temporary file and renamed, so the router never reads half a file; files of Secrets no longer referenced are
removed.
"""

from __future__ import annotations

import base64
import logging
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger("portico.kube")
SUFFIX = ".pem"


def file_name(namespace: str, name: str) -> str:
    return f"{namespace}__{name}{SUFFIX}"


def pem_of(secret: Mapping[str, Any]) -> bytes | None:
    """The Secret's tls.crt followed by tls.key, or None when either is missing or not PEM."""
    data = secret.get("data") or {}
    try:
        cert, key = base64.b64decode(data.get("tls.crt", "")), base64.b64decode(data.get("tls.key", ""))
    except ValueError:
        return None
    if b"-----BEGIN" not in cert or b"PRIVATE KEY-----" not in key:
        return None
    return cert.rstrip(b"\n") + b"\n" + key.rstrip(b"\n") + b"\n"


class TlsDirectory:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.writes = 0

    def sync(self, wanted: set[tuple[str, str]], secrets: Mapping[tuple[str, str], Mapping[str, Any]]) -> None:
        keep: set[str] = set()
        for ns, name in sorted(wanted):
            secret = secrets.get((ns, name))
            if secret is None:
                log.warning("TLS Secret %s/%s named by an Ingress does not exist (or is not kubernetes.io/tls)",
                            ns, name)
                continue
            pem = pem_of(secret)
            if pem is None:
                log.warning("TLS Secret %s/%s has no PEM tls.crt and tls.key; not served", ns, name)
                continue
            target = self.directory / file_name(ns, name)
            keep.add(target.name)
            try:
                if target.read_bytes() == pem:
                    continue
            except OSError:
                pass
            fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-")
            with os.fdopen(fd, "wb") as f:
                f.write(pem)
            os.chmod(tmp, 0o600)
            os.replace(tmp, target)
            self.writes += 1
            log.info("wrote the certificate of Secret %s/%s to %s", ns, name, target)
        for path in self.directory.glob(f"*{SUFFIX}"):
            if path.name not in keep:
                path.unlink(missing_ok=True)
                log.info("removed %s (its Secret is no longer named by an Ingress)", path)
