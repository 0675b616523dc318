"""Fixtures for end-to-end tests: one nats-server and one default router per module, backends, a factory
for routers with special settings. Every process and server started here is stopped at teardown."""

from __future__ import annotations

import pytest
from support import Backend, Router, WsBackend, loop_thread

from portico.stack.servers import start_nats


@pytest.fixture(scope="module")
def nats(tmp_path_factory):
    server = start_nats(workdir=tmp_path_factory.mktemp("nats"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def router_factory(nats, tmp_path_factory):
    """`router_factory(**overrides)` starts a router with these config keys merged over the defaults."""
    started: list[Router] = []

    def make(start: bool = True, env: dict | None = None, **overrides) -> Router:
        r = Router(tmp_path_factory.mktemp("router"), nats.url, nats.port, overrides, env=env or {})
        started.append(r)
        if start:
            r.start()
        return r

    yield make
    for r in started:
        r.stop()


@pytest.fixture(scope="module")
def router(router_factory):
    return router_factory(backends={"max_attempts": 3})


@pytest.fixture(scope="module")
def backend_factory():
    made: list = []

    def make(name: str = "app", tls=None, ws: bool = False):
        b = WsBackend(name) if ws else Backend(name, tls=tls)
        made.append(b.start())
        return b

    yield make
    for b in made:
        b.stop()


@pytest.fixture(scope="module")
def backend(backend_factory):
    return backend_factory("main")


@pytest.fixture(scope="session", autouse=True)
def _loop_thread():
    lt = loop_thread()
    yield lt
    lt.stop()
