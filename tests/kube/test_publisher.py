"""The publisher against a real nats-server: what is registered and unregistered, by whom, and when."""

from __future__ import annotations

import asyncio
import json

import nats
from polling import eventually

from portico.kube.desired import Registration
from portico.kube.publisher import Publisher
from portico.stack.processes import free_port
from portico.stack.servers import start_nats


async def _collect(url: str):
    seen: list[tuple[str, str, int]] = []
    nc = await nats.connect(url)

    async def on(msg):
        body = json.loads(msg.data)
        seen.append((msg.subject, body["uris"][0], body["port"]))

    await nc.subscribe("router.register", cb=on)
    await nc.subscribe("router.unregister", cb=on)
    await nc.flush()
    return nc, seen


A = Registration("a.example.com", "10.1.0.1", 8080, "pod-a", "app")
B = Registration("b.example.com", "10.1.0.2", 8080, "pod-b", "app")
C = Registration("c.example.com", "10.1.0.3", 8080, "pod-c", "app")


async def test_changes_are_published_once_and_a_new_leader_unregisters_what_went_away(tmp_path):
    port = free_port()
    publisher = Publisher([f"nats://127.0.0.1:{port}"], interval=3600)
    starting = asyncio.create_task(publisher.start(retry_delay=0.1))  # NATS is not up yet: it waits
    await asyncio.sleep(0.3)
    assert not starting.done()
    server = start_nats(port=port, workdir=tmp_path / "nats")
    try:
        async with asyncio.timeout(10):
            await starting
        nc, seen = await _collect(server.url)
        await publisher.update({A, B})          # not leading: nothing goes out
        await publisher.update({A, C})          # B went away while following
        await asyncio.sleep(0.2)
        assert seen == []
        await publisher.activate()              # leading now: B unregistered once, A and C registered
        await eventually(lambda: len(seen) == 3, message="three messages")
        assert sorted(seen) == [("router.register", "a.example.com", 8080), ("router.register", "c.example.com", 8080),
                                ("router.unregister", "b.example.com", 8080)]
        seen.clear()
        await publisher.update({C})             # A removed: one unregister, nothing else
        await eventually(lambda: seen == [("router.unregister", "a.example.com", 8080)], message="A unregistered")
        publisher.deactivate()                  # lost the Lease: nothing is unregistered
        await publisher.update(set())
        await asyncio.sleep(0.2)
        assert seen == [("router.unregister", "a.example.com", 8080)]
        await nc.close()
    finally:
        await publisher.stop()
        server.stop()
