"""Client-side TLS contexts built from PEM text, for the control plane (NATS, etcd).

Settings hold certificates as PEM text, as gorouter's do; the ssl module wants files for a key pair, so the
pair is written to a private temporary directory just long enough to load it.
"""

from __future__ import annotations

import ssl
import tempfile
from pathlib import Path


def client_context(ca_pem: str = "", cert_pem: str = "", key_pem: str = "") -> ssl.SSLContext:
    """Verifies the server against `ca_pem` (else the system CAs); presents cert/key when both are given."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if ca_pem:
        ctx.load_verify_locations(cadata=ca_pem)
    if cert_pem and key_pem:
        with tempfile.TemporaryDirectory(prefix="portico-tls-") as tmp:
            cert_path, key_path = Path(tmp) / "cert.pem", Path(tmp) / "key.pem"
            key_path.touch(mode=0o600)
            key_path.write_text(key_pem)
            cert_path.write_text(cert_pem)
            ctx.load_cert_chain(str(cert_path), str(key_path))
    return ctx
