"""Every compiled-set module imports on its own, first, in a fresh interpreter.

Compiled, a module whose .pxd cimports another module's cdef class imports that module at its own start, so
the compiled modules import each other in orders the pure ones never do. A cycle among them (a module that
needs a name from one still half-initialised) breaks whoever imports the wrong one first: a test file, a
tool, a worker. The router's own import order hid one such cycle; this imports each module first.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from portico._compiled import COMPILED_MODULES, PURE_ENV


@pytest.mark.parametrize("pure", [False, True], ids=["as-built", "pure"])
def test_each_module_imports_first_in_a_fresh_interpreter(pure: bool) -> None:
    env = {**os.environ, PURE_ENV: "1" if pure else "0"}
    script = (
        "import importlib, sys\n"
        "name = sys.argv[1]\n"
        "importlib.import_module(name)\n"
    )
    failed = {}
    for name in COMPILED_MODULES:
        done = subprocess.run([sys.executable, "-c", script, name], env=env, capture_output=True, text=True,
                              timeout=120)
        if done.returncode != 0:
            failed[name] = done.stderr.strip().splitlines()[-1:]
    assert not failed, f"modules that fail when imported first: {failed}"
