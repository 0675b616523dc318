# cython: annotation_typing=False
"""The endpoints of one route and the choice among them (round-robin or least-connection)."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

import msgspec

from portico.routes.endpoint import Endpoint

if TYPE_CHECKING:
    from portico.observe.route_traffic import RouteCounters

ROUND_ROBIN = "round-robin"
LEAST_CONNECTION = "least-connection"
ALGORITHMS = (ROUND_ROBIN, LEAST_CONNECTION)
LEAST_CONNECTION_CURSOR = -2   # Pool._next's value under least-connection


def cursor_for(algorithm: str) -> int:
    """The `_next` a new Pool starts with under `algorithm` (Pool(key, members, cursor_for(algorithm)))."""
    return LEAST_CONNECTION_CURSOR if algorithm == LEAST_CONNECTION else -1


def member_at(members: Endpoint | tuple[Endpoint, ...], address: str) -> Endpoint | None:
    """The endpoint at `address` among a pool's `members` (its one Endpoint, or a tuple of them), or None."""
    if isinstance(members, tuple):
        for ep in members:
            if ep.address == address:
                return ep
        return None
    return members if members.address == address else None


def new_pool(host: str, context_path: str = "", algorithm: str = ROUND_ROBIN) -> Pool:
    """An empty pool for the route `host` + `context_path` (its `key`)."""
    return Pool(host + context_path, (), cursor_for(algorithm))


class Pool(msgspec.Struct, gc=False, eq=False):
    """All endpoints registered for one route key (host + context path).

    Endpoints live in `members`, replaced whole on a change: pools are small and change rarely next to how
    often they are read, and a reader (a request, a /routes listing) can never see one half-changed. A pool
    of one endpoint (most of a 1M-route table) holds the Endpoint itself, any other a tuple (`()` when
    empty): no 1-tuple (48 B a route) and one object fewer to reach on a request. `endpoints` is the tuple
    view every reader outside this class uses; `members` is truthy exactly when the pool has an endpoint.
    A msgspec Struct with `gc=False` like Endpoint (it refers to nothing that refers back), so a big table adds
    nothing to the garbage collector's walks; `eq=False`: pools compare by identity. The pool also carries its
    route's traffic counters (`traffic`), written by the proxy's observer through portico.observe.route_traffic.
    """

    key: str    # host + context path, as /routes shows it; a plain host's is the table's own key string
    members: Endpoint | tuple[Endpoint, ...] = ()   # the one endpoint, or a tuple of 0 or 2+ (see above)
    # the round-robin cursor (-1 until the first pick draws a random start), or LEAST_CONNECTION_CURSOR for that
    # algorithm (which keeps no cursor): one field for both keeps a Pool in pymalloc's 48-B class
    _next: int = -1
    # this route's requests, 5xx, durations and latency histogram (observe/route_traffic.py): counted on the
    # pool a request has already touched, in place; None until its first request
    traffic: RouteCounters | None = None

    @property
    def host(self) -> str:
        key = self.key
        slash = key.find("/")
        return key if slash < 0 else key[:slash]

    @property
    def context_path(self) -> str:
        key = self.key
        slash = key.find("/")
        return "" if slash < 0 else key[slash:]

    @property
    def algorithm(self) -> str:
        return LEAST_CONNECTION if self._next == LEAST_CONNECTION_CURSOR else ROUND_ROBIN

    @algorithm.setter
    def algorithm(self, algorithm: str) -> None:
        if algorithm == LEAST_CONNECTION:
            self._next = LEAST_CONNECTION_CURSOR
        elif self._next == LEAST_CONNECTION_CURSOR:
            self._next = -1

    @property
    def endpoints(self) -> tuple[Endpoint, ...]:
        """The endpoints as a tuple (a one-endpoint pool makes its 1-tuple here, for the reader only)."""
        members = self.members
        if isinstance(members, tuple):
            return members
        return (members,)

    def _keep(self, endpoints: tuple[Endpoint, ...]) -> None:
        self.members = endpoints[0] if len(endpoints) == 1 else endpoints

    def find(self, address: str) -> Endpoint | None:
        return member_at(self.members, address)

    def refresh(self, endpoint: Endpoint) -> Endpoint | None:
        """An unchanged re-registration (an instance's heartbeat, most of a running platform's feed): renew the
        timestamps of the endpoint kept at `endpoint`'s address and return it. None when `endpoint` would add or
        change something: then `put` it. Nothing is made, and the pool's size cannot change.
        """
        old = member_at(self.members, endpoint.address)
        if old is None or not old.same_registration(endpoint):
            return None
        old.updated_at = endpoint.updated_at
        old.updated_at_ns = endpoint.updated_at_ns
        return old

    def put(self, endpoint: Endpoint) -> Endpoint:
        """Add or replace the endpoint with this address; return the one now in the pool.

        A re-registration that changes nothing keeps the existing object (and its live counters) and only
        refreshes its timestamp (`refresh`).
        """
        kept = self.refresh(endpoint)
        return kept if kept is not None else self.place(endpoint)

    def place(self, endpoint: Endpoint) -> Endpoint:
        """Add `endpoint`, or replace the one at its address, as it is: for a caller that already asked `refresh`."""
        address = endpoint.address
        members = self.members
        if not isinstance(members, tuple):
            self.members = endpoint if members.address == address else (members, endpoint)
            return endpoint
        for i, old in enumerate(members):
            if old.address == address:
                self._keep((*members[:i], endpoint, *members[i + 1:]))
                return endpoint
        self._keep((*members, endpoint))
        return endpoint

    def remove(self, address: str) -> Endpoint | None:
        eps = self.endpoints
        for i, ep in enumerate(eps):
            if ep.address == address:
                self._keep((*eps[:i], *eps[i + 1:]))
                return ep
        return None

    def pick(self, now: float, max_conns: int = 0, exclude: tuple | list = ()) -> Endpoint | None:
        """Choose an endpoint for the next attempt.

        Skips endpoints in `exclude` (already tried for this request), benched ones (unless every candidate is
        benched, then all are tried again) and ones at `max_conns` in-flight requests. None means nothing is
        left: the caller tells "empty", "all tried" and "all full" apart.
        """
        eps = self.members
        if not isinstance(eps, tuple):
            # most routes have one instance: it is the answer unless tried or full, benched or not (as the
            # loop's fallback), under either algorithm; no cursor written (the pool's line stays clean)
            if (exclude and eps in exclude) or (max_conns and eps.active >= max_conns):
                return None
            return eps
        n = len(eps)
        if n == 0:
            return None
        if self._next == LEAST_CONNECTION_CURSOR:
            return self._least_connection(now, max_conns, exclude)
        start = self._next
        if start < 0:
            start = random.randrange(n)
        fallback = -1
        for step in range(n):
            i = (start + step) % n
            ep = eps[i]
            if exclude and ep in exclude:
                continue
            if max_conns and ep.active >= max_conns:
                continue
            if ep.benched_until > now:
                if fallback < 0:
                    fallback = i
                continue
            self._next = i + 1
            return ep
        if fallback >= 0:
            self._next = fallback + 1
            return eps[fallback]
        return None

    def pick_local(self, now: float, zone: str, max_conns: int = 0, exclude: tuple | list = ()) -> Endpoint | None:
        """A first attempt under `locally-optimistic`: an available instance in `zone` if there is one.

        Only instances neither benched nor full count; None sends the caller to `pick` over every zone.
        """
        local = [ep for ep in self.endpoints if ep.availability_zone == zone and ep.benched_until <= now
                 and not (max_conns and ep.active >= max_conns) and not (exclude and ep in exclude)]
        if not local:
            return None
        if self._next == LEAST_CONNECTION_CURSOR:
            least = min(ep.active for ep in local)
            return random.choice([ep for ep in local if ep.active == least])
        eps = self.endpoints
        start = self._next if self._next >= 0 else random.randrange(len(eps))
        for step in range(len(eps)):
            i = (start + step) % len(eps)
            if eps[i] in local:
                self._next = i + 1
                return eps[i]
        return None

    def _least_connection(self, now: float, max_conns: int, exclude) -> Endpoint | None:
        best: list[Endpoint] = []
        benched: list[Endpoint] = []
        least = None
        for ep in self.endpoints:
            if (exclude and ep in exclude) or (max_conns and ep.active >= max_conns):
                continue
            if ep.benched_until > now:
                benched.append(ep)
                continue
            if least is None or ep.active < least:
                least, best = ep.active, [ep]
            elif ep.active == least:
                best.append(ep)
        if not best:
            best = benched
        if not best:
            return None
        return best[0] if len(best) == 1 else random.choice(best)

    def all_full(self, max_conns: int) -> bool:
        return bool(max_conns) and bool(self.endpoints) and all(ep.active >= max_conns for ep in self.endpoints)

    def by_instance_id(self, instance_id: str) -> Endpoint | None:
        """The endpoint a __VCAP_ID__ sticky cookie names, if it is still registered."""
        for ep in self.endpoints:
            if ep.private_instance_id == instance_id:
                return ep
        return None

    def by_app_instance(self, app_id: str, index: str) -> Endpoint | None:
        """The endpoint an X-CF-APP-INSTANCE header (`<app guid>:<index>`) names."""
        for ep in self.endpoints:
            if ep.app_id == app_id and ep.private_instance_index == index:
                return ep
        return None

    def __len__(self) -> int:
        members = self.members
        return len(members) if isinstance(members, tuple) else 1

    def __repr__(self) -> str:
        return f"Pool({self.key!r}, {self.endpoints!r})"
