"""Certificates from a directory (`tls_cert_dir`), served by SNI and reloaded when the files change.

`portico kube --tls-dir` writes one `*.pem` per Ingress TLS Secret there (certificate chain, then private key);
any other tool can do the same. The directory is checked once a second (names, sizes, modification times); on a
change every file is read again and the SNI table is replaced in one step, so a handshake sees either the old or
the new certificates, never a mix. A file that cannot be loaded is logged and skipped; the others are served.
"""

from __future__ import annotations

import asyncio
import logging
import re
from pathlib import Path

from portico.config.settings import TlsCertificate

log = logging.getLogger("portico.proxy")

CHECK_INTERVAL = 1.0
_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----.*?-----END \1-----\s*", re.S)


def split_pem(data: bytes) -> TlsCertificate | None:
    """The certificate blocks (in order) and the private key block of one PEM file, or None."""
    certs: list[str] = []
    keys: list[str] = []
    for match in _PEM_BLOCK.finditer(data):
        (certs if match.group(1) == b"CERTIFICATE" else keys if b"PRIVATE KEY" in match.group(1) else []).append(
            match.group(0).decode())
    if not certs or len(keys) != 1:
        return None
    return TlsCertificate("".join(certs), keys[0])


def _signature(directory: Path) -> tuple[tuple[str, int, int], ...]:
    try:
        files = sorted(p for p in directory.glob("*.pem") if p.is_file())
        return tuple((p.name, st.st_size, st.st_mtime_ns) for p in files for st in [p.stat()])
    except OSError:
        return ()


def load_directory(directory: Path) -> list[tuple[str, TlsCertificate]]:
    out = []
    for path in sorted(directory.glob("*.pem")):
        try:
            cert = split_pem(path.read_bytes())
        except OSError as exc:
            log.warning("tls_cert_dir: cannot read %s: %s", path, exc)
            continue
        if cert is None:
            log.warning("tls_cert_dir: %s needs certificate blocks and exactly one private key; skipped", path)
            continue
        out.append((path.name, cert))
    return out


class CertDirectoryWatcher:
    """Polls a directory and hands its certificates to `apply` whenever they change."""

    def __init__(self, directory: Path, apply, loop: asyncio.AbstractEventLoop) -> None:
        self.directory, self.apply, self.loop = directory, apply, loop
        self.signature: tuple[tuple[str, int, int], ...] | None = None
        self.reloads = 0
        self._timer: asyncio.TimerHandle | None = None

    def start(self) -> None:
        self.check()

    def check(self) -> None:
        signature = _signature(self.directory)
        if signature != self.signature:
            self.signature = signature
            certs = load_directory(self.directory)
            loaded = self.apply(certs)
            self.reloads += 1
            log.info("tls_cert_dir %s: serving %d certificate(s) by SNI", self.directory, loaded)
        self._timer = self.loop.call_later(CHECK_INTERVAL, self.check)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
