"""/routes body: the table as gorouter's JSON, cached per table generation and built without stalling the loop.

The status server usually shares its event loop with the proxy. Turning a 100k-route table into JSON costs
hundreds of milliseconds, mostly in per-endpoint dicts, so a large table is encoded in chunks of pools with a
yield to the loop between chunks. Each pool is read whole within one chunk; the table as a whole is read over
the few hundred milliseconds of the build (as a poll that raced a registration would see it anyway). Polls
that arrive during a build share it. Small tables are encoded at once, with no task.
"""

from __future__ import annotations

import asyncio

import msgspec

from portico.routes import RouteTable

CHUNK_POOLS = 2000

_encode = msgspec.json.Encoder().encode


class RoutesJson:
    def __init__(self, table: RouteTable) -> None:
        self.table = table
        self._generation = -1
        self._body = b""
        self._building: asyncio.Future | None = None

    def cached(self) -> bytes | None:
        """The body when it can be had without waiting: cached for this generation, or a small table."""
        generation = self.table.generation
        if generation == self._generation:
            return self._body
        if len(self.table) <= CHUNK_POOLS:
            self._store(generation, _encode(self.table.snapshot()))
            return self._body
        return None

    async def build(self) -> bytes:
        """Encode a large table in chunks; concurrent callers share one build."""
        if self._building is None:
            self._building = asyncio.ensure_future(self._build())
            self._building.add_done_callback(self._build_done)
        return await asyncio.shield(self._building)

    def _build_done(self, future: asyncio.Future) -> None:
        self._building = None
        if not future.cancelled():
            future.exception()  # retrieved here so a failed build is not reported as never retrieved

    async def _build(self) -> bytes:
        generation = self.table.generation
        pools = list(self.table.pools())
        parts: list[bytes] = []
        for start in range(0, len(pools), CHUNK_POOLS):
            if start:
                await asyncio.sleep(0)
            chunk = {pool.key: [ep.to_json() for ep in pool.endpoints]
                     for pool in pools[start:start + CHUNK_POOLS] if pool.endpoints}
            if chunk:
                parts.append(_encode(chunk)[1:-1])  # "k":[...],"k2":[...] without the braces
        body = b"{" + b",".join(parts) + b"}"
        self._store(generation, body)
        return body

    def _store(self, generation: int, body: bytes) -> None:
        if generation >= self._generation:
            self._generation, self._body = generation, body
