"""Every compiled module imports first in a fresh process, with no import cycle.

Compiled modules cimport each other's types, and importing a cimported type imports its module at once; a
runtime import back into a module still being initialised then fails (`cannot import name`, or `partially
initialized module`). Which module a process imports first depends on the entry point (router, tests, tools).
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from portico._compiled import COMPILED_MODULES

pytestmark = pytest.mark.unit


def test_each_compiled_module_can_be_imported_first() -> None:
    script = ("import importlib, subprocess, sys\n"
              "for name in sys.argv[1:]:\n"
              "    out = subprocess.run([sys.executable, '-c', f'import {name}'], capture_output=True, text=True)\n"
              "    if out.returncode:\n"
              "        print(name, out.stderr.strip().splitlines()[-1])\n")
    result = subprocess.run([sys.executable, "-c", script, *COMPILED_MODULES], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "", f"modules that fail when imported first:\n{result.stdout}"
