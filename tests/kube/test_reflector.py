"""List-then-watch against the real API server: events, resume, relist on 410 Gone, bookmarks."""

from __future__ import annotations

import asyncio

import aetcd
import pytest
from polling import eventually

from portico.kube.controller import api_client
from portico.kube.reflector import Gone, Reflector


def _cm(name: str, value: str = "1") -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "default"},
            "data": {"v": value}}


async def test_list_then_watch_follows_adds_changes_and_deletes(kube_api):
    from kubernetes_asyncio import client

    kube_api.apply(_cm("before"))
    api = await api_client(str(kube_api.kubeconfig))
    changes = []
    reflector = Reflector("ConfigMap", client.CoreV1Api(api).list_config_map_for_all_namespaces,
                          lambda: changes.append(1), page_size=1)  # page_size=1: the list is paged
    task = asyncio.create_task(reflector.run())
    try:
        async with asyncio.timeout(20):
            await reflector.synced.wait()
        assert ("default", "before") in reflector.store
        await asyncio.to_thread(kube_api.apply, _cm("after"))
        await eventually(lambda: ("default", "after") in reflector.store, message="ADDED seen")
        await asyncio.to_thread(kube_api.apply, _cm("after", "2"))
        await eventually(lambda: reflector.store[("default", "after")]["data"]["v"] == "2", message="MODIFIED")
        await asyncio.to_thread(kube_api.delete, _cm("before"))
        await eventually(lambda: ("default", "before") not in reflector.store, message="DELETED seen")
        assert reflector.relists == 1
        # a watch from a version etcd has compacted away: 410 Gone, then a fresh list replacing the store
        old_version = reflector.resource_version
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await asyncio.to_thread(kube_api.apply, _cm("later"))
        await asyncio.to_thread(kube_api.apply, _cm("later", "2"))  # two writes: old_version+1 gets compacted
        latest = await asyncio.to_thread(kube_api.request, "GET", "/api/v1/namespaces/default/configmaps")
        async with aetcd.Client(kube_api.etcd.host, kube_api.etcd.port) as etcd:
            await etcd.compact(int(latest["metadata"]["resourceVersion"]))
        reflector.resource_version = old_version
        with pytest.raises(Gone):
            async with asyncio.timeout(20):
                await reflector._watch()
        reflector.resource_version, before = old_version, len(changes)
        task = asyncio.create_task(reflector.run())
        await eventually(lambda: reflector.relists == 2, message="listed again after 410 Gone")
        assert ("default", "later") in reflector.store and len(changes) > before
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await api.close()


def test_bookmarks_only_move_the_version_on():
    calls = []
    reflector = Reflector("X", None, lambda: calls.append(1))  # type: ignore[arg-type]
    reflector.store = {("ns", "a"): {"metadata": {"name": "a", "namespace": "ns"}}}
    reflector._apply({"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "42"}}})
    assert reflector.resource_version == "42" and calls == [] and len(reflector.store) == 1
    with pytest.raises(Gone):
        reflector._apply({"type": "ERROR", "object": {"code": 410, "reason": "Expired", "message": "too old"}})


async def test_a_big_object_arrives_through_the_watch(kube_api):
    """An object of 300 KiB (a Secret with a long chain, a big annotation) is one watch line: it arrives whole."""
    from kubernetes_asyncio import client

    api = await api_client(str(kube_api.kubeconfig))
    reflector = Reflector("ConfigMap", client.CoreV1Api(api).list_config_map_for_all_namespaces, lambda: None)
    task = asyncio.create_task(reflector.run())
    try:
        async with asyncio.timeout(20):
            await reflector.synced.wait()
        big = "x" * (300 * 1024)
        await asyncio.to_thread(kube_api.apply, _cm("big", big))
        await eventually(lambda: reflector.store.get(("default", "big"), {}).get("data", {}).get("v") == big,
                         timeout=20, message="the big object seen through the watch")
        assert reflector.relists == 1  # no failure, no relist on the way
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await api.close()
