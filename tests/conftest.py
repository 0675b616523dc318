"""Shared fixtures: real nats-server and etcd processes on free 127.0.0.1 ports, stopped after each test."""

from __future__ import annotations

import pytest

from portico.stack.servers import RunningServer, start_etcd, start_nats


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
