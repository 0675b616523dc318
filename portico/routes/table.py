# cython: annotation_typing=False
"""The route table: route keys to pools, with gorouter's matching rules. Pure and synchronous, no I/O.

Lookup is a dict hit on the host (then on each shorter wildcard suffix) and at most one dict hit per path
segment, so its cost does not grow with the number of routes. Time is always passed in (`now`, monotonic
seconds), which keeps the table testable without clocks or sockets.
"""

from __future__ import annotations

from collections.abc import Iterable

from msgspec.structs import astuple

from portico.routes.endpoint import Endpoint, _same_fields, field_positions
from portico.routes.pool import ALGORITHMS, ROUND_ROBIN, Pool, cursor_for, member_at, new_pool
from portico.routes.uri import route_key, split_route, wildcard_suffixes

try:
    import cython
    COMPILED: bool = cython.compiled
except ImportError:   # no Cython installed: certainly the pure module
    COMPILED = False

# positions in the fields tuple register_fields takes (an Endpoint's constructor arguments, as astuple gives them)
_ALGORITHM, _UPDATED_AT, _UPDATED_AT_NS, _ADDRESS = field_positions(
    "load_balancing_algorithm", "updated_at", "updated_at_ns", "address")


def request_path(target: bytes) -> str:
    """A raw request target as a route path: cut at `?`, lower-cased."""
    q = target.find(b"?")
    if q >= 0:
        target = target[:q]
    return target.decode("latin-1").lower()


def normal_uri(uri: str) -> str:
    """A registered uri stripped and lower-cased, as the table keys it: the uri itself when it already is.

    Compiled, a C scan finds most uris clean (printable ASCII, no upper case) and keeps them: no two method calls
    and no new string per registration, and the uri's hash, once computed, is the key's. Anything else (and the
    pure module, for which the scan would be a slow Python loop) takes `strip().lower()`, the reference.
    """
    if COMPILED:
        for ch in uri:
            if ch <= " " or ch > "~" or "A" <= ch <= "Z":
                return uri.strip().lower()
        return uri
    return uri.strip().lower()


def plain_host(uri: str) -> str | None:
    """`uri` itself when it is a plain host the table keys as it is (printable ASCII, no upper case, no path,
    query or wildcard): the route feed's common case, found by one C scan instead of `normal_uri`'s and three
    searches ("/", "?", "*."). None for anything else, which `normal_uri` and `split_route` then take; the pure
    module, for which the scan would be a slow Python loop, always answers None.
    """
    if COMPILED:
        for ch in uri:
            if ch <= " " or ch > "~" or "A" <= ch <= "Z" or ch == "/" or ch == "?" or ch == "*":
                return None
        return uri
    return None


class _Paths:
    """The context-path routes under one host, used only when a host has a route with a path."""

    __slots__ = ("pools",)

    def __init__(self) -> None:
        self.pools: dict[str, Pool] = {}

    def longest_prefix(self, path: str | bytes) -> Pool | None:
        """Longest registered context path that is `path` or a prefix of it on a `/` boundary.

        `path` may be a raw request target (bytes): it is cut at `?` and lower-cased only here, so requests
        to hosts without context paths never pay for it.
        """
        pools = self.pools
        if isinstance(path, bytes):
            path = request_path(path)
        if path.endswith("/"):
            path = path[:-1]
        while True:
            pool = pools.get(path)
            if pool is not None:
                return pool
            if not path:
                return None
            path = path[: max(path.rfind("/"), 0)]  # a target like `*` has no `/`: go straight to the root


class RouteTable:
    """Route keys -> pools of endpoints.

    A host with only a root route maps straight to its Pool; a host with context paths maps to a _Paths.
    Wildcard routes (`*.example.com`) live in their own dict keyed by the suffix (`example.com`).
    """

    def __init__(self, droplet_stale_threshold: float = 120.0, default_algorithm: str = ROUND_ROBIN,
                 keep_empty_for: float = 0.0) -> None:
        self.droplet_stale_threshold = droplet_stale_threshold
        # gorouter's empty_pool_timeout: a route whose last endpoint went stays (answering 503) this long
        # after its last registration, and goes at the next prune after that. 0: it goes at once.
        self.keep_empty_for = keep_empty_for
        self._emptied: dict[int, tuple[dict, str, str, Pool, float]] = {}
        self.default_algorithm = default_algorithm
        self._exact: dict[str, Pool | _Paths] = {}
        self._wildcard: dict[str, Pool | _Paths] = {}
        self.route_count = 0
        self._endpoint_count = 0    # kept as endpoints come and go: /varz and /metrics read it, never walk
        self.generation = 0  # bumped on every change; readers can cache on it

    # ---- changes (from the bus) -------------------------------------------------------------------------

    def ttl_for(self, stale_threshold_in_seconds: int | float | None) -> float:
        """An endpoint's TTL: its own stale threshold when 0 < value <= droplet_stale_threshold."""
        if stale_threshold_in_seconds and 0 < stale_threshold_in_seconds <= self.droplet_stale_threshold:
            return float(stale_threshold_in_seconds)
        return self.droplet_stale_threshold

    def register(self, uri: str, endpoint: Endpoint) -> Endpoint:
        """Put `endpoint` in the pool of `uri`, creating the route if needed. Returns the endpoint in use."""
        host = normal_uri(uri)
        if "/" not in host and "?" not in host and not host.startswith("*."):
            # the common case, a plain host (ingest rate decides how soon a new router is complete)
            pool = self._exact.get(host)
            if pool is None:
                return self._new_host(host, endpoint, endpoint.load_balancing_algorithm)
            if pool.__class__ is not Pool:
                return self._register(host, "", endpoint)
            return self._put(pool, endpoint)
        return self._register(*split_route(host), endpoint)

    def register_fields(self, uri: str, fields: tuple) -> Endpoint:
        """`register(uri, Endpoint(*fields))`, with the Endpoint built only when the route does not keep it.

        `fields` are the endpoint's constructor arguments in Endpoint's order (its registration fields, then
        updated_at, updated_at_ns and address): an unchanged re-registration (an instance's heartbeat, most of a
        running platform's feed) only renews the kept endpoint's timestamps (`_renew`) and builds nothing.
        """
        host = plain_host(uri)
        if host is None:
            host = normal_uri(uri)
            if "/" in host or "?" in host or host.startswith("*."):
                routed = self._pool_for(host)
                if routed is None:
                    return self._register(*split_route(host), Endpoint(*fields))
                return self._renew_or_place(routed, fields)
        pool = self._exact.get(host)
        if pool is None:
            return self._new_host(host, Endpoint(*fields), fields[_ALGORITHM])
        if pool.__class__ is not Pool:
            pool = self._find_pool(self._exact, host, "")
            if pool is None:
                return self._register(host, "", Endpoint(*fields))
        return self._renew_or_place(pool, fields)

    def _renew_or_place(self, pool: Pool, fields: tuple) -> Endpoint:
        """The endpoint `pool` keeps renewed (`_renew`), else a new one built from `fields` and placed."""
        kept = self._renew(pool, fields)
        if kept is not None:
            return kept
        return self._place(pool, Endpoint(*fields))

    def renew(self, uri: str, fields: tuple) -> Endpoint | None:
        """`register_fields` for a route that keeps this registration unchanged: its endpoint renewed and
        returned; None when there is nothing to renew (the caller then builds the Endpoint and `register`s it)."""
        pool = self._pool_for(normal_uri(uri))
        return self._renew(pool, fields) if pool is not None else None

    def _pool_for(self, host: str) -> Pool | None:
        """The pool of a normalised uri (`normal_uri`'s), when the table has that route."""
        if "/" not in host and "?" not in host and not host.startswith("*."):
            return self._find_pool(self._exact, host, "")
        host, path = split_route(host)
        bucket, key = self._bucket(host)
        return self._find_pool(bucket, key, path)

    def _new_host(self, host: str, endpoint: Endpoint, algorithm: str) -> Endpoint:
        """A new plain host route (most of a burst): the pool is made with its endpoint, no put() to search it.
        `algorithm` is the endpoint's load_balancing_algorithm."""
        if not algorithm or algorithm not in ALGORITHMS:
            algorithm = self.default_algorithm
        self._exact[host] = Pool(host, endpoint, cursor_for(algorithm))
        self.route_count += 1
        self.generation += 1
        self._endpoint_count += 1
        return endpoint

    def _register(self, host: str, path: str, endpoint: Endpoint) -> Endpoint:
        bucket, host = self._bucket(host)
        pool = self._find_pool(bucket, host, path)
        if pool is None:
            pool = new_pool(host if bucket is self._exact else "*." + host, path, self.default_algorithm)
            self._insert_pool(bucket, host, path, pool)
            self.route_count += 1
        return self._put(pool, endpoint)

    def _put(self, pool: Pool, endpoint: Endpoint) -> Endpoint:
        """Add or refresh `endpoint` in an existing pool, keeping the generation and endpoint count true."""
        kept = pool.refresh(endpoint)   # an instance's heartbeat: its endpoint renewed, the counts stand
        if kept is not None:
            if endpoint.load_balancing_algorithm in ALGORITHMS:
                pool.algorithm = endpoint.load_balancing_algorithm
            self.generation += 1
            return kept
        return self._place(pool, endpoint)

    def _place(self, pool: Pool, endpoint: Endpoint) -> Endpoint:
        """Add `endpoint` to an existing pool, or replace the one at its address (no unchanged one is kept)."""
        if endpoint.load_balancing_algorithm in ALGORITHMS:
            pool.algorithm = endpoint.load_balancing_algorithm
        self.generation += 1
        had = len(pool)
        endpoint = pool.place(endpoint)
        self._endpoint_count += len(pool) - had
        return endpoint

    def _renew(self, pool: Pool, fields: tuple) -> Endpoint | None:
        """The endpoint `pool` keeps at `fields`' address with the same registration fields, its timestamps
        renewed as `Pool.refresh` does (and the rest as `_put`); None when there is none."""
        old = member_at(pool.members, fields[_ADDRESS])
        if old is None or not _same_fields(astuple(old), fields):
            return None
        algorithm = fields[_ALGORITHM]
        if algorithm and algorithm in ALGORITHMS:
            pool.algorithm = algorithm
        self.generation += 1
        old.updated_at = fields[_UPDATED_AT]
        old.updated_at_ns = fields[_UPDATED_AT_NS]
        return old

    def unregister(self, uri: str, address: str) -> Endpoint | None:
        """Remove the endpoint at `address` from `uri`'s pool; drop the route when its pool empties."""
        host, path = split_route(uri)
        bucket, host = self._bucket(host)
        pool = self._find_pool(bucket, host, path)
        if pool is None:
            return None
        removed = pool.remove(address)
        if removed is not None:
            self.generation += 1
            self._endpoint_count -= 1
            if not pool.members:
                if self.keep_empty_for:
                    self._emptied[id(pool)] = (bucket, host, path, pool, removed.updated_at)
                else:
                    self._delete_pool(bucket, host, path)
        return removed

    def remove_endpoint(self, pool: Pool, endpoint: Endpoint) -> None:
        """The proxy's one write: drop an endpoint that failed for good (a TLS handshake failure)."""
        self.unregister(pool.key, endpoint.address)

    def prune(self, now: float) -> list[tuple[str, Endpoint]]:
        """Remove endpoints older than their TTL (TLS endpoints are never TTL-pruned); return what went."""
        removed = self.prune_pools(list(self.pools()), now)
        self.drop_expired_empty_pools(now)
        return removed

    def prune_pools(self, pools: Iterable[Pool], now: float) -> list[tuple[str, Endpoint]]:
        """`prune` for some pools only: a large table is pruned a slice at a time (portico.bus.pruner), so a
        pass over 1M routes never holds the loop for the whole walk. Pools no longer in the table are skipped."""
        removed: list[tuple[str, Endpoint]] = []
        for pool in pools:
            stale = [ep for ep in pool.endpoints if not ep.tls and now - ep.updated_at > ep.ttl]
            if not stale or not self.holds(pool):
                continue
            key = pool.key
            for ep in stale:
                removed.append((key, ep))
                self.unregister(key, ep.address)
        return removed

    def drop_expired_empty_pools(self, now: float) -> None:
        """Drop routes kept empty (keep_empty_for) longer than that since their last registration."""
        if self._emptied:
            self._drop_expired_empty_pools(now)

    def _drop_expired_empty_pools(self, now: float) -> None:
        for key, (bucket, host, path, pool, last_update) in list(self._emptied.items()):
            if pool.members or self._find_pool(bucket, host, path) is not pool:
                del self._emptied[key]          # registered again, or already gone
            elif now - last_update > self.keep_empty_for:
                del self._emptied[key]
                self._delete_pool(bucket, host, path)
                self.generation += 1

    def refresh_all(self, now: float) -> None:
        """Mark every endpoint as just registered (after NATS comes back while pruning was suspended)."""
        for pool in self.pools():
            for ep in pool.endpoints:
                ep.updated_at = now

    # ---- reads (from requests and status) ------------------------------------------------------------------

    def lookup(self, host: str, path: str | bytes = "") -> Pool | None:
        """The pool for a request: `host` lower-case without port; `path` lower-case without query, or the
        raw request target as bytes.

        Exact host first, then wildcards nearest first; within a host, longest context path on `/` boundaries.
        """
        entry = self._exact.get(host)
        if entry is not None:
            if isinstance(entry, Pool):
                return entry
            pool = entry.longest_prefix(path)
            if pool is not None:
                return pool
        if self._wildcard:
            for suffix in wildcard_suffixes(host):
                entry = self._wildcard.get(suffix)
                if entry is not None:
                    if isinstance(entry, Pool):
                        return entry
                    pool = entry.longest_prefix(path)
                    if pool is not None:
                        return pool
        return None

    def pools(self):
        """Every pool, exact routes first."""
        for bucket in (self._exact, self._wildcard):
            for entry in bucket.values():
                if isinstance(entry, Pool):
                    yield entry
                else:
                    yield from entry.pools.values()

    def holds(self, pool: Pool) -> bool:
        """True while `pool` is this table's pool for its route (a listing that outlives a change asks)."""
        bucket, host = self._bucket(pool.host)
        return self._find_pool(bucket, host, pool.context_path) is pool

    def endpoint_count(self) -> int:
        """Endpoints in the table, counted as they come and go (a walk of 1M routes took ~0.15 s per scrape)."""
        return self._endpoint_count

    def snapshot(self) -> dict[str, list[dict]]:
        """The table in gorouter's /routes JSON shape."""
        return {pool.key: [ep.to_json() for ep in pool.endpoints] for pool in self.pools()}

    def __len__(self) -> int:
        return self.route_count

    # ---- storage -----------------------------------------------------------------------------------------

    def _bucket(self, host: str) -> tuple[dict, str]:
        if host.startswith("*."):
            return self._wildcard, host[2:]
        return self._exact, host

    @staticmethod
    def _find_pool(bucket: dict, host: str, path: str) -> Pool | None:
        entry = bucket.get(host)
        if entry is None:
            return None
        if entry.__class__ is Pool:
            return entry if not path else None
        return entry.pools.get(path)

    @staticmethod
    def _insert_pool(bucket: dict, host: str, path: str, pool: Pool) -> None:
        entry = bucket.get(host)
        if entry is None and not path:
            bucket[host] = pool
            return
        if entry is None or entry.__class__ is Pool:
            paths = _Paths()
            if entry is not None:
                paths.pools[""] = entry
            bucket[host] = entry = paths
        entry.pools[path] = pool

    def _delete_pool(self, bucket: dict, host: str, path: str) -> None:
        entry = bucket[host]
        self.route_count -= 1
        if entry.__class__ is Pool:
            del bucket[host]
            return
        del entry.pools[path]
        if not entry.pools:
            del bucket[host]
        elif list(entry.pools) == [""]:
            bucket[host] = entry.pools[""]


__all__ = ["RouteTable", "route_key"]
