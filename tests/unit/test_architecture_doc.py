"""docs/architecture.md names real code: every `path.py: Name.attr` it cites, and every `Class.method` of a
class it cited that way, must exist."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

DOC = Path(__file__).resolve().parents[2] / "docs" / "architecture.md"
_CITE = re.compile(r"`((?:[a-z_]+/)*[a-z_]+)\.py: ([A-Za-z_][\w.]*)")
_METHOD = re.compile(r"`([A-Z]\w+)\.(\w+)")


def _resolve(target, dotted: str, what: str):
    for part in dotted.split("."):
        assert hasattr(target, part), f"docs/architecture.md cites {what}, which does not exist"
        target = getattr(target, part)
    return target


def test_every_cited_module_and_name_exists():
    text = DOC.read_text()
    cites = _CITE.findall(text)
    assert len(cites) >= 15, cites
    classes = {}
    for path, dotted in cites:
        module = importlib.import_module("portico." + path.replace("/", "."))
        _resolve(module, dotted, f"{path}.py: {dotted}")
        head = dotted.split(".")[0]
        if head[:1].isupper():
            classes[head] = getattr(module, head)
    methods = [(c, m) for c, m in _METHOD.findall(text) if c in classes]
    assert len(methods) >= 15, methods
    for cls, attr in methods:
        _resolve(classes[cls], attr, f"{cls}.{attr}")
