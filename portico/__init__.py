"""Portico: a fast, gorouter-compatible traffic entrance for container clouds."""

__version__ = "0.1.0"
