# cython: annotation_typing=False
"""Host header value -> the route table's host name (lower case, no port), for the request router.

Kept apart from routing.py because it is the one per-request step whose cost grows with the number of
distinct hosts: the first HOST_CACHE_SIZE values are remembered (the busy ones come first and the cache never
churns), and past them each value is normalised afresh.
"""

from __future__ import annotations

from portico.routes.uri import host_without_port

HOST_CACHE_SIZE = 4096


class HostNames:
    """Normalises Host values as a route table keys them; remembers the first HOST_CACHE_SIZE it sees."""

    def __init__(self) -> None:
        self._names: dict[bytes, str] = {}

    def name(self, host: bytes) -> str:
        """`host` (a Host header or an absolute-form target's host) as the table's key; "" when it names none."""
        name = self._names.get(host)
        if name is None:
            name = normalise_host(host)
            if len(self._names) < HOST_CACHE_SIZE:
                self._names[host] = name
        return name


def normalise_host(host: bytes) -> str:
    """Lower case, `:port` and surrounding whitespace dropped, IPv6 literals kept whole (`[::1]`)."""
    return host_without_port(host.decode("latin-1")).strip().lower() if host else ""
