"""/routes body: the table as gorouter's JSON, cached per table generation when small, streamed when large.

The status server usually shares its event loop with the proxy, and a 1,000,000-route table is hundreds of MB
of JSON. So a large table is never encoded whole: `pieces()` encodes CHUNK_POOLS pools at a time, and the
status protocol asks for the next piece only once the client has read the last one (one piece per loop
turn). Memory holds the list of pools (a reference each) and one piece. Each pool is read whole within one
piece; the table as a whole is read over the time the client takes to read it (as a poll that raced a
registration would see it anyway); a route removed meanwhile is left out, a route added meanwhile waits
for the next poll. Small tables are encoded at once
and the bytes kept until the table changes.
"""

from __future__ import annotations

from collections.abc import Iterator

import msgspec

from portico.routes import RouteTable

CHUNK_POOLS = 2000

_encode = msgspec.json.Encoder().encode


class RoutesJson:
    def __init__(self, table: RouteTable) -> None:
        self.table = table
        self._generation = -1
        self._body = b""

    def cached(self) -> bytes | None:
        """The whole body for a small table (kept until the table changes); None: stream `pieces()`."""
        generation = self.table.generation
        if generation == self._generation:
            return self._body
        if len(self.table) <= CHUNK_POOLS:
            self._generation, self._body = generation, _encode(self.table.snapshot())
            return self._body
        return None

    def pieces(self) -> Iterator[bytes]:
        """The body in pieces of CHUNK_POOLS pools; joined they are one JSON object, as `cached()` gives."""
        table = self.table
        pools = list(table.pools())
        yield b"{"
        comma = b""
        for start in range(0, len(pools), CHUNK_POOLS):
            chunk = {pool.key: [ep.to_json() for ep in pool.endpoints] for pool in pools[start:start + CHUNK_POOLS]
                     if pool.members or table.holds(pool)}
            if chunk:
                yield comma + _encode(chunk)[1:-1]  # "k":[...],"k2":[...] without the braces
                comma = b","
        yield b"}"
