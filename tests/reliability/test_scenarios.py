"""Every fault scenario's quick version meets its goal (the full versions run from `reliability/run`)."""

from __future__ import annotations

import pytest

from reliability.core import load_all

SCENARIOS = load_all()


@pytest.mark.timeout(240)
@pytest.mark.parametrize("name", [
    pytest.param(name, marks=() if sc.in_default_suite else (pytest.mark.slow,)) for name, sc in SCENARIOS.items()
])
def test_quick_scenario_meets_its_goal(name: str) -> None:
    result = SCENARIOS[name].run(True)
    print(f"{name}: {result.figures}")
    assert result.met, f"{name} missed its goal ({SCENARIOS[name].goal}): {result.figures} {result.notes}"
