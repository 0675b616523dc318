"""Background-task helpers shared by the loops that run beside the data plane (pruner, NATS reader, stats)."""

from __future__ import annotations

import asyncio


async def cancel_and_wait(task: asyncio.Task | None) -> None:
    """Cancel `task` and wait until it has ended, so a stop() returns only once its loop is gone."""
    if task is None:
        return
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
