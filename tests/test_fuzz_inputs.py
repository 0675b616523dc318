"""Hypothesis fuzzing of the in-process readers of untrusted input: the registration decoder, the route-key
normaliser and the config loader never raise anything but their own clear rejection (reliability/fuzz.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reliability.fuzz import fuzz_config_loader, fuzz_registration_decoder, fuzz_route_keys

TARGETS = [fuzz_registration_decoder, fuzz_route_keys, fuzz_config_loader]


@pytest.mark.parametrize("fuzz", TARGETS, ids=lambda f: f.__name__)
def test_fuzzed_input_is_applied_or_rejected_never_raised(fuzz):
    counts = fuzz(200)
    assert counts.examples == 200
    assert counts.failures == 0, (counts.kinds, counts.samples)


@pytest.mark.slow
@pytest.mark.parametrize("fuzz", TARGETS, ids=lambda f: f.__name__)
def test_fuzzed_input_long(fuzz):
    counts = fuzz(5000)
    assert counts.failures == 0, (counts.kinds, counts.samples)
