"""The route snapshot file: loaded at start, written every interval, on drain and on stop.

Without it a restarted router knows no routes until every registrar has heartbeated again (20 s or more), and
answers 404 meanwhile. The table's side (what goes in the file) is portico/routes/snapshot.py; this module only
does the file: where it lives, atomic replacement, the timer. Writes run in a thread so a large table's file
does not stall requests; building the bytes stays on the loop, where the table is consistent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from portico.config.settings import RouteSnapshotSettings
from portico.routes.snapshot import SnapshotError, restore, serialise
from portico.routes.table import RouteTable

log = logging.getLogger("portico.snapshot")


def default_snapshot_path(port: int) -> Path:
    """routes-<proxy port>.json in the user's state directory ($XDG_STATE_HOME, else ~/.local/state)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "portico" / f"routes-{port}.json"


def write_atomically(path: Path, data: bytes) -> None:
    """Replace `path` with `data` so that a reader (or a crash) sees the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


class RouteSnapshotKeeper:
    """Loads and keeps one router's snapshot. Only the writer (worker 0) writes; every worker loads."""

    def __init__(self, settings: RouteSnapshotSettings, port: int, table: RouteTable, *, writer: bool = True,
                 clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.path = Path(settings.file) if settings.file else default_snapshot_path(port)
        self.table = table
        self.writer = writer and settings.enabled
        self.clock, self.wall = clock, wall
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    def load(self) -> int:
        """Put the snapshot's still-live endpoints in the table; how many. A bad file is logged, not fatal."""
        if not self.settings.enabled:
            return 0
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return 0
        except OSError as exc:
            log.warning("route snapshot %s not read (%s); starting with no routes", self.path, exc)
            return 0
        try:
            restored = restore(self.table, data, self.clock(), self.wall())
        except SnapshotError as exc:
            log.warning("route snapshot %s ignored: %s; starting with no routes", self.path, exc)
            return 0
        log.info("route snapshot %s: %d endpoints restored on %d routes", self.path, restored, len(self.table))
        return restored

    def start(self) -> None:
        if self.writer and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._every_interval())

    async def write(self) -> None:
        """Write the table now (atomically, in a thread). Errors are logged: routing goes on without a file."""
        if not self.writer:
            return
        async with self._lock:
            data = serialise(self.table, self.clock(), self.wall())
            try:
                await asyncio.get_running_loop().run_in_executor(None, write_atomically, self.path, data)
            except OSError as exc:
                log.warning("route snapshot %s not written: %s", self.path, exc)

    async def stop(self) -> None:
        """Stop the timer and write a last time."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.write()

    async def _every_interval(self) -> None:
        while True:
            await asyncio.sleep(self.settings.interval)
            await self.write()
