"""Watch mode against a real etcd: debounce, etcd restart mid-watch, compaction, empty-prefix guard, status."""

from __future__ import annotations

import asyncio
import json
import urllib.request

import aetcd
import pytest
from confsync_helpers import write_confdir
from polling import eventually
from ports import stop_keeping_port

from portico.confsync.backends import EtcdBackend
from portico.confsync.render import Renderer
from portico.confsync.resources import load_resources
from portico.confsync.runner import Runner
from portico.confsync.status import serve_status
from portico.stack.processes import free_port
from portico.stack.servers import start_etcd


def _confdir(tmp_path, *, debounce=0.3, min_reload=0.0, allow_empty=False):
    dest = tmp_path / "out" / "pool.conf"
    reloads = tmp_path / "reloads.log"
    toml = (f'[template]\nsrc = "pool.tmpl"\ndest = "{dest}"\nprefix = "/svc"\nkeys = ["/pool"]\n'
            f'reload_cmd = "echo reload >> {reloads}"\ndebounce = {debounce}\n'
            f'min_reload_interval = {min_reload}\nallow_empty = {str(allow_empty).lower()}\n')
    tmpl = '{{range gets "/pool/*"}}{{base .Key}}={{.Value}}\n{{end}}'
    confdir = write_confdir(tmp_path / "confd", {"pool": toml}, {"pool.tmpl": tmpl})
    return confdir, dest, reloads


def _runner(confdir, nodes):
    resources = load_resources(confdir)
    backend = EtcdBackend(nodes, sorted({w for r in resources for w in r.watched}), probe_interval=0.5)
    return Runner(resources, backend, Renderer(confdir / "templates"))


def _read(path):
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""


@pytest.fixture
async def client(etcd_server):
    async with aetcd.Client(host="127.0.0.1", port=etcd_server.port, timeout=5) as c:
        yield c


async def test_hundred_quick_changes_make_one_reload(tmp_path, etcd_server, client):
    await client.put(b"/svc/pool/a", b"1")
    # a 1 s window (10 s at most): the burst stays one burst even when a loaded machine slows the puts down
    confdir, dest, reloads = _confdir(tmp_path, debounce=1.0)
    runner = _runner(confdir, [etcd_server.url])
    task = asyncio.ensure_future(runner.run_watch())
    try:
        await eventually(lambda: _read(reloads).count("reload") == 1, message="initial reload")
        for i in range(100):
            await client.put(f"/svc/pool/k{i:03d}".encode(), str(i).encode())
        await eventually(lambda: "k099=99" in _read(dest), timeout=20, message="burst rendered")
        await asyncio.sleep(2.0)   # anything still pending would reload by now
        assert _read(reloads).count("reload") == 2
        assert _read(dest).count("\n") == 101
        assert runner.status()["resources"]["pool"]["reloads"] == 2
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await runner.backend.close()


async def test_etcd_restart_mid_watch_resumes(tmp_path, etcd_server):
    confdir, dest, _ = _confdir(tmp_path, debounce=0.05)
    runner = _runner(confdir, [etcd_server.url])
    async with aetcd.Client(host="127.0.0.1", port=etcd_server.port, timeout=5) as c:
        await c.put(b"/svc/pool/a", b"1")
    task = asyncio.ensure_future(runner.run_watch())
    restarted = None
    try:
        await eventually(lambda: _read(dest) == "a=1\n", message="first render")
        revision = runner.backend.revision
        await asyncio.to_thread(stop_keeping_port, etcd_server)
        await eventually(lambda: not runner.backend.connected, message="outage noticed")
        assert "unreachable" in runner.status()["backend"]["error"]
        restarted = await asyncio.to_thread(start_etcd, etcd_server.port, None, tmp_path / "etcd")
        async with aetcd.Client(host="127.0.0.1", port=etcd_server.port, timeout=5) as c:
            await c.put(b"/svc/pool/b", b"2")
        await eventually(lambda: _read(dest) == "a=1\nb=2\n", timeout=15, message="render after restart")
        assert runner.backend.revision > revision
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await runner.backend.close()
        if restarted:
            restarted.stop()


async def test_compaction_while_behind_triggers_full_reread(tmp_path, etcd_server, client):
    await client.put(b"/svc/pool/a", b"1")
    backend = EtcdBackend([etcd_server.url], ["/svc/pool"], probe_interval=0.5)
    seen = []
    try:
        await backend.fetch()
        stale = backend.revision
        await client.put(b"/svc/pool/b", b"2")
        await client.delete(b"/svc/pool/a")
        put = await client.put(b"/svc/pool/c", b"3")
        await client.compact(put.header.revision)
        backend.revision = stale       # as if we had been disconnected since then
        task = asyncio.ensure_future(backend.watch(seen.append))
        try:
            await eventually(lambda: backend.snapshot() == {"/svc/pool/b": "2", "/svc/pool/c": "3"}, message="re-read")
            assert backend.revision >= put.header.revision
            assert seen and seen[0] is not None and "/svc/pool/a" in seen[0]
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    finally:
        await backend.close()


async def test_cancel_as_the_full_read_lands_still_stops_the_watch(etcd_server, client):
    """A cancel that arrives in the same loop turn as the re-read's answer must end the watch: Python 3.11's
    asyncio.wait_for returned the answer instead and the watch ran on (CI hung on this once)."""
    await client.put(b"/svc/pool/a", b"1")
    backend = EtcdBackend([etcd_server.url], ["/svc/pool"], probe_interval=0.5)
    try:
        for round_ in range(5):
            await client.put(b"/svc/pool/a", str(round_).encode())
            backend.revision = None        # the watch starts with a full read
            before = backend.snapshot()
            task = asyncio.ensure_future(backend.watch(lambda changed: None))
            async with asyncio.timeout(10):
                while backend.snapshot() == before:    # every loop turn: cancel the moment the read lands
                    await asyncio.sleep(0)
            task.cancel()
            async with asyncio.timeout(5):
                await asyncio.gather(task, return_exceptions=True)
            assert task.cancelled(), f"round {round_}: the watch swallowed its cancellation"
    finally:
        await backend.close()


async def test_empty_prefix_is_refused_and_reported_on_status_port(tmp_path, etcd_server, client):
    await client.put(b"/svc/pool/a", b"1")
    confdir, dest, reloads = _confdir(tmp_path, debounce=0.05)
    runner = _runner(confdir, [etcd_server.url])
    port = free_port()
    server = await serve_status(runner.status, port)
    task = asyncio.ensure_future(runner.run_watch())

    def fetch():
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=2) as resp:
                return resp.status, json.load(resp)
        except urllib.error.HTTPError as err:
            return err.code, json.load(err)
    try:
        await eventually(lambda: _read(dest) == "a=1\n" and runner.workers[0].status.ok, message="first render")
        code, body = await asyncio.to_thread(fetch)
        assert code == 200 and body["resources"]["pool"]["ok"] and body["resources"]["pool"]["last_render"]
        await client.delete_prefix(b"/svc/pool")
        await eventually(lambda: not runner.workers[0].status.ok, message="refusal")
        assert _read(dest) == "a=1\n"
        assert _read(reloads).count("reload") == 1
        code, body = await asyncio.to_thread(fetch)
        assert code == 503 and "allow_empty" in body["resources"]["pool"]["last_error"]
        await client.put(b"/svc/pool/z", b"9")
        await eventually(lambda: _read(dest) == "z=9\n" and runner.workers[0].status.ok, message="recovery")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        server.close()
        await runner.backend.close()


async def test_allow_empty_renders_empty(tmp_path, etcd_server, client):
    await client.put(b"/svc/pool/a", b"1")
    confdir, dest, _ = _confdir(tmp_path, debounce=0.05, allow_empty=True)
    runner = _runner(confdir, [etcd_server.url])
    task = asyncio.ensure_future(runner.run_watch())
    try:
        await eventually(lambda: _read(dest) == "a=1\n", message="first render")
        await client.delete(b"/svc/pool/a")
        await eventually(lambda: dest.exists() and _read(dest) == "", message="empty render")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await runner.backend.close()


async def test_failover_to_second_node(tmp_path, etcd_server, client):
    await client.put(b"/svc/pool/a", b"1")
    confdir, dest, _ = _confdir(tmp_path)
    runner = _runner(confdir, [f"http://127.0.0.1:{free_port()}", etcd_server.url])
    try:
        assert await runner.run_once()
        assert _read(dest) == "a=1\n"
    finally:
        await runner.backend.close()
