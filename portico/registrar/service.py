"""The registrar: keep each route registered on NATS while its health check passes.

One asyncio task per route runs: check health -> publish -> sleep until the next interval (or until woken).

- healthy (or no health check): publish `router.register` every interval;
- unhealthy: publish `router.unregister` once (on the first failed check, whether the route was healthy before
  or never was) and publish nothing more for it until a check passes again;
- `router.start` (a router started or reconnected): adopt its `minimumRegisterIntervalInSeconds` and check and
  register every route at once, so a restarted router learns the routes without waiting a whole interval;
- `router.greet` is asked once after connecting (and after each reconnect); the first answer is adopted the
  same way, without the immediate re-registration;
- after a NATS reconnect every route is checked and registered at once (routers may have pruned it);
- `stop()`: unregister every route, flush, close.

Interval rule (see docs/registrar.md): effective = max(configured, router's minimumRegisterIntervalInSeconds),
except that the router's value is only adopted up to a third of the route's TTL (its stale_threshold_in_seconds,
or the router's pruneThresholdInSeconds), so adopting it can never let the route expire between registrations.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import nats
from nats.errors import NoRespondersError

from portico.registrar.config import RegistrarConfig, Route
from portico.registrar.health import CheckResult, run_check

log = logging.getLogger("portico.registrar")

REGISTER = "router.register"
UNREGISTER = "router.unregister"
ROUTER_START = "router.start"
ROUTER_GREET = "router.greet"


@dataclass
class RouteState:
    route: Route
    healthy: bool | None = None          # None until the first check
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    kick: bool = False                   # run the next check now instead of waiting out the interval
    registrations: int = 0
    task: asyncio.Task | None = None


def _describe(route: Route) -> str:
    return f"route {route.name!r} ({', '.join(route.uris)} -> {route.address})"


class Registrar:
    def __init__(self, config: RegistrarConfig, *, greet_timeout: float = 2.0):
        self.config = config
        self.greet_timeout = greet_timeout
        self.instance_id = str(uuid.uuid4())  # default private_instance_id, one per process like route-registrar
        self.router_min_interval: float | None = None
        self.router_prune_threshold: float | None = None
        self.states = [RouteState(route) for route in config.routes]
        self.nc: Any = None
        self._greet_task: asyncio.Task | None = None
        self._stopping = False
        self._last_error, self._last_error_at = "", 0.0

    # --- intervals --------------------------------------------------------------------------------------

    def effective_interval(self, route: Route) -> float:
        configured = route.registration_interval
        adopted = self.router_min_interval
        if not adopted:
            return configured
        ttls = [t for t in (route.stale_threshold_in_seconds, self.router_prune_threshold) if t]
        if ttls:
            adopted = min(adopted, min(ttls) / 3)
        return max(configured, adopted)

    def _adopt_router_payload(self, data: bytes, source: str) -> bool:
        try:
            payload = json.loads(data or b"{}")
            if not isinstance(payload, dict):
                raise ValueError("not a JSON object")
        except ValueError as exc:
            log.warning("ignoring %s message that is not a JSON object (%s): %.200r", source, exc, data)
            return False
        minimum = payload.get("minimumRegisterIntervalInSeconds")
        prune = payload.get("pruneThresholdInSeconds")
        if isinstance(prune, (int, float)) and not isinstance(prune, bool) and prune > 0:
            self.router_prune_threshold = float(prune)
        if isinstance(minimum, (int, float)) and not isinstance(minimum, bool) and minimum > 0:
            self.router_min_interval = float(minimum)
        intervals = ", ".join(f"{s.route.name}={self.effective_interval(s.route):g}s" for s in self.states)
        log.info("%s from router %s (hosts %s): minimumRegisterIntervalInSeconds=%s pruneThresholdInSeconds=%s; "
                 "registration intervals now %s", source, payload.get("id", "?"), payload.get("hosts", []),
                 minimum, prune, intervals)
        return True

    # --- NATS -------------------------------------------------------------------------------------------

    def _connect_options(self) -> dict[str, Any]:
        servers = self.config.nats
        creds = {(s.user, s.password) for s in servers}
        options: dict[str, Any] = {}
        if len(creds) == 1:
            urls = [s.url for s in servers]
            user, password = creds.pop()
            if user:
                options.update(user=user, password=password)
        else:  # different credentials per server: nats-py reads them from each URL
            urls = [s.url_with_credentials() for s in servers]
        return dict(servers=urls, **options)

    async def _on_error(self, exc: Exception) -> None:
        text = str(exc) or type(exc).__name__
        now = time.monotonic()
        if text == self._last_error and now - self._last_error_at < 30:
            log.debug("NATS: %s", text)  # the same failure again while retrying: once every 30s is enough
            return
        self._last_error, self._last_error_at = text, now
        log.warning("NATS: %s (retrying)", text)

    async def _on_disconnected(self) -> None:
        if not self._stopping:
            log.warning("NATS: disconnected; reconnecting (messages are buffered meanwhile)")

    async def _on_reconnected(self) -> None:
        url = self.nc.connected_url if self.nc else None
        self._last_error = ""
        log.info("NATS: reconnected to %s; registering every healthy route now",
                 f"{url.hostname}:{url.port}" if url else "?")
        self._kick_all()
        self._start_greet()

    async def _on_router_start(self, msg: Any) -> None:
        if self._adopt_router_payload(msg.data, ROUTER_START):
            self._kick_all()

    async def _greet(self) -> None:
        try:
            reply = await self.nc.request(ROUTER_GREET, b"", timeout=self.greet_timeout)
        except NoRespondersError:
            log.info("no router listens on %s yet; using the configured intervals until a router.start",
                     ROUTER_GREET)
            return
        except TimeoutError:
            log.info("no router answered %s within %gs; using the configured intervals",
                     ROUTER_GREET, self.greet_timeout)
            return
        except Exception as exc:
            log.warning("%s failed: %s", ROUTER_GREET, exc)
            return
        if self._adopt_router_payload(reply.data, f"{ROUTER_GREET} answer"):
            for state in self.states:  # re-arm sleeping loops with the new interval (no extra registration)
                state.wake.set()

    def _start_greet(self) -> None:
        if self._greet_task is None or self._greet_task.done():
            self._greet_task = asyncio.get_running_loop().create_task(self._greet())

    async def _publish(self, subject: str, route: Route) -> bool:
        body = json.dumps(route.message(self.instance_id), separators=(",", ":")).encode()
        try:
            await self.nc.publish(subject, body)
        except Exception as exc:
            log.error("could not publish %s for %s: %s", subject, _describe(route), exc)
            return False
        return True

    # --- per-route loop -----------------------------------------------------------------------------------

    def _kick_all(self) -> None:
        for state in self.states:
            state.kick = True
            state.wake.set()

    async def _check(self, route: Route) -> CheckResult:
        if route.health_check is None:
            return CheckResult(True, "no health check")
        return await run_check(route.health_check)

    async def _tick(self, state: RouteState) -> None:
        route = state.route
        result = await self._check(route)
        if result.healthy:
            if await self._publish(REGISTER, route):
                state.registrations += 1
                if state.healthy is not True:
                    log.info("%s is healthy (%s): registering every %gs", _describe(route), result.detail,
                             self.effective_interval(route))
                else:
                    log.debug("registered %s", _describe(route))
                state.healthy = True
        elif state.healthy is not False:
            hc = route.health_check
            log.warning("%s is unhealthy (health check %r: %s): unregistering until it passes again",
                        _describe(route), hc.name if hc else "", result.detail)
            if await self._publish(UNREGISTER, route):
                state.healthy = False  # else: try the unregister again next interval
        else:
            log.debug("%s is still unhealthy: %s", _describe(route), result.detail)

    async def _route_loop(self, state: RouteState) -> None:
        while True:
            state.kick = False
            try:
                await self._tick(state)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("error while checking %s", _describe(state.route))
            last = time.monotonic()
            while not state.kick:
                remaining = last + self.effective_interval(state.route) - time.monotonic()
                if remaining <= 0:
                    break
                state.wake.clear()
                try:
                    async with asyncio.timeout(remaining):
                        await state.wake.wait()
                except TimeoutError:
                    pass

    # --- lifecycle ------------------------------------------------------------------------------------------

    async def start(self) -> None:
        options = self._connect_options()
        log.info("connecting to NATS %s", ", ".join(s.url for s in self.config.nats))
        self.nc = await nats.connect(
            name="portico-registrar", allow_reconnect=True, max_reconnect_attempts=-1, reconnect_time_wait=1,
            connect_timeout=2, error_cb=self._on_error, disconnected_cb=self._on_disconnected,
            reconnected_cb=self._on_reconnected, **options)
        url = self.nc.connected_url
        log.info("NATS: connected to %s; keeping %d route(s) registered", f"{url.hostname}:{url.port}",
                 len(self.states))
        await self.nc.subscribe(ROUTER_START, cb=self._on_router_start)
        await self.nc.flush()
        loop = asyncio.get_running_loop()
        for state in self.states:
            state.task = loop.create_task(self._route_loop(state), name=f"registrar:{state.route.name}")
        self._start_greet()

    async def stop(self) -> None:
        """Stop checking, unregister every route, flush and close the connection."""
        self._stopping = True
        tasks = [s.task for s in self.states if s.task] + ([self._greet_task] if self._greet_task else [])
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.nc is None:
            return
        if self.nc.is_connected or self.nc.is_reconnecting:
            count = 0
            for state in self.states:
                count += await self._publish(UNREGISTER, state.route)
            try:
                await self.nc.flush(timeout=2)
                log.info("unregistered %d route(s)", count)
            except Exception as exc:
                log.error("could not flush the unregister messages to NATS: %s", exc)
        try:
            await self.nc.close()
        except Exception as exc:
            log.debug("closing NATS: %s", exc)


async def run(config: RegistrarConfig, stop: asyncio.Event, *, greet_timeout: float = 2.0) -> None:
    """Run a Registrar until `stop` is set, then unregister everything."""
    registrar = Registrar(config, greet_timeout=greet_timeout)
    start = asyncio.ensure_future(registrar.start())
    stopped = asyncio.ensure_future(stop.wait())
    await asyncio.wait({start, stopped}, return_when=asyncio.FIRST_COMPLETED)
    if not start.done():  # asked to stop while still connecting: nothing was registered
        start.cancel()
        await asyncio.gather(start, return_exceptions=True)
        log.info("stopped before NATS was reachable; nothing to unregister")
        if registrar.nc is not None:
            await registrar.nc.close()
        return
    stopped.cancel()
    start.result()
    await stop.wait()
    await registrar.stop()
