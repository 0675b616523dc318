# cython: annotation_typing=False
"""Route keys, as gorouter makes them: lower-cased, cut at '?', trailing '/' trimmed."""

from __future__ import annotations

import re


def split_route(uri: str) -> tuple[str, str]:
    """Normalise a registered uri into (host, context path).

    `Test.A.com/Foo/?x=1` -> ("test.a.com", "/foo"); a bare host has the empty path.
    """
    uri = uri.strip().lower()
    query = uri.find("?")
    if query >= 0:
        uri = uri[:query]
    # Every trailing '/', not one: `a.com//` kept as the context path "/" could never be reached, since a
    # request's own trailing '/' is trimmed before the lookup (gorouter trims one; this one is reachable).
    uri = uri.rstrip("/")
    slash = uri.find("/")
    if slash < 0:
        return uri, ""
    return uri[:slash], uri[slash:]


def route_key(host: str, path: str) -> str:
    """The printable key of a route, as /routes shows it: host plus context path."""
    return host + path


def host_without_port(host: str) -> str:
    """Strip a `:port` from a Host value, keeping IPv6 literals like `[::1]` whole."""
    if host.startswith("["):
        end = host.find("]")
        return host[: end + 1] if end > 0 else host
    colon = host.rfind(":")
    return host[:colon] if colon >= 0 else host


def wildcard_suffixes(host: str):
    """The wildcard keys tried for `host`, nearest first: a.b.c.com -> b.c.com, c.com, com."""
    dot = host.find(".")
    while dot >= 0:
        host = host[dot + 1:]
        yield host
        dot = host.find(".")


_ALLOWLIST_ENTRY = re.compile(r"(?i)^(\*\.)?[a-z\d-]+(\.[a-z\d-]+)+$")


def allowlist_domains(entries: tuple[str, ...]) -> frozenset[str]:
    """gorouter's hairpinning allowlist: FQDNs as they are, `*.domain` kept as `.domain`; bad entries raise."""
    out = set()
    for entry in entries:
        entry = entry.lower()
        if not _ALLOWLIST_ENTRY.match(entry):
            raise ValueError(f"invalid route service hairpinning allowlist entry: {entry}. Must be wildcard "
                             "(*.domain.com) or FQDN (hostname.domain.com)")
        out.add(entry[1:] if entry.startswith("*") else entry)
    return frozenset(out)
