"""The malformed-request corpus and hypothesis fuzzing (reliability/corpus.py, reliability/fuzz.py), counted."""

from __future__ import annotations

from reliability.core import Result, scenario
from reliability.corpus import CASES, HOST, RecordingBackend, run_corpus
from reliability.fuzz import fuzz_in_process, fuzz_request_parser
from reliability.parts import Stack

GOAL = ("a corpus of at least 40 malformed requests: 0 forwarded ambiguously, 0 hanging, every unsafe one "
        "answered 4xx and closed, no 5xx; fuzzing of the request parser path, registration decoder, route keys "
        "and config loader: 0 crashes, 500s or hangs")


# the quick version runs under the slow marker: tests/e2e/test_malformed_input.py runs the same corpus and fuzzing
@scenario("malformed", GOAL, in_default_suite=False)
def run(quick: bool) -> Result:
    request_examples, in_process_examples = (20, 50) if quick else (2000, 1000)
    with Stack("malformed") as stack:
        nats = stack.nats()
        router = stack.router(nats.port, endpoint_timeout="5s", read_header_timeout="5s")
        counts = run_corpus(router.port, lambda host, port: router.register(host, port))
        backend = RecordingBackend().start()
        stack.on_exit(backend.stop)
        router.register(HOST, backend.port)
        fuzzed = [fuzz_request_parser(router.port, HOST, examples=request_examples,
                                      backend_parse_errors=lambda: len(backend.parse_errors))]
    fuzzed += fuzz_in_process(in_process_examples)
    figures: dict[str, object] = {f"corpus: {k}": v for k, v in counts.figures().items()}
    for f in fuzzed:
        figures[f"fuzz {f.target}: examples / failures"] = f"{f.examples} / {f.failures}"
    met = (len(CASES) >= 40 and not counts.problems() and counts.cases == len(CASES)
           and all(f.failures == 0 for f in fuzzed))
    notes = "\n".join(str(p) for p in counts.problems()) + "\n".join(s for f in fuzzed for s in f.samples)
    return Result(figures, met, notes=notes.strip())
