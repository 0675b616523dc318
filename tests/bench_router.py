"""A router as the benchmark harness starts one, for the harness's own tests: nats-server, the harness's
built-in backend, `portico router` and a NATS publisher, all on 127.0.0.1 and all stopped afterwards."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

from harness.natspub import NatsPublisher
from harness.targets import Target, start_builtin_backend, start_portico

from portico.stack.servers import start_nats


@dataclass
class BenchRouter:
    router: Target
    backend: Target
    pub: NatsPublisher


@contextmanager
def bench_router(tmp_path: Path, nats=None) -> Iterator[BenchRouter]:
    """Starts what is missing (nats-server unless `nats` is given), yields them, stops what it started."""
    own_nats = start_nats(workdir=tmp_path / "nats") if nats is None else None
    nats = nats or own_nats
    backend = start_builtin_backend(tmp_path / "backend", None)
    router = pub = None
    try:
        router = start_portico(nats.port, tmp_path / "portico", None)
        pub = NatsPublisher("127.0.0.1", nats.port)
        yield BenchRouter(router, backend, pub)
    finally:
        if pub:
            pub.close()
        if router:
            router.stop()
        backend.stop()
        if own_nats:
            own_nats.stop()
