"""The suite's own machinery: the registry, the report (with --only keeping earlier figures), the load client."""

from __future__ import annotations

import time

from reliability.core import Outcome, Result, Scenario
from reliability.load import SteadyLoad
from reliability.parts import Stack, unique_host
from reliability.report import load_previous, outcome_from_dict, render


def _scenario(name: str) -> Scenario:
    return Scenario(name, f"goal of {name}", lambda quick: Result({}, True))


def test_report_lists_every_scenario_and_round_trips_its_results(tmp_path) -> None:
    scenarios = [_scenario("alpha"), _scenario("beta"), _scenario("gamma")]
    outcomes = {
        "alpha": Outcome("alpha", "goal of alpha", False, 12.0, "2026-01-01 10:00 UTC",
                         result=Result({"failed requests": 0, "p99 ms": 3.25}, True)),
        "beta": Outcome("beta", "goal of beta", True, 1.0, "2026-01-01 10:01 UTC",
                        result=Result({"failed requests": 7}, False)),
    }
    text = render(scenarios, outcomes, {"Machine": {"cpu": "2 x test"}}, note="shared machine")
    path = tmp_path / "RELIABILITY.md"
    path.write_text(text)
    assert "| [alpha](#alpha) | goal of alpha | met |" in text
    assert "| [beta](#beta) | goal of beta | **not met** |" in text
    assert "| [gamma](#gamma) | goal of gamma | not run in this session |" in text
    assert "| p99 ms | 3.25 |" in text and "shared machine" in text
    previous = load_previous(path)
    assert set(previous) == {"alpha", "beta"}
    again = outcome_from_dict(previous["beta"])
    assert again.result is not None and again.result.figures == {"failed requests": 7} and not again.met


def test_steady_load_counts_successes_and_every_failure() -> None:
    with Stack("framework") as stack:
        nats = stack.nats()
        router = stack.router(nats.port)
        backend = stack.backend()
        host = unique_host("load")
        router.register(host, backend.port)
        ok = SteadyLoad(router.port, host, "/echo", rate=50, connections=2).start()
        time.sleep(1.0)
        good = ok.stop()
        bad = SteadyLoad(router.port, unique_host("nowhere"), "/", rate=50, connections=2).start()
        time.sleep(0.5)
        missing = bad.stop()
    assert good.sent >= 20 and good.failed == 0 and good.ok == good.sent
    assert missing.sent >= 10 and missing.ok == 0
    assert missing.failure_kinds() == {"status 404": missing.failed} and missing.failed == missing.sent
