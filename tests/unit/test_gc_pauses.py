"""The garbage collector's pauses, counted per generation for /varz (portico.gc_pauses)."""

from __future__ import annotations

import gc
import time

import pytest

from portico.gc_pauses import GcPauses

pytestmark = pytest.mark.unit


def test_a_full_collection_is_counted_timed_and_kept_with_its_start():
    pauses = GcPauses(recent_min_s=0.0)
    pauses.install()
    try:
        before = time.monotonic()
        gc.collect()
        after = time.monotonic()
    finally:
        pauses.uninstall()
    report = pauses.as_json()
    assert report["collections"][2] == 1
    assert report["max_ms"][2] == report["total_ms"][2] >= 0
    full = [p for p in report["recent"] if p["generation"] == 2]
    assert len(full) == 1 and before <= full[0]["monotonic"] <= after


def test_short_pauses_are_counted_but_not_kept_and_uninstall_stops_counting():
    pauses = GcPauses(recent_min_s=60.0)
    pauses.install()
    pauses.install()          # idempotent: one hook, one count per collection
    gc.collect()
    pauses.uninstall()
    gc.collect()
    report = pauses.as_json()
    assert report["collections"] == [0, 0, 1] and report["recent"] == []
