"""Background-task helpers shared by the loops that run beside the data plane (pruner, NATS reader, stats)."""

from __future__ import annotations

import asyncio

RECANCEL_EVERY = 0.25   # seconds between cancels of a task that has not ended yet


async def cancel_and_wait(task: asyncio.Future | None, recancel_every: float = RECANCEL_EVERY) -> None:
    """Cancel `task` and wait until it has ended, so a stop() returns only once its loop is gone.

    One cancel can be lost, so it is repeated until the task ends. Python 3.11's `asyncio.wait_for`, when the
    call it waits for finishes in the same loop turn as the cancel (a refused connect finishes at once), hands
    back that call's own outcome instead of CancelledError; a caller that retries in a loop (nats-py's first
    connect while NATS is down) then simply carries on, and a router waiting for NATS ignored SIGTERM.
    A task that failed raises its error here, as `await task` would.
    """
    if task is None:
        return
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=recancel_every)
    if not task.cancelled():
        task.result()
