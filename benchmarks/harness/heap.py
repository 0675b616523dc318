"""Waiting for the router's huge-page pass after a big step, so a measured run does not share the router's CPU
with it: once its table has grown by 50,000 routes and settled, the router moves its heap to 2 MiB pages from a
thread of its own (portico/huge_pages.py, /varz `huge_pages`), 0.2 s at 100k routes and ~2 s at 1M. A router
that steadily serves a big table has made that pass long before; the harness measures that state."""

from __future__ import annotations

import time

from .httpprobe import get_json

GROW_STEP = 50_000    # portico.huge_pages.GROW_STEP: growth after which the router makes a pass


def huge_page_passes(target) -> int | None:
    """The router's passes so far; None when /varz has no `huge_pages` or the kernel cannot make them."""
    try:
        pages = get_json(f"http://127.0.0.1:{target.extra['status_port']}/varz", "admin", "admin", 10)["huge_pages"]
    except Exception:  # an older router, or not Portico
        return None
    return pages["passes"] if pages.get("supported") else None


def wait_for_heap_pass(target, before: int | None, grown: int, log=print, timeout: float = 30.0) -> float | None:
    """After the table grew by `grown` routes: wait until the router has made a pass more than `before`.
    Returns the seconds waited, None when no pass was due or the router makes none."""
    if before is None or grown < GROW_STEP:
        return None
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        now = huge_page_passes(target)
        if now is None or now > before:
            break
        time.sleep(0.1)
    waited = time.monotonic() - t0
    log(f"    the router's huge-page pass done after {waited:.1f}s")
    return waited
