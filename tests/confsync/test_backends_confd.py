"""confsync's redis, zookeeper, file and env backends against real servers/files, keyed the way confd keys them.

redis: a real redis-server (Debian's package); zookeeper: a real standalone ZooKeeper (Debian's package, Java);
each read, each `portico confsync -backend X ... -onetime` and each watch goes over real sockets.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest
import redis
from confsync_helpers import run_confsync, write_confdir
from kv_servers import redis_available, start_redis, start_zookeeper, zookeeper_available
from polling import wait_for

from portico.confsync.backends import FileBackend, make_backend
from portico.confsync.redis_backend import RedisBackend
from portico.confsync.resources import ConfsyncConfig
from portico.confsync.service import EXIT_CONFIG, serve

needs_redis = pytest.mark.skipif(not redis_available(), reason="redis-server not installed (scripts/test installs it)")
needs_zk = pytest.mark.skipif(not zookeeper_available(), reason="zookeeper not installed (scripts/test installs it)")

TEMPLATE = ('[app]\nname = {{getv "/app/name"}}\n{{range gets "/app/db/*"}}{{base .Key}} = {{.Value}}\n{{end}}'
            'missing = {{getv "/app/nope" "default"}}\n')
EXPECTED = "[app]\nname = shop\nurl = db.example.com\nuser = rob\nmissing = default\n"


def _confdir(tmp_path, keys='["/app"]'):
    dest = tmp_path / "out" / "app.conf"
    confdir = write_confdir(tmp_path / "confd",
                            {"app": f'[template]\nsrc = "app.conf.tmpl"\ndest = "{dest}"\nkeys = {keys}\n'},
                            {"app.conf.tmpl": TEMPLATE})
    return confdir, dest


@pytest.fixture
def redis_server(tmp_path):
    server = start_redis(tmp_path / "redis")
    yield server
    server.stop()


@pytest.fixture
def zk_server(tmp_path):
    server = start_zookeeper(tmp_path / "zk")
    yield server
    server.stop()


@needs_redis
def test_redis_reads_strings_hashes_and_prefixes_like_confd(redis_server):
    r = redis.Redis(host="127.0.0.1", port=redis_server.port, decode_responses=True)
    r.set("/app/name", "shop")
    r.set("/app/db/url", "db.example.com")
    r.set("/app/db/user", "rob")
    r.hset("/app/cfg", mapping={"port": "80", "mode": "http"})
    r.rpush("/app/list", "x")                      # not a string: skipped, as confd skips it
    r.set("/other/x", "no")

    def read(prefixes, **kw):
        backend = RedisBackend([redis_server.url], prefixes, **kw)
        try:
            return asyncio.run(backend.fetch())
        finally:
            asyncio.run(backend.close())

    # a key that is no string/hash is a prefix: SCAN "<key>/*" and GET each string
    assert read(["/app"]) == {"/app/name": "shop", "/app/db/url": "db.example.com", "/app/db/user": "rob"}
    # a hash: one key per field
    assert read(["/app/cfg"]) == {"/app/cfg/port": "80", "/app/cfg/mode": "http"}
    # a string: itself; "/*" is dropped from keys as confd does
    assert read(["/app/name", "/app/db/*"]) == {"/app/name": "shop", "/app/db/url": "db.example.com",
                                                 "/app/db/user": "rob"}
    # -separator ":" maps /app/db/url to app:db:url and back
    r.set("app:db:url", "sep.example.com")
    assert read(["/app/db"], separator=":") == {"/app/db/url": "sep.example.com"}
    # node with a database number
    r2 = redis.Redis(host="127.0.0.1", port=redis_server.port, db=3, decode_responses=True)
    r2.set("/app/name", "in-db-3")
    assert read(["/app/name"]) == {"/app/name": "shop"}
    backend = RedisBackend([f"{redis_server.url}/3"], ["/app/name"])
    assert asyncio.run(backend.fetch()) == {"/app/name": "in-db-3"}


@needs_redis
def test_redis_cli_onetime_with_confd_flags_then_watch(tmp_path, redis_server):
    r = redis.Redis(host="127.0.0.1", port=redis_server.port, decode_responses=True)
    r.set("/app/name", "shop")
    r.set("/app/db/url", "db.example.com")
    r.set("/app/db/user", "rob")
    confdir, dest = _confdir(tmp_path)
    proc = run_confsync("-backend", "redis", "-node", redis_server.url, "-confdir", str(confdir), "-onetime")
    assert proc.returncode == 0, proc.stderr
    assert dest.read_text() == EXPECTED
    watcher = subprocess.Popen([sys.executable, "-m", "portico", "confsync", "-backend", "redis", "-node",
                                redis_server.url, "-confdir", str(confdir), "-watch", "-log-level", "debug"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        r.set("/app/db/user", "alice")
        wait_for(lambda: "user = alice" in dest.read_text(), timeout=30, message="redis change rendered")
        r.delete("/app/db/url")
        wait_for(lambda: "url =" not in dest.read_text(), timeout=30, message="redis delete rendered")
    finally:
        watcher.terminate()
        watcher.communicate(timeout=15)


@needs_zk
def test_zookeeper_leaves_are_keys_and_cli_renders_and_watches(tmp_path, zk_server):
    from kazoo.client import KazooClient

    zk = KazooClient(hosts=zk_server.url)
    zk.start(timeout=30)
    try:
        zk.create("/app/name", b"shop", makepath=True)
        zk.create("/app/db/url", b"db.example.com", makepath=True)
        zk.create("/app/db/user", b"rob", makepath=True)
        zk.set("/app/db", b"folder data is ignored")
        backend = make_backend("zookeeper", nodes=[zk_server.url], prefixes=["/app", "/absent"], files=[])
        try:
            assert asyncio.run(backend.fetch()) == {"/app/name": "shop", "/app/db/url": "db.example.com",
                                                    "/app/db/user": "rob"}
        finally:
            asyncio.run(backend.close())
        confdir, dest = _confdir(tmp_path)
        proc = run_confsync("-backend", "zookeeper", "-node", zk_server.url, "-confdir", str(confdir),
                            "-onetime", timeout=60)
        assert proc.returncode == 0, proc.stderr
        assert dest.read_text() == EXPECTED
        watcher = subprocess.Popen([sys.executable, "-m", "portico", "confsync", "-backend", "zookeeper", "-node",
                                    zk_server.url, "-confdir", str(confdir), "-watch"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        try:
            zk.set("/app/db/user", b"alice")
            wait_for(lambda: "user = alice" in dest.read_text(), timeout=30, message="zk data change rendered")
            zk.create("/app/db/port", b"5432")
            wait_for(lambda: "port = 5432" in dest.read_text(), timeout=30, message="zk new child rendered")
        finally:
            watcher.terminate()
            watcher.communicate(timeout=15)
    finally:
        zk.stop()
        zk.close()


def test_file_backend_reads_yaml_with_confd_rules(tmp_path):
    folder = tmp_path / "data"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.yaml").write_text(
        "app:\n"
        "  name: shop\n"
        "  enabled: yes\n"            # yaml.v2: bool -> "true"
        "  short: n\n"                # yaml.v2: bool -> "false" (PyYAML would keep "n")
        "  ratio: 1e3\n"              # yaml.v2: float 1000 (PyYAML: the string "1e3")
        "  half: 0.50\n"              # float -> shortest digits
        "  big: 1.0e+20\n"            # no exponent in FormatFloat(f, 'f', -1, 64)
        "  mode: 0755\n"              # int with a leading 0: octal, 493
        "  hex: 0x1F\n"
        "  clock: 12:30\n"            # not sexagesimal in yaml.v2: stays text
        "  day: 2024-01-02\n"         # timestamps stay text
        "  none: null\n"              # null: no key at all
        "  ports: [80, 443]\n"
        "  nested: {deep: {x: 1}}\n")
    (folder / "sub" / "b.yaml").write_text("app:\n  name: overridden\n")
    (folder / "sub" / "ignored.txt").write_text("app:\n  name: not-yaml-filtered\n")
    backend = FileBackend([str(folder)], ["/app"], pattern="*.yaml")
    got = asyncio.run(backend.fetch())
    assert got == {
        "/app/name": "overridden", "/app/enabled": "true", "/app/short": "false", "/app/ratio": "1000",
        "/app/half": "0.5", "/app/big": "100000000000000000000", "/app/mode": "493", "/app/hex": "31",
        "/app/clock": "12:30", "/app/day": "2024-01-02", "/app/ports/0": "80", "/app/ports/1": "443",
        "/app/nested/deep/x": "1"}


def test_file_and_env_backends_through_cli(tmp_path):
    yml = tmp_path / "values.yaml"
    yml.write_text("app:\n  name: shop\n  db:\n    url: db.example.com\n    user: rob\n")
    confdir, dest = _confdir(tmp_path)
    proc = run_confsync("-backend", "file", "-file", str(yml), "-confdir", str(confdir), "-onetime")
    assert proc.returncode == 0, proc.stderr
    assert dest.read_text() == EXPECTED
    dest.unlink()
    env = {**os.environ, "APP_NAME": "shop", "APP_DB_URL": "db.example.com", "APP_DB_USER": "rob"}
    proc = subprocess.run([sys.executable, "-m", "portico", "confsync", "-backend", "env", "-confdir",
                           str(confdir), "-onetime"], env=env, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert dest.read_text() == EXPECTED


def test_unsupported_backends_fail_at_start_with_what_to_use(tmp_path, caplog):
    confdir, dest = _confdir(tmp_path)
    proc = run_confsync("-backend", "consul", "-confdir", str(confdir), "-onetime")   # the real command line
    assert proc.returncode == 2
    assert "backend 'consul' is not supported" in proc.stderr and "use etcd, redis" in proc.stderr
    for name in ("vault", "dynamodb", "rancher", "ssm"):                               # the same path, in-process
        config = ConfsyncConfig(confdir=confdir, backend=name, onetime=True)
        assert asyncio.run(serve(config)) == EXIT_CONFIG
        assert f"backend '{name}' is not supported" in caplog.text
    assert not dest.exists()
