"""confd's zookeeper backend, with kazoo: znodes without children are keys, their data the values.

confd (backends/zookeeper/client.go) walks each watched key: a znode with no children is a key whose value is
its data; a znode with children is a folder whose own data is ignored. Watching sets ZooKeeper data and
child watches on every znode read and re-reads when one fires. One deliberate difference: a watched path
that does not exist yet reads as no keys (confd fails the resource with "zk: node does not exist").
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from portico.confsync.backends import BackendUnavailable, OnChange, _diff

log = logging.getLogger("portico.confsync")


def zk_hosts(nodes: list[str]) -> str:
    """kazoo's host string from confd's nodes (`127.0.0.1:2181`, also with a zk:// or tcp:// scheme)."""
    hosts = [n.split("://", 1)[-1].rstrip("/") for n in nodes] or ["127.0.0.1:2181"]
    return ",".join(hosts)


class ZookeeperBackend:
    """Reads with kazoo in a worker thread; ZooKeeper watches wake `watch` to re-read."""

    name = "zookeeper"
    supports_watch = True
    revision: int | None = None

    def __init__(self, nodes: list[str], prefixes: list[str], *, timeout: float = 5.0):
        from kazoo.client import KazooClient  # optional dependency: only needed when this backend is chosen

        self.hosts = zk_hosts(nodes)
        self.prefixes = list(prefixes)
        self.timeout = timeout
        self.last_error = ""
        self._client: Any = KazooClient(hosts=self.hosts, timeout=timeout)
        self._started = False
        self._data: dict[str, str] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._fired = asyncio.Event()

    def _ensure_started(self) -> None:
        if not self._started:
            self._client.start(timeout=self.timeout)
            self._started = True

    def _on_watch(self, _event: Any) -> None:
        """Called on kazoo's thread: wake the watch loop."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._fired.set)

    def _walk(self, path: str, out: dict[str, str], watch: bool) -> None:
        from kazoo.exceptions import NoNodeError

        callback = self._on_watch if watch else None
        try:
            children = self._client.get_children(path, watch=callback)
            if not children:
                data, _stat = self._client.get(path, watch=callback)
                out[path] = (data or b"").decode("utf-8", errors="surrogateescape")
                return
        except NoNodeError:
            return
        for child in children:
            self._walk(("/" if path == "/" else path + "/") + child, out, watch)

    def _read(self, watch: bool = False) -> dict[str, str]:
        self._ensure_started()
        out: dict[str, str] = {}
        for prefix in self.prefixes:
            root = prefix.replace("/*", "") or "/"
            self._walk(root if root == "/" else root.rstrip("/"), out, watch)
        return out

    async def fetch(self) -> dict[str, str]:
        try:
            self._data = await asyncio.to_thread(self._read)
        except Exception as exc:
            self.last_error = f"zookeeper {self.hosts}: {type(exc).__name__}: {exc}"
            raise BackendUnavailable(self.last_error) from None
        self.last_error = ""
        return dict(self._data)

    def snapshot(self) -> dict[str, str]:
        return dict(self._data)

    async def watch(self, on_change: OnChange) -> None:
        self._loop = asyncio.get_running_loop()
        backoff = 0.2
        while True:
            self._fired.clear()
            try:
                new = await asyncio.to_thread(self._read, True)
            except Exception as exc:
                self.last_error = f"zookeeper {self.hosts}: {type(exc).__name__}: {exc}"
                log.warning("%s; retrying in %.1fs", self.last_error, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 3.0)
                continue
            backoff = 0.2
            self.last_error = ""
            changed, self._data = _diff(self._data, new), new
            if changed:
                on_change(changed)
            try:   # a watch event, or a periodic re-read in case a watch was lost with a session
                async with asyncio.timeout(30.0):
                    await self._fired.wait()
            except TimeoutError:
                pass

    async def close(self) -> None:
        if self._started:
            await asyncio.to_thread(self._client.stop)
            await asyncio.to_thread(self._client.close)
            self._started = False
