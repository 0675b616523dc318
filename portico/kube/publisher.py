"""Publish the desired registrations on NATS with gorouter's messages, and only what changed.

- `update(desired)`: router.register for each new (uri, endpoint), router.unregister at once for each one gone;
- every interval, everything is registered again (routers prune what is not refreshed); the interval follows
  the routers' `minimumRegisterIntervalInSeconds` from router.start / router.greet, as the registrar does
  (`portico.registrar.service`): max(configured, the router's), capped at a third of the route TTL;
- a router.start (a router started or reconnected) or a NATS reconnect: register everything now;
- inactive (not the leader): publish nothing, but remember what disappeared meanwhile, so that on becoming
  the leader exactly those are unregistered, once, by this replica alone.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import nats
from nats.errors import NoRespondersError

from portico.kube.desired import Registration
from portico.registrar.service import REGISTER, ROUTER_GREET, ROUTER_START, UNREGISTER

log = logging.getLogger("portico.kube")


class Publisher:
    def __init__(self, nats_urls: list[str], *, interval: float = 20.0, ttl: float = 120.0,
                 greet_timeout: float = 2.0) -> None:
        self.nats_urls = nats_urls
        self.configured_interval = interval
        self.ttl = ttl
        self.greet_timeout = greet_timeout
        self.router_min_interval: float | None = None
        self.active = False
        self.desired: set[Registration] = set()
        self.published: set[Registration] = set()
        self.gone_while_inactive: set[Registration] = set()
        self.registered = 0
        self.unregistered = 0
        self.nc: Any = None
        self._wake = asyncio.Event()
        self._refresh_task: asyncio.Task[None] | None = None

    @property
    def interval(self) -> float:
        adopted = self.router_min_interval
        if not adopted:
            return self.configured_interval
        return max(self.configured_interval, min(adopted, self.ttl / 3))

    # --- NATS ----------------------------------------------------------------------------------------------

    async def start(self, retry_delay: float = 1.0) -> None:
        """Connect (waiting for NATS as long as it takes: the controller may start before it), subscribe."""
        while True:
            try:
                self.nc = await nats.connect(servers=self.nats_urls, name="portico-kube", allow_reconnect=True,
                                             max_reconnect_attempts=-1, reconnect_time_wait=1, connect_timeout=2,
                                             reconnected_cb=self._on_reconnected, error_cb=self._on_error)
                break
            except Exception as exc:
                log.warning("NATS %s: %s; trying again in %gs", ", ".join(self.nats_urls), exc or type(exc).__name__,
                            retry_delay)
                await asyncio.sleep(retry_delay)
        await self.nc.subscribe(ROUTER_START, cb=self._on_router_start)
        await self.nc.flush()
        self._refresh_task = asyncio.get_running_loop().create_task(self._refresh_loop(), name="kube:refresh")
        asyncio.get_running_loop().create_task(self._greet())

    async def stop(self) -> None:
        if self._refresh_task:
            self._refresh_task.cancel()
            await asyncio.gather(self._refresh_task, return_exceptions=True)
        if self.nc is not None:
            try:
                await self.nc.flush(timeout=2)
                await self.nc.close()
            except Exception as exc:
                log.debug("closing NATS: %s", exc)

    async def _on_error(self, exc: Exception) -> None:
        log.warning("NATS: %s", exc)

    async def _on_reconnected(self) -> None:
        log.info("NATS: reconnected; registering every route now")
        self._wake.set()

    def _adopt(self, data: bytes, source: str) -> None:
        try:
            payload = json.loads(data or b"{}")
        except ValueError:
            log.warning("ignoring a %s message that is not JSON: %.200r", source, data)
            return
        minimum = payload.get("minimumRegisterIntervalInSeconds") if isinstance(payload, dict) else None
        if isinstance(minimum, (int, float)) and not isinstance(minimum, bool) and minimum > 0:
            self.router_min_interval = float(minimum)
            log.info("%s: routers ask for registrations every %gs; registering every %gs", source, minimum,
                     self.interval)

    async def _on_router_start(self, msg: Any) -> None:
        self._adopt(msg.data, ROUTER_START)
        self._wake.set()

    async def _greet(self) -> None:
        try:
            reply = await self.nc.request(ROUTER_GREET, b"", timeout=self.greet_timeout)
        except (TimeoutError, NoRespondersError):
            log.info("no router answered %s; registering every %gs until a router.start", ROUTER_GREET,
                     self.interval)
            return
        except Exception as exc:
            log.warning("%s failed: %s", ROUTER_GREET, exc)
            return
        self._adopt(reply.data, f"{ROUTER_GREET} answer")

    async def _send(self, subject: str, regs: set[Registration]) -> None:
        tags = {"source": "kubernetes"}
        for reg in sorted(regs):
            message = reg.message(tags)
            message["stale_threshold_in_seconds"] = int(self.ttl)
            await self.nc.publish(subject, json.dumps(message, separators=(",", ":")).encode())
        if regs:
            await self.nc.flush(timeout=5)

    # --- state ---------------------------------------------------------------------------------------------

    async def update(self, desired: set[Registration]) -> None:
        """Make the routers' view follow `desired`: register what is new, unregister what went away."""
        previous, self.desired = self.desired, set(desired)
        if not self.active:
            self.gone_while_inactive = (self.gone_while_inactive | (previous - desired)) - desired
            return
        added, removed = desired - self.published, self.published - desired
        await self._send(UNREGISTER, removed)
        await self._send(REGISTER, added)
        self.published = set(desired)
        self.registered += len(added)
        self.unregistered += len(removed)
        if added or removed:
            log.info("registered %d and unregistered %d (uri, endpoint) pair(s); %d routed", len(added),
                     len(removed), len(desired))

    async def activate(self) -> None:
        """Become the publisher (the leader): unregister what vanished while inactive, register everything."""
        self.active = True
        gone = self.gone_while_inactive - self.desired
        self.gone_while_inactive = set()
        await self._send(UNREGISTER, gone)
        await self._send(REGISTER, self.desired)
        self.published = set(self.desired)
        self.unregistered += len(gone)
        self.registered += len(self.desired)
        log.info("publishing: registered %d pair(s), unregistered %d that went away meanwhile",
                 len(self.desired), len(gone))

    def deactivate(self) -> None:
        """Stop publishing (leadership lost). Nothing is unregistered: the next leader keeps the routes."""
        self.active = False
        self.published = set()

    async def _refresh_loop(self) -> None:
        while True:
            self._wake.clear()
            try:
                async with asyncio.timeout(self.interval):
                    await self._wake.wait()
            except TimeoutError:
                pass
            if self.active and self.published:
                try:
                    await self._send(REGISTER, self.published)
                except Exception as exc:
                    log.warning("could not refresh the registrations: %s", exc)
