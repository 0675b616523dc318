"""The route table as bytes and back, so a restarted router routes at once instead of answering 404.

Pure and synchronous like the table: time comes in as arguments (monotonic for the table's clock, wall for
the file, since the file outlives the process). Written and read a line of 2,000 routes at a time, so a
1,000,000-route table is never one document in memory. Each endpoint is written with the TTL it had left; on load
the time the router was down is taken off, endpoints whose TTL ran out are dropped, and the rest go in with
an age that makes the pruner remove them exactly when their TTL would have ended. Reading and writing the
file is portico/route_snapshot.py's job.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec

from portico.routes.endpoint import Endpoint, make_endpoint
from portico.routes.table import RouteTable

FORMAT = 2            # a head line, then lines of up to PIECE_POOLS routes each (format 1, one document, is read)
PIECE_POOLS = 2000

# Endpoint fields written as they are (the registration's own; live counters are not worth keeping)
_FIELDS = ("host", "port", "tls", "app_id", "private_instance_id", "private_instance_index",
           "server_cert_domain_san", "route_service_url", "tags", "ttl", "isolation_segment", "protocol",
           "availability_zone", "load_balancing_algorithm", "updated_at_ns")

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.decode


class SnapshotError(ValueError):
    """The bytes are not a snapshot this version can read; the message says why."""


def serialise_pieces(table: RouteTable, now: float, wall: float) -> Iterator[bytes]:
    """The table as snapshot lines, as of `now` (monotonic) and `wall` (time.time()): every live endpoint
    with its remaining TTL. One line per PIECE_POOLS routes, so a 1M-route table is never one object in
    memory, neither written nor read; the caller may let the loop run between pieces (each pool is read whole
    within its piece; a route added meanwhile waits for the next snapshot)."""
    yield _encode({"format": FORMAT, "written_at": wall}) + b"\n"
    pools = list(table.pools())
    for start in range(0, len(pools), PIECE_POOLS):
        routes: dict[str, list[dict[str, Any]]] = {}
        for pool in pools[start:start + PIECE_POOLS]:
            entries = []
            for ep in pool.endpoints:
                left = ep.ttl - (now - ep.updated_at)
                if left <= 0:
                    continue
                entries.append(_entry(ep, round(left, 3)))
            if entries:
                routes[pool.key] = entries
        if routes:
            yield _encode(routes) + b"\n"


def _entry(ep: Endpoint, ttl_left: float) -> dict[str, Any]:
    """One endpoint's line item: the _FIELDS, spelled out (a dict display is ~2x faster than getattr by name,
    and a 1M-route snapshot is ~1M of these)."""
    return {"host": ep.host, "port": ep.port, "tls": ep.tls, "app_id": ep.app_id,
            "private_instance_id": ep.private_instance_id, "private_instance_index": ep.private_instance_index,
            "server_cert_domain_san": ep.server_cert_domain_san, "route_service_url": ep.route_service_url,
            "tags": ep.tags, "ttl": ep.ttl, "isolation_segment": ep.isolation_segment, "protocol": ep.protocol,
            "availability_zone": ep.availability_zone, "load_balancing_algorithm": ep.load_balancing_algorithm,
            "updated_at_ns": ep.updated_at_ns, "ttl_left": ttl_left}


def serialise(table: RouteTable, now: float, wall: float) -> bytes:
    """The whole snapshot as bytes (`serialise_pieces` joined)."""
    return b"".join(serialise_pieces(table, now, wall))


def restore(table: RouteTable, data: bytes, now: float, wall: float) -> int:
    """Register the snapshot's endpoints that still have TTL left at `wall`; the number restored."""
    return restore_lines(table, iter(data.splitlines()), now, wall)


def restore_lines(table: RouteTable, lines: Iterator[bytes], now: float, wall: float) -> int:
    """`restore` from the snapshot's lines (a file object is one), decoding one line at a time.

    Raises SnapshotError for bytes that are not a snapshot (the caller logs it and starts empty); endpoints
    of lines before a bad one stay registered, and the pruner removes them when their TTL ends.
    """
    head = _decode_line(next(lines, b""))
    if not isinstance(head, dict) or head.get("format") not in (1, FORMAT):
        raise SnapshotError(f"not a route snapshot of format {FORMAT}")
    written_at = head.get("written_at")
    if not isinstance(written_at, (int, float)):
        raise SnapshotError("missing written_at")
    down_for = max(0.0, wall - written_at)
    if head["format"] == 1:                           # the older layout: every route in the one document
        if not isinstance(head.get("routes"), dict):
            raise SnapshotError("missing routes")
        return _restore_routes(table, head["routes"], now, down_for)
    restored = 0
    for line in lines:
        if line.strip():
            routes = _decode_line(line)
            if not isinstance(routes, dict):
                raise SnapshotError("a line of routes is not a JSON object")
            restored += _restore_routes(table, routes, now, down_for)
    return restored


def _decode_line(line: bytes) -> Any:
    try:
        return _decode(line)
    except msgspec.DecodeError as exc:
        raise SnapshotError(f"not JSON: {exc}") from None


def _restore_routes(table: RouteTable, routes: dict, now: float, down_for: float) -> int:
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
        return make_endpoint(**fields, updated_at=now - age)
    except TypeError as exc:
        raise SnapshotError(f"route {key!r}: {exc}") from None
