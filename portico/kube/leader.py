"""Leader election with a coordination.k8s.io/v1 Lease, as client-go's leaderelection does.

The holder renews `spec.renewTime` every `retry_period`. Another replica takes the Lease over when it has seen
the same (holder, renewTime) record unchanged for a whole `lease_duration` by its own clock (so clocks need not
agree), writing with the record's resourceVersion: of two replicas racing, the API server lets one win (409
Conflict for the other). A holder that cannot renew within `renew_deadline` stops leading before anyone else
may start, so there is never a time with two publishers; a holder that stops cleanly gives the Lease up (empties
holderIdentity) so the next one starts at once.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable

from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

log = logging.getLogger("portico.kube")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class LeaderElector:
    def __init__(self, api: client.ApiClient, namespace: str, name: str, identity: str, *,
                 lease_duration: float = 15.0, renew_deadline: float = 10.0, retry_period: float = 2.0,
                 on_started: Callable[[], Awaitable[None]], on_stopped: Callable[[], None]) -> None:
        self.coordination = client.CoordinationV1Api(api)
        self.namespace, self.name, self.identity = namespace, name, identity
        self.lease_duration, self.renew_deadline, self.retry_period = lease_duration, renew_deadline, retry_period
        self.on_started, self.on_stopped = on_started, on_stopped
        self.is_leader = False
        self._observed: tuple[str, str] | None = None
        self._observed_at = 0.0
        self._last_renew = 0.0

    async def run(self) -> None:
        try:
            while True:
                try:
                    acquired = await self._try_acquire_or_renew()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning("leader election: %s", exc)
                    acquired = False
                    if self.is_leader and time.monotonic() - self._last_renew < self.renew_deadline:
                        acquired = True  # keep leading until the renew deadline passes
                if acquired and not self.is_leader:
                    self.is_leader = True
                    log.info("leader election: %s now leads (Lease %s/%s)", self.identity, self.namespace,
                             self.name)
                    await self.on_started()
                elif not acquired and self.is_leader:
                    self.is_leader = False
                    log.warning("leader election: %s lost the Lease %s/%s", self.identity, self.namespace,
                                self.name)
                    self.on_stopped()
                await asyncio.sleep(self.retry_period)
        finally:
            if self.is_leader:
                self.is_leader = False
                self.on_stopped()

    async def release(self) -> None:
        """Give the Lease up so another replica takes over without waiting out the lease duration."""
        try:
            lease = await self.coordination.read_namespaced_lease(self.name, self.namespace)
            if lease.spec and lease.spec.holder_identity == self.identity:
                lease.spec.holder_identity = ""
                lease.spec.lease_duration_seconds = 1
                await self.coordination.replace_namespaced_lease(self.name, self.namespace, lease)
                log.info("leader election: released the Lease %s/%s", self.namespace, self.name)
        except Exception as exc:
            log.warning("leader election: could not release the Lease: %s", exc)

    def _spec(self, acquire_time: dt.datetime | None, transitions: int) -> client.V1LeaseSpec:
        now = _now()
        return client.V1LeaseSpec(holder_identity=self.identity, lease_duration_seconds=int(self.lease_duration),
                                  acquire_time=acquire_time or now, renew_time=now,
                                  lease_transitions=transitions)

    async def _try_acquire_or_renew(self) -> bool:
        try:
            lease = await self.coordination.read_namespaced_lease(self.name, self.namespace)
        except ApiException as exc:
            if exc.status != 404:
                raise
            body = client.V1Lease(metadata=client.V1ObjectMeta(name=self.name, namespace=self.namespace),
                                  spec=self._spec(None, 0))
            try:
                await self.coordination.create_namespaced_lease(self.namespace, body)
            except ApiException as create_exc:
                if create_exc.status == 409:
                    return False  # another replica created it first
                raise
            self._last_renew = time.monotonic()
            return True
        spec = lease.spec or client.V1LeaseSpec()
        holder = spec.holder_identity or ""
        record = (holder, str(spec.renew_time))
        now = time.monotonic()
        if record != self._observed:
            self._observed, self._observed_at = record, now
        if holder and holder != self.identity:
            duration = spec.lease_duration_seconds or self.lease_duration
            if now - self._observed_at < duration:
                return False  # someone else holds it and renews it
        transitions = (spec.lease_transitions or 0) + (0 if holder == self.identity else 1)
        acquire = spec.acquire_time if holder == self.identity else None
        lease.spec = self._spec(acquire, transitions)
        try:
            await self.coordination.replace_namespaced_lease(self.name, self.namespace, lease)
        except ApiException as exc:
            if exc.status == 409:
                return False  # the record changed under us: someone else won this round
            raise
        self._last_renew = time.monotonic()
        return True
