"""Drive the resources: one full pass (--onetime), a polling loop (--interval) or a watch with debounce.

Each resource has its own worker and status, so one broken template or failing check never blocks the
others. A burst of key changes within the debounce window becomes one render and at most one reload, and
reloads of one resource are spaced by its min_reload_interval.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from dataclasses import asdict, dataclass

from portico.confsync.backends import Backend, BackendUnavailable
from portico.confsync.render import Renderer, RenderError
from portico.confsync.resources import ResourceError, TemplateResource
from portico.confsync.writer import SyncError, sync

log = logging.getLogger("portico.confsync")


@dataclass(slots=True)
class ResourceStatus:
    """What an operator wants to know about one resource; served as JSON by the status endpoint."""

    name: str
    dest: str
    ok: bool = True
    renders: int = 0
    reloads: int = 0
    last_render: float | None = None      # unix time of the last successful render
    last_write: float | None = None
    last_reload: float | None = None
    last_error: str = ""
    last_error_at: float | None = None
    revision: int | None = None           # backend revision of the last successful render
    pending_diff: str = ""                # noop mode: what would change

    def as_dict(self) -> dict:
        return asdict(self)


class EmptyKeysRefused(RuntimeError):
    """The watched keys went from some to none; the last good config is kept."""


class ResourceWorker:
    """Renders and syncs one resource, and remembers how that went."""

    def __init__(self, resource: TemplateResource, renderer: Renderer, *, noop: bool = False,
                 sync_only: bool = False, keep_stage_file: bool = False):
        self.resource = resource
        self.renderer = renderer
        self.noop, self.sync_only, self.keep_stage_file = noop, sync_only, keep_stage_file
        self.status = ResourceStatus(resource.name, str(resource.dest))
        self.had_keys: bool | None = None     # None: not seen yet
        self.dirty = asyncio.Event()
        self._last_reload_mono = float("-inf")

    def interested(self, changed: set[str] | None) -> bool:
        return changed is None or any(k.startswith(w) for k in changed for w in self.resource.watched)

    def _guard_empty(self, keys: dict[str, str]) -> None:
        r = self.resource
        if keys or r.allow_empty or not r.keys:
            return
        if self.had_keys or (self.had_keys is None and r.dest.exists()):
            raise EmptyKeysRefused(
                f"watched keys {r.watched} are empty; keeping the last good {r.dest} "
                f"(set allow_empty = true in {r.source_file.name} to allow)")

    async def process(self, snapshot: dict[str, str], revision: int | None = None) -> bool:
        """Render and sync once from `snapshot`. Returns True when the resource is healthy."""
        r = self.resource
        keys = r.select(snapshot)
        try:
            self._guard_empty(keys)
            content = self.renderer.render(r, keys)
            self.had_keys = bool(keys)
            now = time.time()
            self.status.renders += 1
            self.status.last_render, self.status.revision = now, revision
            result = await sync(r, content, noop=self.noop, sync_only=self.sync_only,
                                keep_stage_file=self.keep_stage_file)
            if result.diff:
                self.status.pending_diff = result.diff
                sys.stdout.write(result.diff)
                sys.stdout.flush()
            if result.written:
                self.status.last_write = now
            if result.reloaded:
                self.status.reloads += 1
                self.status.last_reload = time.time()
                self._last_reload_mono = time.monotonic()
        except (RenderError, SyncError, EmptyKeysRefused, ResourceError, OSError) as exc:
            level = logging.WARNING if isinstance(exc, EmptyKeysRefused) else logging.ERROR
            log.log(level, "%s: %s", r.name, exc)
            self.status.ok, self.status.last_error, self.status.last_error_at = False, str(exc), time.time()
            return False
        self.status.ok, self.status.last_error = True, ""
        return True

    async def wait_turn(self) -> None:
        """Debounce: wait for `debounce` seconds of quiet (at most 10 windows), then respect the reload spacing."""
        r = self.resource
        deadline = time.monotonic() + max(r.debounce * 10, r.debounce)
        while r.debounce > 0:
            self.dirty.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                async with asyncio.timeout(min(r.debounce, remaining)):
                    await self.dirty.wait()
            except TimeoutError:
                break
        spacing = self._last_reload_mono + r.min_reload_interval - time.monotonic()
        if spacing > 0:
            await asyncio.sleep(spacing)
        self.dirty.clear()


class Runner:
    """Owns the workers, the backend and the loop that feeds one into the other."""

    def __init__(self, resources: list[TemplateResource], backend: Backend, renderer: Renderer, *,
                 noop: bool = False, sync_only: bool = False, keep_stage_file: bool = False):
        self.backend = backend
        self.workers = [ResourceWorker(r, renderer, noop=noop, sync_only=sync_only,
                                       keep_stage_file=keep_stage_file) for r in resources]
        self.backend_error = ""

    def status(self) -> dict:
        return {
            "ok": self.ok(),
            "backend": {"name": self.backend.name, "revision": self.backend.revision,
                        "error": getattr(self.backend, "last_error", "") or self.backend_error},
            "resources": {w.resource.name: w.status.as_dict() for w in self.workers},
        }

    def ok(self) -> bool:
        return not self.backend_error and all(w.status.ok for w in self.workers)

    async def _fetch(self) -> dict[str, str]:
        snapshot = await self.backend.fetch()
        self.backend_error = ""
        return snapshot

    async def run_once(self) -> bool:
        """One pass over every resource (confd -onetime). False when anything failed."""
        try:
            snapshot = await self._fetch()
        except BackendUnavailable as exc:
            self.backend_error = str(exc)
            log.error("backend %s unavailable: %s", self.backend.name, exc)
            for w in self.workers:
                w.status.ok, w.status.last_error = False, f"backend unavailable: {exc}"
            return False
        results = [await w.process(snapshot, self.backend.revision) for w in self.workers]
        return all(results)

    async def run_interval(self, interval: float) -> None:
        """confd's default mode: a full pass every `interval` seconds."""
        while True:
            await self.run_once()
            await asyncio.sleep(interval)

    async def _initial(self) -> None:
        delay = 0.5
        while True:
            try:
                snapshot = await self._fetch()
                break
            except BackendUnavailable as exc:
                self.backend_error = str(exc)
                log.error("backend %s unavailable, retrying in %.1fs: %s", self.backend.name, delay, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        for w in self.workers:
            await w.process(snapshot, self.backend.revision)

    def _on_change(self, changed: set[str] | None) -> None:
        self.backend_error = ""
        for w in self.workers:
            if w.interested(changed):
                w.dirty.set()

    async def _worker_loop(self, worker: ResourceWorker) -> None:
        while True:
            await worker.dirty.wait()
            await worker.wait_turn()
            await worker.process(self.backend.snapshot(), self.backend.revision)

    async def run_watch(self) -> None:
        """Initial pass, then follow the backend's watch; each resource re-renders after its debounce."""
        await self._initial()
        tasks = [asyncio.ensure_future(self.backend.watch(self._on_change))]
        tasks += [asyncio.ensure_future(self._worker_loop(w)) for w in self.workers]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for t in done:
                t.result()
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
