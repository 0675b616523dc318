"""Waiting for something a real process will do: poll a predicate until it holds or time runs out.

One place for every suite (e2e, confsync, bus); tests/conftest.py puts this folder on the import path.
"""

from __future__ import annotations

import asyncio
import time


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05, message: str = "condition"):
    """Return the predicate's first truthy value; AssertionError naming `message` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{message} not met within {timeout}s")
        time.sleep(interval)


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
