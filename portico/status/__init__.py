"""Status endpoints (/health, /healthz, /varz, /metrics, /routes) served by a small httptools server."""

from portico.status.server import StatusServer

__all__ = ["StatusServer"]
