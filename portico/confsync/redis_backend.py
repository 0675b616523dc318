"""confd's redis backend: the same key layout, read with redis-py, watched through keyspace notifications.

Layout (confd's backends/redis/client.go): a template key `/app/db/url` is the redis key `/app/db/url`
(or `app:db:url` with `-separator :`). For each watched key confd asks TYPE: a string is read with GET; a
hash gives one key per field (`/app/db` hash field `url` -> `/app/db/url`); anything else (including a key
that does not exist) is a prefix: every string key matching `<key>/*` (SCAN) is read.

Watching needs keyspace notifications on the server (`notify-keyspace-events KA` or at least `K$gh`), as
confd's does; without them confsync warns at start and changes arrive only with --interval polling.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

from portico.confsync.backends import BackendUnavailable, OnChange, _diff

log = logging.getLogger("portico.confsync")

WATCHED_EVENTS = {"del", "append", "rename_from", "rename_to", "expire", "set", "incrby", "incrbyfloat",
                  "hset", "hincrby", "hincrbyfloat", "hdel", "expired", "evicted"}


def parse_redis_node(node: str) -> dict[str, Any]:
    """confd's node forms: `host:port`, `host:port/db`, a unix socket path (optionally `/db`); also redis://."""
    db = 0
    address = node
    if address.startswith(("redis://", "rediss://", "unix://")):
        return {"url": address}
    if "/" in address and not os.path.exists(address):
        head, _, tail = address.rpartition("/")
        if tail.isdigit():
            address, db = head, int(tail)
    if os.path.exists(address):
        return {"unix_socket_path": address, "db": db}
    host, _, port = address.rpartition(":") if ":" in address else (address, "", "6379")
    return {"host": host or "127.0.0.1", "port": int(port or 6379), "db": db}


class RedisBackend:
    """Reads confd's redis layout; `watch` follows keyspace notifications and re-reads on each change."""

    name = "redis"
    supports_watch = True
    revision: int | None = None

    def __init__(self, nodes: list[str], prefixes: list[str], *, password: str = "", separator: str = "/",
                 timeout: float = 5.0):
        import redis.asyncio  # optional dependency: only needed when this backend is chosen

        self._redis = redis.asyncio
        self.nodes = nodes or ["127.0.0.1:6379"]
        self.prefixes = list(prefixes)
        self.password = password or None
        self.separator = separator or "/"
        self.timeout = timeout
        self.last_error = ""
        self._data: dict[str, str] = {}
        self._client: Any = None
        self._db = 0

    # confd's key mapping --------------------------------------------------------------------------------
    def transform(self, key: str) -> str:
        if self.separator == "/":
            return key
        return key.removeprefix("/").replace("/", self.separator)

    def clean(self, key: str) -> str:
        key = key if key.startswith("/") else "/" + key
        return key.replace(self.separator, "/")

    # connections ----------------------------------------------------------------------------------------
    def _connect_args(self, node: str) -> dict[str, Any]:
        args = parse_redis_node(node)
        args.update(socket_timeout=self.timeout, socket_connect_timeout=self.timeout, decode_responses=True)
        if self.password:
            args["password"] = self.password
        return args

    async def _connected(self) -> Any:
        if self._client is not None:
            try:
                await self._client.ping()
                return self._client
            except Exception:
                await self._drop()
        errors = []
        for node in self.nodes:
            args = self._connect_args(node)
            url = args.pop("url", None)
            client = self._redis.from_url(url, **args) if url else self._redis.Redis(**args)
            try:
                await client.ping()
            except Exception as exc:
                errors.append(f"redis {node}: {exc}")
                await client.aclose()
                continue
            self._client, self._db = client, int(args.get("db", 0) or 0)
            return client
        self.last_error = "; ".join(errors)
        raise BackendUnavailable(self.last_error)

    async def _drop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                await client.aclose()
            except Exception:
                pass

    # reading --------------------------------------------------------------------------------------------
    async def _read(self) -> dict[str, str]:
        client = await self._connected()
        out: dict[str, str] = {}
        for prefix in self.prefixes:
            key = prefix.replace("/*", "")
            k = self.transform(key)
            kind = await client.type(k)
            if kind == "string":
                value = await client.get(k)
                if value is not None:
                    out[key] = value
                continue
            if kind == "hash":
                async for field, value in client.hscan_iter(k, match="*", count=1000):
                    out[self.clean(k + "/" + field)] = value
                continue
            pattern = "*" if key == "/" else self.transform("%s/*") % k
            async for name in client.scan_iter(match=pattern, count=1000):
                try:
                    value = await client.get(name)
                except self._redis.ResponseError:      # not a string (a hash, list...): skipped, as confd
                    continue
                if value is not None:
                    out[self.clean(name)] = value
        return out

    async def fetch(self) -> dict[str, str]:
        try:
            self._data = await self._read()
        except BackendUnavailable:
            raise
        except Exception as exc:
            await self._drop()
            self.last_error = f"redis: {exc}"
            raise BackendUnavailable(self.last_error) from None
        self.last_error = ""
        return dict(self._data)

    def snapshot(self) -> dict[str, str]:
        return dict(self._data)

    async def _check_notifications(self, client: Any) -> None:
        try:
            setting = (await client.config_get("notify-keyspace-events")).get("notify-keyspace-events", "")
        except Exception:
            return
        if "K" not in setting:
            log.warning("redis has notify-keyspace-events=%r: watch sees no changes until it includes K "
                        "(e.g. `CONFIG SET notify-keyspace-events KA`), as for confd", setting)

    async def watch(self, on_change: OnChange) -> None:
        """Subscribe to the keyspace channel of each watched prefix; re-read and report what changed."""
        backoff = 0.2
        while True:
            pubsub = None
            try:
                client = await self._connected()
                await self._check_notifications(client)
                pubsub = client.pubsub()
                patterns = {f"__keyspace@{self._db}__:{self.transform(p.replace('/*', ''))}*" for p in self.prefixes}
                await pubsub.psubscribe(*sorted(patterns))
                new = await self._read()
                changed, self._data = _diff(self._data, new), new
                if changed:
                    on_change(changed)
                backoff = 0.2
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if message is None or message.get("data") not in WATCHED_EVENTS:
                        continue
                    new = await self._read()
                    changed = _diff(self._data, new)
                    self._data = new
                    if changed:
                        on_change(changed)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.last_error = f"redis unreachable: {exc}"
                log.warning("%s; retrying in %.1fs", self.last_error, backoff)
                await self._drop()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 3.0)
            finally:
                if pubsub is not None:
                    try:
                        await pubsub.aclose()
                    except Exception:
                        pass

    async def close(self) -> None:
        await self._drop()
