"""Repeats of the host-bound scale steps (`--repeat N`): each repeat is a whole measurement, the figure is their
median, and every repeat's figure stays beside it.

Why: on a shared VM the same code gave 100k routes 0.74x and 0.93x of the 1-route throughput, and ingest 252k
and 392k msg/s, minutes apart. A goal judged on one sample says little about the code; the median of several
whole measurements, with their spread shown, says how much the host moved it.

A repeated step's record is the first repeat's, with every number replaced by the median of that number over
the repeats (so two medians in one record may come from different repeats), lists joined, and the repeats
themselves kept whole under `repeats`. A record without `repeats` (one repeat, or results from before this
change) is shown as it is.
"""

from __future__ import annotations

from collections.abc import Callable

from .parse import median

REPEATS_KEY = "repeats"


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def median_record(records: list[dict]) -> dict:
    """One record from several repeats of a step: numbers their median, lists joined, the rest the first's."""
    if not records:
        raise ValueError("no repeats to take a median of")
    out = dict(records[0])
    for key, first in records[0].items():
        values = [r.get(key) for r in records]
        if _is_number(first) or (first is None and any(_is_number(v) for v in values)):
            numbers = [v for v in values if _is_number(v)]
            out[key] = median(numbers) if numbers else None
            if numbers and all(isinstance(v, int) for v in numbers) and float(out[key]).is_integer():
                out[key] = int(out[key])
        elif isinstance(first, list):
            if key == "notes" and len(records) > 1:
                out[key] = [f"repeat {k + 1}: {note}" for k, r in enumerate(records) for note in r.get(key) or []]
            else:
                out[key] = [item for r in records for item in r.get(key) or []]
    if len(records) > 1:
        out[REPEATS_KEY] = [dict(r) for r in records]
    return out


def median_steps(repeats: list[list[dict]]) -> list[dict]:
    """Route-scale steps from several repeats (each a list of steps by route count): one median record a step.
    A step that a repeat lacks (it failed part-way) is the median of the repeats that have it."""
    by_routes: dict[int, list[dict]] = {}
    for steps in repeats:
        for step in steps:
            by_routes.setdefault(step["routes"], []).append(step)
    return [median_record(records) for _, records in sorted(by_routes.items())]


def repeat_values(record: dict | None, key: str) -> list[float | None]:
    """Every repeat's figure for `key` (empty when the step ran once)."""
    if not record:
        return []
    return [r.get(key) for r in record.get(REPEATS_KEY) or []]


def spread(record: dict | None, key: str, show: Callable[[float], str], words: str = "repeats") -> str:
    """' (repeats: a / b / c)' after a median figure, or '' when the step ran once or no repeat had a figure."""
    values = repeat_values(record, key)
    if len(values) < 2 or all(v is None for v in values):
        return ""
    return f" ({words}: {' / '.join('-' if v is None else show(v) for v in values)})"


def goal_spread(record: dict | None, key: str, show: Callable[[float], str]) -> str:
    """The goal row's words: 'median of 3 repeats: a / b / c', or '' when the step ran once."""
    values = repeat_values(record, key)
    if len(values) < 2:
        return ""
    return f"median of {len(values)} repeats: {' / '.join('-' if v is None else show(v) for v in values)}"
