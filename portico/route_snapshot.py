"""The route snapshot file: loaded at start, written every interval, on drain and on stop.

Without it a restarted router knows no routes until every registrar has heartbeated again (20 s or more), and
answers 404 meanwhile. The table's side (what goes in the file) is portico/routes/snapshot.py; this module only
does the file: where it lives, atomic replacement, the timer. The table's lines are made on the loop (where the
table lives) a piece of 2,000 routes at a time and written in a thread, so a large table's file neither
stalls requests nor sits whole in memory; loading reads it a line at a time.
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
from portico.routes.snapshot import SnapshotError, restore_lines, serialise_pieces
from portico.routes.table import RouteTable

log = logging.getLogger("portico.snapshot")


def default_snapshot_path(port: int) -> Path:
    """routes-<proxy port>.json in the user's state directory ($XDG_STATE_HOME, else ~/.local/state)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "portico" / f"routes-{port}.json"


class AtomicFile:
    """A file replaced whole: written to a temporary beside it, then renamed over it on `commit()`, so a
    reader (or a crash) sees the old file or the new one, never half. `discard()` leaves the old one."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path = path
        self.tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        self._out = os.fdopen(os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb")

    def write(self, data: bytes) -> None:
        self._out.write(data)

    def commit(self) -> None:
        try:
            self._out.flush()
            os.fsync(self._out.fileno())
            self._out.close()
            os.replace(self.tmp, self.path)
        except BaseException:
            self.discard()
            raise

    def discard(self) -> None:
        self._out.close()
        with contextlib.suppress(OSError):
            self.tmp.unlink()


def write_atomically(path: Path, data: bytes) -> None:
    """Replace `path` with `data` atomically (see AtomicFile)."""
    out = AtomicFile(path)
    try:
        out.write(data)
    except BaseException:
        out.discard()
        raise
    out.commit()


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
            with self.path.open("rb") as lines:  # a line of routes at a time: never the whole file in memory
                restored = restore_lines(self.table, lines, self.clock(), self.wall())
        except FileNotFoundError:
            return 0
        except OSError as exc:
            log.warning("route snapshot %s not read (%s); starting with no routes", self.path, exc)
            return 0
        except SnapshotError as exc:
            log.warning("route snapshot %s ignored: %s; starting with %d routes", self.path, exc, len(self.table))
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
            loop = asyncio.get_running_loop()
            try:
                out = await loop.run_in_executor(None, AtomicFile, self.path)
            except OSError as exc:
                log.warning("route snapshot %s not written: %s", self.path, exc)
                return
            try:
                # pieces are made on the loop (where the table lives) and written in a thread, one at a time
                for piece in serialise_pieces(self.table, self.clock(), self.wall()):
                    await loop.run_in_executor(None, out.write, piece)
                await loop.run_in_executor(None, out.commit)
            except OSError as exc:
                out.discard()
                log.warning("route snapshot %s not written: %s", self.path, exc)
            except BaseException:
                out.discard()
                raise

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
