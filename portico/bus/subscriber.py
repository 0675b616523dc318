"""The router's side of the NATS bus: apply router.register / router.unregister to the route table, answer
router.greet, and announce the router with router.start (on connect, after every reconnect, and every
publish_start_message_interval when set).

router.register / router.unregister arrive on the fast lane (portico.bus.fastlane: its own lean connection,
parsed and applied straight from the socket reads, see why there); nats-py carries the low-volume rest
(router.start, router.greet). With `nats.tls_enabled` both connections use TLS (CAs from `nats.ca_certs`, a
client certificate from `nats.cert_chain`/`nats.private_key`); `nats.user`/`pass` or `nats.token`
authenticate both. With `fastlane=False` the route subjects go through nats-py, applied right in its
subscription callback. Either way a message is a msgspec decode and a few table calls, no queue in
between, and a message that does not decode is logged on one line, counted and dropped.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
import time
from collections.abc import Awaitable, Callable

import nats
from nats.aio.client import Client
from nats.errors import SlowConsumerError

from portico.bus.applier import PayloadApplier, RateLimitedLog
from portico.bus.backoff import FIRST_WAIT, MAX_WAIT, reconnect_delay
from portico.bus.fastlane import FastLane
from portico.bus.messages import (
    GREET,
    REGISTER,
    START,
    UNREGISTER,
    start_message,
)
from portico.config.settings import RouterConfig
from portico.routes.table import RouteTable
from portico.state import RouterState
from portico.tls_client import client_context

log = logging.getLogger("portico.bus")

SUBJECTS = "router.*"
_CREDENTIALS = re.compile(r"//[^@/]*@")


def redact(url: str) -> str:
    """A NATS URL fit for logs: `nats://user:pass@host:4222` -> `nats://***@host:4222`."""
    return _CREDENTIALS.sub("//***@", url)


ReconnectHook = Callable[[], "Awaitable[None] | None"]


class RouteBus:
    """Keeps a RouteTable in step with the NATS control plane.

    `await start()` returns once connected and subscribed (it keeps retrying while NATS is unreachable,
    logging each failure); after that nats-py reconnects forever by itself. `on_reconnect` (a plain or async
    callable, e.g. `Pruner.on_nats_reconnected`) runs after every reconnect, before router.start goes out.

    With the fast lane (the default unless NATS uses TLS), router.start after a reconnect goes out only once
    the route feed is subscribed again (so the re-registrations it prompts are seen), and once more when the
    feed alone lost its connection and got it back.
    """

    def __init__(self, config: RouterConfig, table: RouteTable, state: RouterState,
                 clock: Callable[[], float] = time.monotonic, *, reconnect_wait: float = FIRST_WAIT,
                 max_reconnect_wait: float = MAX_WAIT, connect_timeout: float = 2.0,
                 on_reconnect: ReconnectHook | None = None, fastlane: bool | None = None) -> None:
        self.config = config
        self.table = table
        self.applier = PayloadApplier(table, state.metrics, clock)
        self.state = state
        self.clock = clock
        self.reconnect_wait = reconnect_wait            # the first wait after a loss (see portico.bus.backoff)
        self.max_reconnect_wait = max(max_reconnect_wait, reconnect_wait)
        self._next_server_index = 0
        self._connect_failure_log = RateLimitedLog(burst=3, window=30.0)  # retries run ~4 a second
        self.connect_timeout = connect_timeout
        self.on_reconnect = on_reconnect
        self.urls = config.nats.urls()
        self.nc: Client | None = None
        self._subs: list = []
        self._start_task: asyncio.Task | None = None
        self._connected_once = False
        self._stopping = False
        self._announce_pending = False   # nats-py lost its connection: its reconnect sends router.start
        self.slow_consumer_drops = 0
        self._slow_logged_at = -1e9
        self.use_fastlane = True if fastlane is None else fastlane
        nats_cfg = config.nats
        self.tls_context = (client_context(nats_cfg.ca_certs, nats_cfg.cert_chain, nats_cfg.private_key)
                            if nats_cfg.tls_enabled else None)
        self.token = nats_cfg.token
        self.lane: FastLane | None = None
        self._tasks: set[asyncio.Task] = set()

    # ---- lifecycle ---------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect (retrying until NATS answers), subscribe, publish router.start."""
        self._stopping = False
        where = ", ".join(redact(u) for u in self.urls)
        log.info("connecting to NATS at %s", where)
        # max_reconnect_attempts=-1 makes nats-py retry the first connect forever too; each failure goes
        # through _on_error, which logs it. nats-py's own reconnect wait is fixed; the handler gives it the
        # same short, capped, jittered backoff as the fast lane.
        self.nc = await nats.connect(
            self.urls,
            name=f"portico-router-{self.state.id}",
            allow_reconnect=True,
            max_reconnect_attempts=-1,
            reconnect_time_wait=self.max_reconnect_wait,
            **_reconnect_handler_option(self._next_server),
            **self._security_options(),
            connect_timeout=self.connect_timeout,
            ping_interval=20,
            max_outstanding_pings=3,
            error_cb=self._on_error,
            disconnected_cb=self._on_disconnected,
            reconnected_cb=self._on_reconnected,
            closed_cb=self._on_closed,
            pending_size=8 * 1024 * 1024,
        )
        self._connected_once = True
        url = self.nc.connected_url
        log.info("connected to NATS at %s", redact(url.geturl()) if url is not None else where)
        nc = self.nc
        # One subscription for all router.* subjects: nats-py runs one task per subscription, so separate
        # ones could apply an app's unregister before its earlier register. Generous pending limits: a
        # platform re-registering every route at once must not make the router a slow consumer.
        if self.use_fastlane:
            self._subs = [await nc.subscribe(GREET, cb=self._on_message)]
            self.lane = FastLane(self.urls, self.table, self.state, self.clock,
                                 name=f"portico-router-{self.state.id}-routes", reconnect_wait=self.reconnect_wait,
                                 max_reconnect_wait=self.max_reconnect_wait, connect_timeout=self.connect_timeout,
                                 on_connected=self._lane_connected, on_disconnected=self._lane_disconnected,
                                 tls_context=self.tls_context, token=self.token)
            await self.lane.start()
        else:
            self._subs = [await nc.subscribe(SUBJECTS, cb=self._on_message, pending_msgs_limit=4 * 1024 * 1024,
                                             pending_bytes_limit=1024 * 1024 * 1024)]
        self.state.nats_connected = True
        await self.publish_start()
        await nc.flush(timeout=self.connect_timeout)  # type: ignore[arg-type]  # annotated int, takes seconds
        interval = self.config.publish_start_message_interval
        if interval > 0:
            self._start_task = asyncio.get_running_loop().create_task(self._publish_start_every(interval))

    async def stop(self) -> None:
        """Stop the periodic router.start, drain the subscriptions and close the connection."""
        self._stopping = True
        if self._start_task is not None:
            self._start_task.cancel()
            try:
                await self._start_task
            except asyncio.CancelledError:
                pass
            self._start_task = None
        lane, self.lane = self.lane, None
        if lane is not None:
            await lane.stop()
        for task in list(self._tasks):
            task.cancel()
        nc, self.nc = self.nc, None
        if nc is not None and not nc.is_closed:
            try:
                if nc.is_connected:
                    async with asyncio.timeout(5.0):
                        await nc.drain()
            except Exception as err:  # draining is best effort; close below regardless
                log.debug("NATS drain failed: %s", err)
            if not nc.is_closed:
                await nc.close()
        self.state.nats_connected = False

    @property
    def connected(self) -> bool:
        return (self.nc is not None and self.nc.is_connected
                and (not self.use_fastlane or (self.lane is not None and self.lane.connected)))

    def _security_options(self) -> dict:
        """nats-py's TLS context and token, when configured (user and password travel in the URLs)."""
        options: dict = {}
        if self.tls_context is not None:
            options["tls"] = self.tls_context
        if self.token:
            options["token"] = self.token
        return options

    def _next_server(self, servers: list, _info: dict) -> tuple:
        """nats-py's reconnect handler: the next server in turn, after the backoff for its failure count."""
        server = servers[self._next_server_index % len(servers)]
        self._next_server_index += 1
        attempt = getattr(server, "reconnects", 0)
        return server, reconnect_delay(attempt, self.reconnect_wait, self.max_reconnect_wait)

    # ---- router.start ----------------------------------------------------------------------------------

    def start_payload(self) -> bytes:
        return start_message(self.state, self.config)

    async def publish_start(self) -> None:
        if self.nc is None or not self.nc.is_connected:
            return
        await self.nc.publish(START, self.start_payload())

    async def _publish_start_every(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.publish_start()
            except Exception as err:  # a publish during a reconnect can fail; the next tick tries again
                log.debug("router.start publish failed: %s", err)

    # ---- messages ----------------------------------------------------------------------------------------

    async def _on_message(self, msg) -> None:
        subject = msg.subject
        if subject == REGISTER:
            self.applier.register(msg.data)
        elif subject == UNREGISTER:
            self.applier.unregister(msg.data)
        elif subject == GREET and msg.reply and self.nc is not None:
            await self.nc.publish(msg.reply, self.start_payload())
        # router.start from other routers (and our own), router.* extensions: nothing to do

    # ---- connection callbacks ------------------------------------------------------------------------------

    async def _on_error(self, err: Exception) -> None:
        if not self._connected_once:
            where = ", ".join(redact(u) for u in self.urls)
            if self._connect_failure_log.allow():
                log.warning("cannot connect to NATS at %s: %s; retrying every %ss", where, _describe(err),
                            self.max_reconnect_wait)
            else:
                log.debug("cannot connect to NATS at %s: %s", where, _describe(err))
        elif isinstance(err, SlowConsumerError):
            self.slow_consumer_drops += 1
            now = time.monotonic()
            if now - self._slow_logged_at >= 5.0:
                self._slow_logged_at = now
                log.warning("NATS slow consumer: router.* messages dropped (%d so far)", self.slow_consumer_drops)
        elif self.state.nats_connected:
            log.warning("NATS error: %s", _describe(err))
        else:
            log.debug("NATS reconnect attempt failed: %s", _describe(err))

    async def _on_disconnected(self) -> None:
        if self._stopping:
            return
        self._announce_pending = True
        if not self.state.nats_connected:
            return
        self.state.nats_connected = False
        log.warning("disconnected from NATS; reconnecting")

    async def _on_reconnected(self) -> None:
        self.state.nats_connected = True
        self.state.metrics.nats_reconnects += 1
        url = self.nc.connected_url.geturl() if self.nc is not None and self.nc.connected_url else "?"
        log.info("reconnected to NATS at %s", redact(url))
        hook = self.on_reconnect
        if hook is not None:
            try:
                result = hook()
                if asyncio.iscoroutine(result):
                    await result
            except Exception:
                log.exception("on_reconnect hook failed")
        try:
            if self.use_fastlane:
                await self._wait_for_lane()
            await self.publish_start()
        except Exception as err:
            log.warning("router.start publish after reconnect failed: %s", err)
        finally:
            self._announce_pending = False

    async def _on_closed(self) -> None:
        self.state.nats_connected = False
        if not self._stopping:
            log.error("NATS connection closed")

    # ---- the fast lane's connection state ------------------------------------------------------------------

    def _lane_connected(self, first: bool) -> None:
        if first:  # start() announces the router itself
            return
        log.info("NATS route feed reconnected to %s", self.lane.connected_server if self.lane else "?")
        if self.nc is None or not self.nc.is_connected or self._stopping or self._announce_pending:
            # nats-py's own reconnect announces the router once the feed is back (nats-py reports itself
            # connected before its reconnect callback has run, hence the flag: one router.start, not two)
            return
        # the feed alone dropped (nats-py stayed up): registrations may have been missed, ask for them again
        task = asyncio.get_running_loop().create_task(self._publish_start_quietly())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _lane_disconnected(self) -> None:
        log.debug("NATS route feed disconnected; it reconnects by itself")

    async def _wait_for_lane(self, timeout: float = 5.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while (self.lane is not None and not self.lane.connected and not self._stopping
               and asyncio.get_running_loop().time() < deadline):
            await asyncio.sleep(0.01)

    async def _publish_start_quietly(self) -> None:
        try:
            await self.publish_start()
        except Exception as err:
            log.warning("router.start publish after the route feed reconnected failed: %s", err)


def _reconnect_handler_option(handler) -> dict:
    """`reconnect_to_server_handler=handler` when this nats-py has it (2.11+), else nothing: the fixed
    reconnect_time_wait (the cap) applies."""
    if "reconnect_to_server_handler" in inspect.signature(Client.connect).parameters:
        return {"reconnect_to_server_handler": handler}
    return {}


def _describe(err: Exception) -> str:
    text = str(err) or err.__class__.__name__
    return text.replace("\n", " ")


__all__ = ["RouteBus", "redact"]
