"""A malformed-request corpus and generated requests against a real router, a real backend recording what it
receives: nothing forwarded ambiguously, nothing hanging, every unsafe request answered 4xx and closed, never
a 500. The corpus and the fuzzing live in reliability/ (the fault suite reports the same counts)."""

from __future__ import annotations

import sys

import pytest
from support import IMPLEMENTATIONS, REPO, implementation_env

sys.path.insert(0, str(REPO))

from reliability.corpus import CASES, HOST, RecordingBackend, run_corpus
from reliability.fuzz import fuzz_request_parser


@pytest.fixture(scope="module", params=IMPLEMENTATIONS)
def strict_router(request, router_factory):
    """Once compiled, once pure Python: the request parsing and header work is what gets compiled."""
    return router_factory(env=implementation_env(request.param), endpoint_timeout="5s", read_header_timeout="5s")


def test_malformed_request_corpus(strict_router):
    assert len(CASES) >= 40
    counts = run_corpus(strict_router.port, lambda host, port: strict_router.register(host, port))
    problems = "\n".join(str(p) for p in counts.problems())
    assert counts.cases == len(CASES)
    assert counts.ambiguous == 0, problems
    assert counts.hanging == 0, problems
    assert counts.unsafe_not_rejected == 0, problems
    assert counts.server_errors == 0, problems
    assert counts.unexpected_status == 0, problems


def _fuzz(router, examples: int) -> None:
    backend = RecordingBackend().start()
    try:
        router.register(HOST, backend.port)
        counts = fuzz_request_parser(router.port, HOST, examples=examples,
                                     backend_parse_errors=lambda: len(backend.parse_errors))
    finally:
        backend.stop()
    assert counts.examples == examples
    assert counts.failures == 0, (counts.kinds, counts.samples, backend.parse_errors[:5])
    assert backend.requests, "no generated request reached the backend: the fuzzing missed the forward path"


def test_generated_requests_never_crash_hang_or_forward_garbage(strict_router):
    _fuzz(strict_router, 200)


@pytest.mark.slow
def test_generated_requests_long(strict_router):
    _fuzz(strict_router, 5000)
