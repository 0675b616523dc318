"""How a failed dial, TLS handshake or read from a backend is described: gorouter's wording and status."""

from __future__ import annotations

import asyncio
import errno
import ssl


class DialError(Exception):
    """A backend could not be reached; `detail` reads like gorouter's reason text."""

    def __init__(self, detail: str, tls_handshake: bool = False, status: int = 0) -> None:
        super().__init__(detail)
        self.detail = detail
        self.tls_handshake = tls_handshake
        self.status = status or (525 if tls_handshake else 502)   # gorouter's answer for this failure


# OpenSSL verify codes, grouped as gorouter's error classifiers group Go's x509 errors.
_UNKNOWN_AUTHORITY = frozenset({2, 18, 19, 20, 21})
_HOSTNAME_MISMATCH = 62
_EXPIRED = frozenset({9, 10})


def describe_tls_error(exc: ssl.SSLError, server_name: str | None = None) -> DialError:
    """A TLS failure as gorouter answers it: 526 untrusted certificate, 503 wrong name, 502 expired,
    496 when the backend wanted a client certificate, 525 for any other handshake failure."""
    code = getattr(exc, "verify_code", None)
    if code in _UNKNOWN_AUTHORITY:
        return DialError("tls: failed to verify certificate: x509: certificate signed by unknown authority",
                         tls_handshake=True, status=526)
    if code == _HOSTNAME_MISMATCH:
        return DialError(f"tls: failed to verify certificate: x509: certificate is not valid for {server_name}",
                         tls_handshake=True, status=503)
    if code in _EXPIRED:
        return DialError("tls: failed to verify certificate: x509: certificate has expired or is not yet valid",
                         tls_handshake=True, status=502)
    reason = str(exc.reason or exc)
    if "CERTIFICATE_REQUIRED" in reason or "BAD_CERTIFICATE" in reason:
        return DialError("remote error: tls: certificate required", tls_handshake=True, status=496)
    return DialError(f"remote error: tls: {reason}", tls_handshake=True)


def describe_dial_error(address: str, exc: BaseException, server_name: str | None = None) -> DialError:
    if isinstance(exc, DialError):
        return exc
    if isinstance(exc, ssl.SSLError):
        return describe_tls_error(exc, server_name)
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return DialError(f"dial tcp {address}: i/o timeout")
    if isinstance(exc, ConnectionRefusedError) or getattr(exc, "errno", None) == errno.ECONNREFUSED:
        return DialError(f"dial tcp {address}: connect: connection refused")
    if isinstance(exc, OSError) and exc.strerror:
        return DialError(f"dial tcp {address}: {exc.strerror.lower()}")
    return DialError(f"dial tcp {address}: {exc}")


def describe_read_error(exc: BaseException) -> str:
    """gorouter's wording for a backend connection lost while reading its answer."""
    text = getattr(exc, "strerror", None) or str(exc) or exc.__class__.__name__
    return f"read: {text.lower()}"
