"""Shared fixtures: real nats-server and etcd processes on free 127.0.0.1 ports, stopped after each test."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from portico.stack.servers import RunningServer, start_etcd, start_nats

# The fast layer (`./scripts/test -m unit`, well under 20 s): tests that start no process and open no socket.
# A module not listed here can mark itself with `pytestmark = pytest.mark.unit`. tests/e2e is marked `e2e`.
_UNIT = (
    "unit/", "confsync/gotemplate/", "kube/test_desired.py", "kube/test_tls_files.py", "test_access_log.py",
    "test_bus_messages.py", "test_config_gorouter_keys.py", "test_config_loader.py", "test_exchange_flow.py",
    "test_route_snapshot.py", "test_route_table.py", "test_rs_signature.py",
)
_TESTS = Path(__file__).parent


def pytest_ignore_collect(collection_path: Path, config) -> bool | None:
    """With `-m unit`, do not even import the other test modules: collecting them costs more than running."""
    if config.getoption("markexpr") != "unit" or not collection_path.name.startswith("test_"):
        return None
    try:
        where = collection_path.relative_to(_TESTS).as_posix()
    except ValueError:
        return None
    return None if where.startswith(_UNIT) else True


def pytest_collection_modifyitems(config, items) -> None:
    for item in items:
        try:
            where = Path(str(item.fspath)).relative_to(_TESTS).as_posix()
        except ValueError:
            continue
        if where.startswith(_UNIT):
            item.add_marker(pytest.mark.unit)
        elif where.startswith("e2e/"):
            item.add_marker(pytest.mark.e2e)


# Tests talk to etcd through gRPC (aetcd) in this process and also start child processes. gRPC's fork handlers
# are for children that keep using gRPC; ours exec at once, and while gRPC threads are busy those handlers
# were seen to leave a just-forked etcd or redis-server aborting (exit -6). Children here need none of it.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "0")

# Routers keep a route snapshot in the user's state directory by default (route_snapshot). Tests must neither
# write there nor load another test's snapshot from a reused port: the session gets its own state directory,
# and each test its own below.
os.environ["XDG_STATE_HOME"] = _SESSION_STATE = tempfile.mkdtemp(prefix="portico-test-state-")
atexit.register(shutil.rmtree, _SESSION_STATE, ignore_errors=True)


@pytest.fixture(autouse=True)
def _own_state_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))


@pytest.fixture
def nats_server(tmp_path) -> RunningServer:
    server = start_nats(workdir=tmp_path / "nats")
    yield server
    server.stop()


@pytest.fixture
def etcd_server(tmp_path) -> RunningServer:
    server = start_etcd(workdir=tmp_path / "etcd")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def kube_api(tmp_path_factory):
    """A real kube-apiserver + etcd, one for the whole run (it takes about 2-10 s and 270 MiB to start); each
    test names its objects uniquely. Watches go to etcd (no watch cache) so a compacted resourceVersion really
    gives 410 Gone, as the relist test needs."""
    from kubeapi import kube_apiserver_binary, start_kube_apiserver

    if kube_apiserver_binary() is None:
        pytest.skip("no kube-apiserver: set KUBEBUILDER_ASSETS (envtest) or provide ../shared/k8s")
    api = start_kube_apiserver(tmp_path_factory.mktemp("kube"), watch_cache=False)
    yield api
    api.stop()
