"""`--workers N`: every worker's counters, seen together on worker 0's status port.

Each worker other than 0 writes its metrics snapshot to a file in a directory the supervisor made, once a
second, atomically (write, then rename). Worker 0, which serves the status ports, adds those files to its own
live snapshot when it is read. A worker's numbers are at most about a second old; the hot path never knows.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Any

import msgspec

from portico.tasks import cancel_and_wait

log = logging.getLogger("portico.workers")

WRITE_INTERVAL = 1.0
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode


def write_snapshot(directory: Path, index: int, snapshot: dict[str, Any]) -> None:
    target = directory / f"worker-{index}.json"
    tmp = directory / f".worker-{index}.json.tmp"
    tmp.write_bytes(_encode(snapshot))
    os.replace(tmp, target)


def read_snapshots(directory: Path, skip_index: int = 0) -> list[dict[str, Any]]:
    """The other workers' last snapshots (a file being replaced or unreadable is skipped this time)."""
    out = []
    for path in directory.glob("worker-*.json"):
        if path.name == f"worker-{skip_index}.json":
            continue
        try:
            out.append(_decode(path.read_bytes()))
        except (OSError, msgspec.DecodeError):
            continue
    return out


class SnapshotWriter:
    """Runs in a worker without status ports: hands its counters to worker 0 through `directory`."""

    def __init__(self, directory: Path, index: int, metrics: Any) -> None:
        self.directory = directory
        self.index = index
        self.metrics = metrics
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)
        self._write()  # the last counts, so a drained worker's requests are not lost from the totals

    async def _run(self) -> None:
        while True:
            self._write()
            await asyncio.sleep(WRITE_INTERVAL)

    def _write(self) -> None:
        try:
            write_snapshot(self.directory, self.index, self.metrics.snapshot())
        except OSError as exc:
            log.warning("could not write worker %d counters to %s: %s", self.index, self.directory, exc)
