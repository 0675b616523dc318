"""The route table as bytes and back, so a restarted router routes at once instead of answering 404.

Pure and synchronous like the table: time comes in as arguments (monotonic for the table's clock, wall for
the file, since the file outlives the process). Each endpoint is written with the TTL it had left; on load
the time the router was down is taken off, endpoints whose TTL ran out are dropped, and the rest go in with
an age that makes the pruner remove them exactly when their TTL would have ended. Reading and writing the
file is portico/route_snapshot.py's job.
"""

from __future__ import annotations

from typing import Any

import msgspec

from portico.routes.endpoint import Endpoint
from portico.routes.table import RouteTable

FORMAT = 1

# Endpoint fields written as they are (the registration's own; live counters are not worth keeping)
_FIELDS = ("host", "port", "tls", "app_id", "private_instance_id", "private_instance_index",
           "server_cert_domain_san", "route_service_url", "tags", "ttl", "isolation_segment", "protocol",
           "availability_zone", "load_balancing_algorithm", "updated_at_ns")


class SnapshotError(ValueError):
    """The bytes are not a snapshot this version can read; the message says why."""


def serialise(table: RouteTable, now: float, wall: float) -> bytes:
    """The table as JSON bytes: every live endpoint with its remaining TTL, as of `now` (monotonic) and
    `wall` (time.time())."""
    routes: dict[str, list[dict[str, Any]]] = {}
    for pool in table.pools():
        entries = []
        for ep in pool.endpoints:
            left = ep.ttl - (now - ep.updated_at)
            if left <= 0:
                continue
            entry = {name: getattr(ep, name) for name in _FIELDS}
            entry["ttl_left"] = round(max(left, 0.0), 3)
            entries.append(entry)
        if entries:
            routes[pool.key] = entries
    return msgspec.json.encode({"format": FORMAT, "written_at": wall, "routes": routes})


def restore(table: RouteTable, data: bytes, now: float, wall: float) -> int:
    """Register the snapshot's endpoints that still have TTL left at `wall`; the number restored.

    Raises SnapshotError for bytes that are not a snapshot (the caller logs it and starts empty).
    """
    try:
        doc = msgspec.json.decode(data)
    except msgspec.DecodeError as exc:
        raise SnapshotError(f"not JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise SnapshotError(f"not a route snapshot of format {FORMAT}")
    written_at, routes = doc.get("written_at"), doc.get("routes")
    if not isinstance(written_at, (int, float)) or not isinstance(routes, dict):
        raise SnapshotError("missing written_at or routes")
    down_for = max(0.0, wall - written_at)
    restored = 0
    for key, entries in routes.items():
        if not isinstance(entries, list):
            raise SnapshotError(f"route {key!r}: endpoints are not a list")
        for entry in entries:
            endpoint = _endpoint(key, entry, now, down_for)
            if endpoint is not None:
                table.register(key, endpoint)
                restored += 1
    return restored


def _endpoint(key: str, entry: Any, now: float, down_for: float) -> Endpoint | None:
    try:
        left = float(entry["ttl_left"]) - down_for
        ttl = float(entry["ttl"])
        fields = {name: entry[name] for name in _FIELDS}
    except (KeyError, TypeError, ValueError):
        raise SnapshotError(f"route {key!r}: an endpoint lacks a field or has a wrong one") from None
    if left <= 0:
        return None
    age = max(0.0, ttl - left)
    fields["tags"] = dict(fields["tags"]) if fields["tags"] else None
    try:
        return Endpoint(**fields, updated_at=now - age)
    except TypeError as exc:
        raise SnapshotError(f"route {key!r}: {exc}") from None
