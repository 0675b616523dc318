"""Waiting for something a real process will do: poll a predicate until it holds or time runs out.

One place for every suite (e2e, confsync, bus); tests/conftest.py puts this folder on the import path.
"""

from __future__ import annotations

import asyncio
import time


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05, message: str = "condition",
             detail=None):
    """Return the predicate's first truthy value; AssertionError naming `message` after `timeout` seconds.

    `detail`, a function, adds context to the failure (a log's last lines, say).
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{message} not met within {timeout}s" + (f"\n{detail()}" if detail else ""))
        time.sleep(interval)


async def poll_until(fetch, expect, timeout: float = 15.0, interval: float = 0.1, message: str = "condition"):
    """Call `fetch` until `expect(result)` and return that result; `fetch` runs in a thread (a blocking probe
    must not stall the loop under test) and may return a coroutine, which is awaited.

    A fetch that raises counts as "not yet" (a server still starting); the failure names the last result.
    """
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            result = await asyncio.to_thread(fetch)
            last = await result if asyncio.iscoroutine(result) else result
            if expect(last):
                return last
        except Exception as exc:
            last = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"{message} not met within {timeout}s; last {last!r}")
        await asyncio.sleep(interval)


async def eventually(predicate, timeout: float = 10.0, interval: float = 0.01, message: str = "condition"):
    """wait_for for async tests: sleeps on the event loop so the code under test keeps running."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{message} not met within {timeout}s")
        await asyncio.sleep(interval)
