"""List-then-watch one kind of Kubernetes object into a dict, the way client-go's reflector does.

A list gives the objects and a resourceVersion; a watch from that version streams ADDED / MODIFIED / DELETED and
BOOKMARK events (bookmarks only move the version on). When the server ends the watch (its timeout) the watch is
resumed from the last version seen; when the version is too old (410 Gone) the objects are listed again and the
store is replaced in one step, so a consumer never sees a half-built view. Objects stay plain JSON dicts: the
desired-state function reads a few fields and decoding into models would cost more than it gives.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

log = logging.getLogger("portico.kube")

Key = tuple[str, str]
ListCall = Callable[..., Awaitable[Any]]  # a kubernetes_asyncio list_* method


class Gone(Exception):
    """The watch's resourceVersion is too old: list again."""


class ApiError(Exception):
    pass


def key_of(obj: dict[str, Any]) -> Key:
    meta = obj.get("metadata") or {}
    return meta.get("namespace", ""), meta.get("name", "")


class Reflector:
    """Keeps `store` equal to the server's objects of one kind; calls `on_change()` after every change."""

    def __init__(self, kind: str, list_call: ListCall, on_change: Callable[[], None], *,
                 watch_timeout: int = 300, page_size: int = 500, retry_delay: float = 1.0,
                 **selectors: str) -> None:
        self.kind = kind
        self.list_call = list_call
        self.on_change = on_change
        self.watch_timeout = watch_timeout
        self.page_size = page_size
        self.retry_delay = retry_delay
        self.selectors = selectors  # label_selector / field_selector
        self.store: dict[Key, dict[str, Any]] = {}
        self.synced = asyncio.Event()
        self.resource_version = ""
        self.relists = 0

    async def run(self) -> None:
        """List, then watch forever; relist on 410 Gone; retry (after retry_delay) on any other failure."""
        while True:
            try:
                await self._list()
                while True:
                    await self._watch()
            except asyncio.CancelledError:
                raise
            except Gone:
                log.info("%s: resourceVersion %s expired (410 Gone); listing again", self.kind,
                         self.resource_version)
            except Exception as exc:
                log.warning("%s: list/watch failed (%s: %s); retrying in %gs", self.kind, type(exc).__name__,
                            exc, self.retry_delay)
                await asyncio.sleep(self.retry_delay)

    async def _list(self) -> None:
        items: dict[Key, dict[str, Any]] = {}
        token = None
        while True:
            kwargs: dict[str, Any] = dict(self.selectors, limit=self.page_size, _preload_content=False,
                                          _request_timeout=60)
            if token:
                kwargs["_continue"] = token
            resp = await self.list_call(**kwargs)
            try:
                body = await resp.read()
                if resp.status == 410:
                    raise Gone()
                if resp.status != 200:
                    raise ApiError(f"list {self.kind}: HTTP {resp.status}: {body[:300]!r}")
            finally:
                resp.release()
            page = json.loads(body)
            for obj in page.get("items") or []:
                items[key_of(obj)] = obj
            meta = page.get("metadata") or {}
            token = meta.get("continue")
            if not token:
                break
        self.resource_version = meta.get("resourceVersion", "")
        self.store = items
        self.relists += 1
        log.debug("%s: listed %d at resourceVersion %s", self.kind, len(items), self.resource_version)
        self.synced.set()
        self.on_change()

    async def _watch(self) -> None:
        resp = await self.list_call(
            **self.selectors, watch=True, resource_version=self.resource_version, allow_watch_bookmarks=True,
            timeout_seconds=self.watch_timeout, _preload_content=False,
            _request_timeout=aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=self.watch_timeout + 30))
        try:
            if resp.status == 410:
                raise Gone()
            if resp.status != 200:
                raise ApiError(f"watch {self.kind}: HTTP {resp.status}: {(await resp.read())[:300]!r}")
            while True:
                line = await resp.content.readline()
                if not line:
                    return  # the server ended the watch (its timeout): resume from the last version
                if line.strip():
                    self._apply(json.loads(line))
        finally:
            resp.release()

    def _apply(self, event: dict[str, Any]) -> None:
        kind, obj = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            if obj.get("code") == 410:
                raise Gone()
            raise ApiError(f"watch {self.kind}: {obj.get('reason')}: {obj.get('message')}")
        version = (obj.get("metadata") or {}).get("resourceVersion")
        if version:
            self.resource_version = version
        if kind == "BOOKMARK":
            return
        if kind == "DELETED":
            self.store.pop(key_of(obj), None)
        elif kind in ("ADDED", "MODIFIED"):
            self.store[key_of(obj)] = obj
        else:
            log.warning("%s: ignoring a watch event of unknown type %r", self.kind, kind)
            return
        self.on_change()
