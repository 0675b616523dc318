"""The `etcd` fixture: synchronous key helpers over the shared real `etcd_server` fixture."""

from __future__ import annotations

import pytest
from confsync_helpers import Etcd


@pytest.fixture
def etcd(etcd_server) -> Etcd:
    return Etcd(etcd_server.port)
