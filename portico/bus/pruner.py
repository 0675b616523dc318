"""Pruning: every prune_stale_droplets_interval, drop endpoints that were not re-registered within their TTL.

With suspend_pruning_if_nats_unavailable, nothing is pruned while NATS is down (apps cannot re-register
then, so their silence means nothing), and when NATS comes back every endpoint's timestamp is refreshed, so
apps get a full TTL to re-register before anything is pruned.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from portico.config.settings import RouterConfig
from portico.routes.endpoint import Endpoint
from portico.routes.table import RouteTable
from portico.state import RouterState
from portico.tasks import cancel_and_wait

log = logging.getLogger("portico.bus.pruner")

PRUNE_SLICE = 5000    # routes pruned per event-loop turn (~2-5 ms)
_LOG_EACH_UP_TO = 20  # above this many removals in one pass, log a summary line only (details at debug)


class Pruner:
    """An asyncio task pruning `table` every `interval` seconds (default config.prune_stale_droplets_interval)."""

    def __init__(self, config: RouterConfig, table: RouteTable, state: RouterState,
                 clock: Callable[[], float] = time.monotonic, *, interval: float | None = None) -> None:
        self.config = config
        self.table = table
        self.state = state
        self.clock = clock
        self.interval = interval if interval is not None else config.prune_stale_droplets_interval
        self.suspended = False      # True while the last pass was skipped because NATS was down
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="portico-pruner")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def prune_once(self) -> list[tuple[str, Endpoint]]:
        """One pass at once: remove stale endpoints (or skip while NATS is down and suspension is on)."""
        if not self._may_prune():
            return []
        removed = self.table.prune(self.clock())
        self._report(removed)
        return removed

    async def prune_in_slices(self) -> list[tuple[str, Endpoint]]:
        """One pass, PRUNE_SLICE routes per loop turn: walking a 1M-route table takes about a second of CPU,
        which must not stall requests. `now` is taken once, so an endpoint re-registered during the pass is
        never stale in it; a route removed meanwhile is skipped."""
        if not self._may_prune():
            return []
        now = self.clock()
        table = self.table
        pools = list(table.pools())
        removed: list[tuple[str, Endpoint]] = []
        for start in range(0, len(pools), PRUNE_SLICE):
            if start:
                await asyncio.sleep(0)
            removed += table.prune_pools(pools[start:start + PRUNE_SLICE], now)
        table.drop_expired_empty_pools(now)
        self._report(removed)
        return removed

    def _may_prune(self) -> bool:
        if self.config.suspend_pruning_if_nats_unavailable and not self.state.nats_connected:
            if not self.suspended:
                log.warning("NATS unavailable: pruning suspended")
            self.suspended = True
            return False
        if self.suspended:
            # NATS is back but the reconnect hook was not wired (or has not run yet): refresh before pruning.
            self.on_nats_reconnected()
        return True

    def _report(self, removed: list[tuple[str, Endpoint]]) -> None:
        if removed:
            self.state.metrics.pruned_endpoints += len(removed)
            if len(removed) <= _LOG_EACH_UP_TO:
                for key, ep in removed:
                    log.info("pruned stale endpoint %s from %s (ttl %ss)", ep.address, key, int(ep.ttl))
            else:
                log.info("pruned %d stale endpoints", len(removed))
                for key, ep in removed:
                    log.debug("pruned stale endpoint %s from %s (ttl %ss)", ep.address, key, int(ep.ttl))

    def on_nats_reconnected(self) -> None:
        """RouteBus.on_reconnect hook: refresh every endpoint's timestamp when pruning is suspendable."""
        if not self.config.suspend_pruning_if_nats_unavailable:
            return
        self.table.refresh_all(self.clock())
        if self.suspended:
            log.info("NATS is back: endpoint timestamps refreshed, pruning resumed")
        self.suspended = False

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.prune_in_slices()
            except Exception:  # a pruning bug must not stop pruning for good
                log.exception("pruning pass failed")


__all__ = ["Pruner"]
