"""Where keys come from: etcd v3 (aetcd, with a resumable prefix watch), environment variables, YAML files.

Every backend hands the runner a whole snapshot (absolute key -> value) taken at one point in time, so a
template never mixes two versions of the data. The etcd backend keeps a local mirror updated by one prefix
watch; a disconnect resumes from the last revision, a compaction triggers a full re-read.
"""

from __future__ import annotations

import asyncio
import logging
import os
import posixpath
from collections.abc import Callable, Iterable
from typing import Protocol
from urllib.parse import urlsplit

import aetcd
import aetcd.exceptions
import yaml

from portico.confsync.confd_yaml import read_yaml_keys, yaml_files
from portico.etcd_client import EtcdTls, etcd_client

log = logging.getLogger("portico.confsync")

OnChange = Callable[[set[str] | None], None]   # changed absolute keys; None: anything may have changed


class BackendUnavailable(RuntimeError):
    """No endpoint answered; the message lists what was tried."""


class Backend(Protocol):
    name: str
    revision: int | None
    supports_watch: bool

    async def fetch(self) -> dict[str, str]: ...
    async def watch(self, on_change: OnChange) -> None: ...
    def snapshot(self) -> dict[str, str]: ...
    async def close(self) -> None: ...


def _under(key: str, prefixes: Iterable[str]) -> bool:
    return any(key.startswith(p) for p in prefixes)


def common_root(prefixes: list[str]) -> str:
    """The longest path prefix shared by every watched prefix: the one range the etcd watch covers."""
    if not prefixes:
        return "/"
    root = posixpath.commonprefix(prefixes)
    if len(prefixes) > 1 and "/" in root and not all(p == root for p in prefixes):
        root = root[: root.rfind("/") + 1]
    return root or "/"


def parse_node(node: str) -> tuple[str, int]:
    """`http://127.0.0.1:2379`, `127.0.0.1:2379` or `127.0.0.1` -> (host, port)."""
    parts = urlsplit(node if "//" in node else f"//{node}")
    return parts.hostname or "127.0.0.1", parts.port or 2379


def _diff(old: dict[str, str], new: dict[str, str]) -> set[str]:
    return {k for k in old.keys() | new.keys() if old.get(k) != new.get(k)}


class EtcdBackend:
    """etcd v3 through aetcd: snapshot reads at one revision, one resumable prefix watch, endpoint failover."""

    name = "etcd"
    supports_watch = True

    def __init__(self, nodes: list[str], prefixes: list[str], *, timeout: float = 5.0,
                 probe_interval: float = 3.0, max_backoff: float = 3.0, username: str = "", password: str = "",
                 tls: EtcdTls | None = None):
        if not nodes:
            raise ValueError("the etcd backend needs at least one --node")
        self.endpoints = [parse_node(n) for n in nodes]
        self.prefixes = list(prefixes)
        self.root = common_root(self.prefixes)
        self.timeout = timeout
        self.probe_interval = probe_interval
        self.max_backoff = max_backoff
        self.username, self.password = username or None, password or None
        self.tls = tls
        self.revision: int | None = None
        self.cluster_id: int | None = None
        self.connected = False
        self.last_error = ""
        self._mirror: dict[str, str] = {}
        self._index = 0
        self._client: aetcd.Client | None = None

    @property
    def endpoint(self) -> str:
        host, port = self.endpoints[self._index]
        return f"{host}:{port}"

    def snapshot(self) -> dict[str, str]:
        return {k: v for k, v in self._mirror.items() if _under(k, self.prefixes)}

    async def _get_client(self) -> aetcd.Client:
        if self._client is None:
            host, port = self.endpoints[self._index]
            options = {"grpc.keepalive_time_ms": 10_000, "grpc.keepalive_timeout_ms": 5_000,
                       "grpc.max_receive_message_length": 64 * 1024 * 1024}
            self._client = etcd_client(host, port, timeout=self.timeout, options=options,
                                       username=self.username or "", password=self.password or "", tls=self.tls)
            await self._client.connect()
        return self._client

    async def _drop_client(self, rotate: bool) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                async with asyncio.timeout(2.0):
                    await client.close()
            except Exception:  # closing a broken channel may fail; it is gone either way
                pass
        if rotate:
            self._index = (self._index + 1) % len(self.endpoints)

    def _unreachable(self, exc: BaseException) -> None:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        self.last_error = f"etcd {self.endpoint} unreachable: {detail}"
        if self.connected or len(self.endpoints) > 1:
            log.warning("%s", self.last_error)
        self.connected = False

    async def _read_all(self, client: aetcd.Client) -> set[str]:
        """Read every key under the root in one range request, i.e. at one revision."""
        resp = await client.get_prefix(self.root.encode())
        mirror = {kv.key.decode(): kv.value.decode(errors="replace") for kv in resp}
        changed = _diff(self._mirror, mirror)
        self._mirror = mirror
        self.revision = resp.header.revision
        self.cluster_id = resp.header.cluster_id
        return changed

    async def fetch(self) -> dict[str, str]:
        """A full snapshot, trying each endpoint once."""
        errors = []
        for _ in self.endpoints:
            try:
                client = await self._get_client()
                async with asyncio.timeout(self.timeout + 1):
                    await self._read_all(client)
                self._mark_connected()
                return self.snapshot()
            except (TimeoutError, aetcd.exceptions.ClientError, OSError) as exc:
                self._unreachable(exc)
                errors.append(self.last_error)
                await self._drop_client(rotate=True)
        raise BackendUnavailable("; ".join(errors))

    def _mark_connected(self) -> None:
        if not self.connected:
            log.info("etcd %s connected (revision %s)", self.endpoint, self.revision)
        self.connected = True
        self.last_error = ""

    async def _probe(self, client: aetcd.Client) -> None:
        """Return (raise) when the watch can no longer be trusted: stream gone, etcd silent or replaced."""
        while True:
            await asyncio.sleep(self.probe_interval)
            handler = getattr(client._watcher, "_request_handler", None)
            if handler is None or handler.done():
                raise ConnectionError("watch stream closed")
            async with asyncio.timeout(self.timeout):
                resp = await client.get_prefix(b"\0portico-probe")
            if resp.header.cluster_id != self.cluster_id or (self.revision or 0) > resp.header.revision:
                raise _ClusterReplaced(f"etcd at {self.endpoint} is a different cluster or lost data")

    async def _follow(self, client: aetcd.Client, on_change: OnChange) -> None:
        watch = await client.watch_prefix(self.root.encode(), start_revision=(self.revision or 0) + 1,
                                          progress_notify=True)
        self._mark_connected()
        log.info("etcd watch on %s from revision %d (%s)", self.root, (self.revision or 0) + 1, self.endpoint)
        async for event in watch:
            key = event.kv.key.decode()
            if event.kind == "DELETE":
                self._mirror.pop(key, None)
            else:
                self._mirror[key] = event.kv.value.decode(errors="replace")
            self.revision = max(self.revision or 0, event.kv.mod_revision)
            on_change({key})
        raise ConnectionError("watch ended")

    async def watch(self, on_change: OnChange) -> None:
        """Keep the mirror current until cancelled; never gives up, logs each outage once per endpoint."""
        backoff = 0.2
        while True:
            try:
                client = await self._get_client()
                if self.revision is None:
                    async with asyncio.timeout(self.timeout + 1):
                        changed = await self._read_all(client)
                    on_change(changed or None)
                follow = asyncio.ensure_future(self._follow(client, on_change))
                probe = asyncio.ensure_future(self._probe(client))
                try:
                    done, _ = await asyncio.wait({follow, probe}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    await _cancel_and_wait(follow, probe)
                for task in done:
                    task.result()
            except asyncio.CancelledError:
                raise
            except aetcd.exceptions.RevisionCompactedError as exc:
                log.warning("etcd compacted history past revision %s (%s); re-reading all keys", self.revision, exc)
                self.revision = None
                continue
            except _ClusterReplaced as exc:
                log.warning("%s; re-reading all keys", exc)
                self.revision = None
                await self._drop_client(rotate=False)
                continue
            except Exception as exc:  # any transport failure: next endpoint, resume from our revision
                self._unreachable(exc)
                await self._drop_client(rotate=True)
                log.info("etcd: retrying on %s in %.1fs (will resume at revision %s)", self.endpoint, backoff,
                         None if self.revision is None else self.revision + 1)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff)
                continue
            backoff = 0.2

    async def close(self) -> None:
        await self._drop_client(rotate=False)


async def _cancel_and_wait(*tasks: asyncio.Future) -> None:
    """Cancel the tasks and wait until they end, cancelling again one that swallowed its cancellation: a
    cancel that lands as aetcd's watch creation completes is lost in Python 3.11's asyncio.wait_for, and the
    task then waits for watch events forever (confsync would never stop)."""
    pending = {task for task in tasks if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=1.0)
    for task in tasks:
        if not task.cancelled():
            task.exception()   # retrieved: the caller reads results from `done` itself


class _ClusterReplaced(RuntimeError):
    pass


class EnvBackend:
    """confd's env backend: key `/myapp/database/url` is variable MYAPP_DATABASE_URL."""

    name = "env"
    supports_watch = False
    revision: int | None = None

    def __init__(self, prefixes: list[str]):
        self.prefixes = prefixes

    async def fetch(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for prefix in self.prefixes:
            env_prefix = prefix.strip("/").replace("/", "_").upper()
            for name, value in os.environ.items():
                if name.startswith(env_prefix):
                    out["/" + name.lower().replace("_", "/")] = value
        return out

    def snapshot(self) -> dict[str, str]:
        raise NotImplementedError

    async def watch(self, on_change: OnChange) -> None:
        raise NotImplementedError("the env backend has no watch; use --interval")

    async def close(self) -> None:
        pass


class FileBackend:
    """confd's file backend: YAML files (or folders of them, -filter) flattened to keys with confd's YAML
    rules (`myapp: {database: {url: x}}` -> /myapp/database/url); see confd_yaml.py."""

    name = "file"
    supports_watch = True
    revision: int | None = None

    def __init__(self, files: list[str], prefixes: list[str], poll: float = 0.5, pattern: str = "*"):
        if not files:
            raise ValueError("the file backend needs at least one --file")
        self.paths = list(files)
        self.pattern = pattern or "*"
        self.prefixes = prefixes
        self.poll = poll
        self._data: dict[str, str] = {}

    def _read(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for path in yaml_files(self.paths, self.pattern):
            try:
                read_yaml_keys(path, out)
            except (OSError, yaml.YAMLError, UnicodeDecodeError) as exc:
                raise BackendUnavailable(f"file backend: {path}: {exc}") from None
        return {k: v for k, v in out.items() if _under(k, self.prefixes)}

    async def fetch(self) -> dict[str, str]:
        self._data = self._read()
        return dict(self._data)

    def snapshot(self) -> dict[str, str]:
        return dict(self._data)

    def _stamp(self) -> list[tuple[float, int] | None]:
        stamps: list[tuple[float, int] | None] = []
        for p in yaml_files(self.paths, self.pattern):
            try:
                st = p.stat()
                stamps.append((st.st_mtime, st.st_size))
            except FileNotFoundError:
                stamps.append(None)
        return stamps

    async def watch(self, on_change: OnChange) -> None:
        stamp = None
        while True:
            current = self._stamp()
            if current != stamp:
                stamp = current
                try:
                    new = self._read()
                except BackendUnavailable as exc:
                    log.warning("%s", exc)
                else:
                    changed = _diff(self._data, new)
                    self._data = new
                    if changed:
                        on_change(changed)
            await asyncio.sleep(self.poll)

    async def close(self) -> None:
        pass


UNSUPPORTED = ("consul", "vault", "dynamodb", "rancher", "ssm")
SUPPORTED = ("etcd", "etcdv3", "redis", "zookeeper", "env", "file")
DEFAULT_NODES = {"etcd": "http://127.0.0.1:2379", "etcdv3": "http://127.0.0.1:2379", "redis": "127.0.0.1:6379",
                 "zookeeper": "127.0.0.1:2181"}


def check_backend_name(kind: str) -> None:
    """Refuse confd backends Portico does not have, at start, with what to use instead."""
    if kind in UNSUPPORTED:
        raise ValueError(f"backend {kind!r} is not supported by portico confsync: use etcd, redis, zookeeper, "
                         "file or env (see docs/confsync.md)")
    if kind not in SUPPORTED:
        raise ValueError(f"unknown backend {kind!r}: use {', '.join(SUPPORTED)}")


def make_backend(kind: str, *, nodes: list[str], prefixes: list[str], files: list[str], password: str = "",
                 separator: str = "", file_filter: str = "*", username: str = "",
                 etcd_tls: EtcdTls | None = None) -> Backend:
    """The backend confd's -backend names; no nodes means confd's default node for that backend."""
    check_backend_name(kind)
    nodes = list(nodes) or [DEFAULT_NODES[kind]] if kind in DEFAULT_NODES else list(nodes)
    if kind in ("etcd", "etcdv3"):
        if etcd_tls is None and any(n.startswith("https://") for n in nodes):
            etcd_tls = EtcdTls()   # https nodes: TLS verified against the system's CAs
        return EtcdBackend(nodes, prefixes, username=username, password=password, tls=etcd_tls)
    if kind == "redis":
        from portico.confsync.redis_backend import RedisBackend
        return RedisBackend(nodes, prefixes, password=password, separator=separator)
    if kind == "zookeeper":
        from portico.confsync.zookeeper_backend import ZookeeperBackend
        return ZookeeperBackend(nodes, prefixes)
    if kind == "env":
        return EnvBackend(prefixes)
    if kind == "file":
        return FileBackend(files, prefixes, pattern=file_filter)
    raise ValueError(f"unknown backend {kind!r}: use {', '.join(SUPPORTED)}")
