"""Portico: a fast, gorouter-compatible traffic entrance for container clouds."""

__version__ = "0.1.0"

# Before any submodule loads: compiled or pure modules, never a stale extension (portico/_compiled.py).
from portico import _compiled

_compiled.install()
