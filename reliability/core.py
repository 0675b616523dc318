"""The scenario registry: a name, the goal in words, and a function that runs the fault and measures it.

A scenario module declares itself with `@scenario(name, goal)` on `run(quick: bool) -> Result`. `quick` asks for
a short version (seconds, fit for the default test suite); the full version is what RELIABILITY.md reports.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Figures = dict[str, Any]


@dataclass
class Result:
    """What one run measured (`figures`, name -> number or short text) and whether the goal was met."""

    figures: Figures
    met: bool
    notes: str = ""


@dataclass(frozen=True)
class Scenario:
    name: str
    goal: str
    run: Callable[[bool], Result]
    module: str = ""
    in_default_suite: bool = True   # False: the quick version runs under the `slow` marker (its parts are
                                    # covered by faster tests), keeping the default suite within its budget


REGISTRY: dict[str, Scenario] = {}


def scenario(name: str, goal: str, *, in_default_suite: bool = True
             ) -> Callable[[Callable[[bool], Result]], Callable[[bool], Result]]:
    """Register `run(quick) -> Result` under `name`; the goal is the sentence RELIABILITY.md checks it against."""

    def register(run: Callable[[bool], Result]) -> Callable[[bool], Result]:
        if name in REGISTRY and REGISTRY[name].run is not run:
            raise ValueError(f"scenario {name!r} registered twice")
        REGISTRY[name] = Scenario(name, goal, run, run.__module__, in_default_suite)
        return run

    return register


def load_all() -> dict[str, Scenario]:
    """Import every module in reliability.scenarios (each registers itself); the registry, in file order."""
    import reliability.scenarios as package

    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"{package.__name__}.{info.name}")
    return REGISTRY


@dataclass
class Outcome:
    """One scenario's run: its result, or the error that stopped it, and how long it took."""

    name: str
    goal: str
    quick: bool
    seconds: float
    started: str
    result: Result | None = None
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def met(self) -> bool:
        return self.result is not None and self.result.met
