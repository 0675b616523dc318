"""A router announces itself in etcd under a lease, so HAProxy (via confsync) fronts exactly the live routers.

The key `<prefix>/routers/<id>` holds {"address", "health_port", "id"} and is bound to a lease kept alive in
the background. A router that dies stops refreshing and its key expires; one that drains deletes it at once.
etcd outages are survived: when etcd answers again, the lease is granted anew and the key written again.
"""

from __future__ import annotations

import asyncio
import json
import logging

import aetcd

from portico.config.settings import EtcdAnnounceSettings
from portico.confsync.backends import parse_node
from portico.etcd_client import EtcdTls, etcd_client

log = logging.getLogger("portico.announce")


class RouterAnnouncer:
    """Keeps `<prefix>/routers/<router_id>` alive in etcd while the router serves."""

    def __init__(self, settings: EtcdAnnounceSettings, router_id: str, address: str, health_port: int):
        self.settings = settings
        self.router_id = router_id
        self.key = f"{settings.prefix.rstrip('/')}/routers/{router_id}"
        self.value = json.dumps({"address": address, "health_port": health_port, "id": router_id})
        self.ttl = max(2, round(settings.lease_ttl))
        self.endpoints = [parse_node(e) for e in settings.endpoints]
        # TLS when CAs or a client certificate are configured, or an endpoint says https://
        self.tls = (EtcdTls(settings.ca_certs.encode(), settings.cert_chain.encode(), settings.private_key.encode())
                    if settings.ca_certs or settings.cert_chain
                    or any(e.startswith("https://") for e in settings.endpoints) else None)
        self.registered = asyncio.Event()     # set while the key is known to be in etcd
        self._index = 0
        self._client: aetcd.Client | None = None
        self._lease_id: int | None = None
        self._task: asyncio.Task | None = None

    async def start(self, first_timeout: float = 3.0) -> None:
        """Begin announcing; waits briefly for the first registration but never fails the router."""
        if not self.endpoints or self._task is not None:
            return
        self._task = asyncio.create_task(self._run(), name=f"announce {self.router_id}")
        try:
            async with asyncio.timeout(first_timeout):
                await asyncio.shield(self.registered.wait())
        except TimeoutError:
            log.warning("announce: %s not yet registered in etcd; will keep trying", self.key)

    async def _connect(self) -> aetcd.Client:
        if self._client is None:
            host, port = self.endpoints[self._index]
            settings = self.settings
            self._client = etcd_client(host, port, timeout=max(1.0, min(5.0, self.ttl / 2)),
                                       username=settings.username, password=settings.password, tls=self.tls)
            await self._client.connect()
        return self._client

    async def _drop_client(self) -> None:
        client, self._client = self._client, None
        self._index = (self._index + 1) % len(self.endpoints)
        if client is not None:
            try:
                async with asyncio.timeout(2.0):
                    await client.close()
            except Exception:
                pass

    async def _run(self) -> None:
        backoff, failing = 0.2, False
        while True:
            try:
                client = await self._connect()
                lease = await client.lease(self.ttl)
                self._lease_id = lease.id
                await client.put(self.key.encode(), self.value.encode(), lease=lease.id)
                self.registered.set()
                log.info("announce: %s registered in etcd (lease %x, ttl %ds)%s", self.key, lease.id, self.ttl,
                         " after an outage" if failing else "")
                backoff, failing = 0.2, False
                while True:
                    await asyncio.sleep(self.ttl / 3)
                    reply = await client.refresh_lease(lease.id)
                    if reply is None or reply.TTL <= 0:
                        log.warning("announce: lease of %s expired; registering again", self.key)
                        break
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # never let the keepalive task die
                self.registered.clear()
                if not failing:
                    log.warning("announce: etcd unreachable (%s); %s will be re-registered when it is back",
                                str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__,
                                self.key)
                failing = True
                await self._drop_client()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, max(1.0, self.ttl / 3))

    async def stop(self, timeout: float = 3.0) -> None:
        """Delete the key and revoke the lease (best effort, bounded by `timeout`)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        self.registered.clear()
        if not self.endpoints:
            return

        async def cleanup() -> None:
            client = await self._connect()
            await client.delete(self.key.encode())
            if self._lease_id is not None:
                await client.revoke_lease(self._lease_id)

        try:
            async with asyncio.timeout(timeout):
                await cleanup()
            log.info("announce: %s removed from etcd", self.key)
        except Exception as exc:
            log.warning("announce: could not remove %s (%s); its lease will expire in %ds", self.key, exc, self.ttl)
        finally:
            client, self._client = self._client, None
            if client is not None:
                try:
                    async with asyncio.timeout(1.0):
                        await client.close()
                except Exception:
                    pass
