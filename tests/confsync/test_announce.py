"""RouterAnnouncer against a real etcd: lease-bound key, survives an etcd restart, removed on stop."""

from __future__ import annotations

import asyncio
import json
import time

import aetcd
from polling import poll_until
from ports import stop_keeping_port

from portico.announce import RouterAnnouncer
from portico.config.settings import EtcdAnnounceSettings
from portico.stack.servers import start_etcd


async def _get(port: int, key: str):
    async with aetcd.Client(host="127.0.0.1", port=port, timeout=3) as c:
        return await c.get(key.encode())


async def test_announce_keepalive_restart_and_stop(tmp_path, etcd_server):
    settings = EtcdAnnounceSettings(endpoints=(etcd_server.url,), prefix="/portico", lease_ttl=2)
    ann = RouterAnnouncer(settings, "r1", "127.0.0.1:8081", 8082)
    restarted = None
    try:
        await ann.start()
        got = await _get(etcd_server.port, "/portico/routers/r1")
        assert json.loads(got.value) == {"address": "127.0.0.1:8081", "health_port": 8082, "id": "r1"}
        assert got.lease != 0
        await asyncio.sleep(3.0)     # longer than the TTL: the keepalive must hold the key
        assert await _get(etcd_server.port, "/portico/routers/r1") is not None

        await asyncio.to_thread(stop_keeping_port, etcd_server)
        await asyncio.sleep(2.5)     # the lease runs out while etcd is down
        restarted = await asyncio.to_thread(start_etcd, etcd_server.port, None, tmp_path / "etcd")
        # the lease expired during the outage: the announcer must grant a new one and write the key again
        await poll_until(lambda: _get(etcd_server.port, "/portico/routers/r1"),
                         lambda kv: kv is not None and kv.lease != got.lease)
        await asyncio.sleep(2.5)
        assert await _get(etcd_server.port, "/portico/routers/r1") is not None

        await ann.stop()
        assert await _get(etcd_server.port, "/portico/routers/r1") is None
    finally:
        await ann.stop(timeout=1.0)
        if restarted:
            restarted.stop()


async def test_stop_is_bounded_when_etcd_is_gone(etcd_server):
    settings = EtcdAnnounceSettings(endpoints=(etcd_server.url,), prefix="/p", lease_ttl=5)
    ann = RouterAnnouncer(settings, "r2", "127.0.0.1:1", 2)
    await ann.start()
    await asyncio.to_thread(etcd_server.stop)
    started = time.monotonic()
    await ann.stop(timeout=1.0)
    assert time.monotonic() - started < 3.0
